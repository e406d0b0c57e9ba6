/*
 * mg_cred — the credential cache: sources by key, one refresher thread each, the current
 * credential published by pointer swap and read without a lock.
 *
 * Reading without a lock while the refresher frees the credential it replaced: a reader counts
 * itself in `readers` around its load of the pointer and its reference increment; the refresher
 * swaps the pointer, then waits (a few instructions' worth, it is never a reader that blocks)
 * until `readers` is zero before dropping the old credential's reference. A reader that saw the
 * old pointer holds its own reference by then.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "mg_cred.h"
#include "mg_log.h"
#include "mg_stats.h"

#define REFRESH_MARGIN_MS (5 * 60 * 1000)
#define USE_MARGIN_MS     30000
#define BACKOFF_MAX_MS    60000

struct mg_cred_source {
    struct mg_cred_registry         *reg;
    struct mg_cred_source           *next;
    char                            *key;
    char                            *label;
    const struct mg_cred_source_ops *ops;
    void                            *arg;
    _Atomic(struct mg_cred *)        cur;
    atomic_int                       readers;
    int                              used;         /* named by the config bound last */
    int                              running;      /* its refresher runs (under reg->lock) */
    atomic_uint_least64_t            fetches;
    atomic_uint_least64_t            failures;
    int                              first_done;   /* under reg->lock */
    atomic_int                       stop;         /* set under reg->lock; read by a transfer */
    pthread_t                        thread;
};

struct mg_cred_registry {
    pthread_mutex_t        lock;
    pthread_cond_t         cond;    /* a first fetch done; a stop asked */
    struct mg_cred_source *head;
};

/* ---- credentials ---------------------------------------------------------------------------- */

static struct mg_cred *
cred_new(enum mg_cred_kind kind, int64_t expires_ms)
{
    struct mg_cred *c = mg_calloc(1, sizeof(*c));

    atomic_init(&c->refs, 1);
    c->kind = kind;
    c->expires_ms = expires_ms;
    return c;
}

struct mg_cred *
mg_cred_aws(const char *key_id, const char *secret, const char *token, int64_t expires_ms)
{
    struct mg_cred *c = cred_new(MG_CRED_AWS, expires_ms);

    c->access_key_id = mg_strdup(key_id);
    c->secret_access_key = mg_strdup(secret);
    c->session_token = token != NULL && token[0] != '\0' ? mg_strdup(token) : NULL;
    return c;
}

struct mg_cred *
mg_cred_bearer(const char *token, int64_t expires_ms)
{
    struct mg_cred *c = cred_new(MG_CRED_BEARER, expires_ms);

    c->token = mg_strdup(token);
    return c;
}

static void
wipe_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void
mg_cred_unref(struct mg_cred *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1) {
        return;
    }
    wipe_free(c->access_key_id);
    wipe_free(c->secret_access_key);
    wipe_free(c->session_token);
    wipe_free(c->token);
    free(c);
}

/* ---- the schedule --------------------------------------------------------------------------- */

int64_t
mg_cred_refresh_at(int64_t fetched_ms, int64_t expires_ms)
{
    int64_t life, margin;

    if (expires_ms == 0) {
        return fetched_ms + MG_CRED_NOEXPIRY_MS;
    }
    life = expires_ms - fetched_ms;
    if (life <= 0) {
        return fetched_ms;   /* already expired: at once (the backoff paces it) */
    }
    margin = life / 2 < REFRESH_MARGIN_MS ? life / 2 : REFRESH_MARGIN_MS;
    return expires_ms - margin;
}

int64_t
mg_cred_usable_until(int64_t fetched_ms, int64_t expires_ms)
{
    int64_t life = expires_ms - fetched_ms, margin;

    if (expires_ms == 0) {
        return INT64_MAX;
    }
    margin = life <= 0 ? 0 : life / 4 < USE_MARGIN_MS ? life / 4 : USE_MARGIN_MS;
    return expires_ms - margin;
}

int64_t
mg_cred_backoff_ms(unsigned n)
{
    int64_t ms = 1000;

    while (n > 1 && ms < BACKOFF_MAX_MS) {
        ms *= 2;
        n--;
    }
    return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

void
mg_cred_key_secret(struct mg_buf *key, const char *secret)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[SHA256_DIGEST_LENGTH];
    char out[2 * SHA256_DIGEST_LENGTH + 1];
    size_t i;

    SHA256((const unsigned char *)secret, strlen(secret), d);
    for (i = 0; i < sizeof(d); i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * sizeof(d)] = '\n';
    mg_buf_add(key, out, sizeof(out));
}

int64_t
mg_cred_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a source ------------------------------------------------------------------------------- */

struct mg_cred *
mg_cred_source_current(struct mg_cred_source *s, int64_t now_ms)
{
    struct mg_cred *c;

    atomic_fetch_add(&s->readers, 1);
    c = atomic_load(&s->cur);
    if (c != NULL) {
        atomic_fetch_add(&c->refs, 1);
    }
    atomic_fetch_sub(&s->readers, 1);
    if (c != NULL && now_ms >= mg_cred_usable_until(c->fetched_ms, c->expires_ms)) {
        mg_cred_unref(c);
        return NULL;
    }
    return c;
}

/* Swaps in c (NULL: none) and drops the old one once no reader can be taking it. */
static void
publish(struct mg_cred_source *s, struct mg_cred *c)
{
    struct mg_cred *old = atomic_exchange(&s->cur, c);

    while (atomic_load(&s->readers) != 0) {
        sched_yield();
    }
    mg_cred_unref(old);
}

uint64_t
mg_cred_source_fetches(const struct mg_cred_source *s)
{
    return atomic_load(&s->fetches);
}

uint64_t
mg_cred_source_failures(const struct mg_cred_source *s)
{
    return atomic_load(&s->failures);
}

/* The stop flag of the source whose refresher runs on this thread, or NULL. */
static _Thread_local const atomic_int *stop_flag;

int
mg_cred_stopping(void)
{
    return stop_flag != NULL && atomic_load(stop_flag) != 0;
}

/* Sleeps until Unix time at_ms or a stop; 1 when asked to stop. */
static int
sleep_until(struct mg_cred_source *s, int64_t at_ms)
{
    struct mg_cred_registry *reg = s->reg;
    struct timespec ts = {(time_t)(at_ms / 1000), (long)(at_ms % 1000) * 1000000};
    int stop;

    pthread_mutex_lock(&reg->lock);
    while (!s->stop && mg_cred_now_ms() < at_ms) {
        if (pthread_cond_timedwait(&reg->cond, &reg->lock, &ts) == ETIMEDOUT) {
            break;
        }
    }
    stop = s->stop;
    pthread_mutex_unlock(&reg->lock);
    return stop;
}

static void *
refresher(void *arg)
{
    struct mg_cred_source *s = arg;
    struct mg_cred_registry *reg = s->reg;
    unsigned failed = 0;
    int64_t next;

    stop_flag = &s->stop;   /* a stop aborts a transfer in progress (mg_cred_stopping) */

    for (;;) {
        struct mg_cred *c = NULL, *have;
        char err[MG_CRED_ERR_MAX] = "";
        int64_t now;
        int rc = s->ops->fetch(s->arg, &c, err, sizeof(err));

        now = mg_cred_now_ms();
        if (rc != MG_OK && atomic_load(&s->stop)) {   /* the stop cut the fetch short */
            mg_cred_unref(c);
            return NULL;
        }
        atomic_fetch_add(&s->fetches, 1);
        if (rc == MG_OK && c != NULL) {
            if (failed > 0) {
                mg_log_info("credentials for backend %s: fetched again", s->label);
            }
            failed = 0;
            c->fetched_ms = now;   /* not shared yet: set before it is published */
            publish(s, c);
            next = mg_cred_refresh_at(now, c->expires_ms);
        } else {
            mg_cred_unref(c);
            atomic_fetch_add(&s->failures, 1);
            failed++;
            next = now + mg_cred_backoff_ms(failed);
            have = mg_cred_source_current(s, now);
            if (have != NULL) {
                mg_log_warn("credentials for backend %s: refresh failed (%s); keeping the "
                            "current ones, which expire in %lld ms", s->label, err,
                            have->expires_ms ? (long long)(have->expires_ms - now) : -1LL);
                int64_t last = mg_cred_usable_until(have->fetched_ms, have->expires_ms) - 1000;
                if (have->expires_ms != 0 && next > last && last > now + 100) {
                    next = last;   /* one more try just before they go */
                }
            } else {
                mg_log_warn("credentials for backend %s: unavailable (%s); retrying in %lld ms",
                            s->label, err, (long long)(next - now));
            }
            mg_cred_unref(have);
        }
        pthread_mutex_lock(&reg->lock);
        if (!s->first_done) {
            s->first_done = 1;
            pthread_cond_broadcast(&reg->cond);
        }
        pthread_mutex_unlock(&reg->lock);
        if (sleep_until(s, next)) {
            return NULL;
        }
    }
}

static void
source_free(struct mg_cred_source *s)
{
    if (s->ops->free != NULL) {
        s->ops->free(s->arg);
    }
    publish(s, NULL);
    free(s->key);
    free(s->label);
    free(s);
}

/* Asks s's refresher to stop and waits for it (the caller does not hold the lock). */
static void
source_stop(struct mg_cred_source *s)
{
    if (!s->running) {
        return;
    }
    pthread_mutex_lock(&s->reg->lock);
    s->stop = 1;
    pthread_cond_broadcast(&s->reg->cond);
    pthread_mutex_unlock(&s->reg->lock);
    pthread_join(s->thread, NULL);
    pthread_mutex_lock(&s->reg->lock);
    s->running = 0;
    pthread_mutex_unlock(&s->reg->lock);
}

static void
source_start(struct mg_cred_source *s)
{
    pthread_mutex_lock(&s->reg->lock);
    s->stop = 0;
    s->first_done = 0;
    s->running = 1;
    pthread_mutex_unlock(&s->reg->lock);
    if (pthread_create(&s->thread, NULL, refresher, s) != 0) {
        mg_log_error("credentials for backend %s: no refresher thread", s->label);
        abort();   /* as allocation does: the process cannot work without its threads */
    }
}

struct mg_cred_source *
mg_cred_source_get(struct mg_cred_registry *reg, const char *key, const char *label,
                   const struct mg_cred_source_ops *ops, void *arg)
{
    struct mg_cred_source *s;

    for (s = reg->head; s != NULL; s = s->next) {
        if (strcmp(s->key, key) == 0) {
            if (ops->free != NULL) {
                ops->free(arg);
            }
            s->used = 1;
            if (!s->running) {   /* a config named it again: it refreshes again */
                source_start(s);
            }
            return s;
        }
    }
    s = mg_calloc(1, sizeof(*s));
    s->reg = reg;
    s->key = mg_strdup(key);
    s->label = mg_strdup(label);
    s->ops = ops;
    s->arg = arg;
    s->used = 1;
    atomic_init(&s->cur, NULL);
    source_start(s);
    pthread_mutex_lock(&reg->lock);   /* /metrics walks the list from a worker */
    s->next = reg->head;
    reg->head = s;
    pthread_mutex_unlock(&reg->lock);
    return s;
}

/* ---- the registry ------------------------------------------------------------------------- */

struct mg_cred_registry *
mg_cred_registry_create(void)
{
    struct mg_cred_registry *reg = mg_calloc(1, sizeof(*reg));

    mg_mutex_init(&reg->lock);
    if (pthread_cond_init(&reg->cond, NULL) != 0) {
        abort();
    }
    return reg;
}

void
mg_cred_registry_wait(struct mg_cred_registry *reg, int64_t timeout_ms)
{
    int64_t until = mg_cred_now_ms() + timeout_ms;
    struct timespec ts = {(time_t)(until / 1000), (long)(until % 1000) * 1000000};
    struct mg_cred_source *s;
    int pending;

    pthread_mutex_lock(&reg->lock);
    for (;;) {
        pending = 0;
        for (s = reg->head; s != NULL; s = s->next) {
            pending |= s->used && !s->first_done;
        }
        if (!pending || pthread_cond_timedwait(&reg->cond, &reg->lock, &ts) == ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock(&reg->lock);
    /*
     * The sources the config just bound does not name: their refreshers stop. They stay (with
     * their last credential) until the registry goes: a snapshot still serving requests may
     * point at them, and a later config may name them again.
     */
    for (s = reg->head; s != NULL; s = s->next) {
        if (!s->used) {
            source_stop(s);
        }
        s->used = 0;
    }
}

void
mg_cred_registry_render(struct mg_cred_registry *reg, struct mg_buf *out)
{
    static const char *const help =
        "# HELP modelgate_credential_fetches_total Cloud credential fetches of a backend's "
        "source, by result.\n"
        "# TYPE modelgate_credential_fetches_total counter\n";
    static const char *const help_exp =
        "# HELP modelgate_credential_expiry_seconds Seconds until a backend's current cloud "
        "credential expires (0: none valid now, -1: it has no expiry).\n"
        "# TYPE modelgate_credential_expiry_seconds gauge\n";
    struct mg_cred_source *s;
    int64_t now = mg_cred_now_ms();
    int pass;

    if (reg == NULL || reg->head == NULL) {
        return;
    }
    pthread_mutex_lock(&reg->lock);
    for (pass = 0; pass < 2; pass++) {
        mg_buf_adds(out, pass == 0 ? help : help_exp);
        for (s = reg->head; s != NULL; s = s->next) {
            uint64_t n = atomic_load(&s->fetches), f = atomic_load(&s->failures);
            struct mg_cred *c;
            if (!s->running) {
                continue;   /* a source no config names now */
            }
            if (pass == 0) {
                mg_buf_adds(out, "modelgate_credential_fetches_total{");
                mg_stats_label(out, "backend", s->label, 0);
                mg_buf_printf(out, ",result=\"ok\"} %llu\n", (unsigned long long)(n - f));
                mg_buf_adds(out, "modelgate_credential_fetches_total{");
                mg_stats_label(out, "backend", s->label, 0);
                mg_buf_printf(out, ",result=\"error\"} %llu\n", (unsigned long long)f);
                continue;
            }
            c = mg_cred_source_current(s, now);
            mg_buf_adds(out, "modelgate_credential_expiry_seconds{");
            mg_stats_label(out, "backend", s->label, 0);
            mg_buf_printf(out, "} %lld\n", c == NULL ? 0LL : c->expires_ms == 0 ? -1LL
                          : (long long)((c->expires_ms - now) / 1000));
            mg_cred_unref(c);
        }
    }
    pthread_mutex_unlock(&reg->lock);
}

void
mg_cred_registry_destroy(struct mg_cred_registry *reg)
{
    struct mg_cred_source *s;

    if (reg == NULL) {
        return;
    }
    while ((s = reg->head) != NULL) {
        reg->head = s->next;
        source_stop(s);
        source_free(s);
    }
    pthread_cond_destroy(&reg->cond);
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}
