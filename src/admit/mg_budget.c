/*
 * mg_budget — keys' spend by name, in calendar UTC windows; reserve, settle, reset; the state
 * file. An entry's fields are guarded by its own mutex (only keys with a budget take it, twice a
 * request); the registry's list by the registry's (a snapshot going into service, the dumps).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "mg_budget.h"

struct mg_budget {
    struct mg_budget *next;
    char             *name;
    pthread_mutex_t   lock;
    int64_t           usd;       /* micro-dollars; 0: no budget */
    int               per;
    int64_t           start;     /* the window the fields below are of (Unix seconds) */
    int64_t           end;       /* its end (0: total), computed for per `wper` (-1: not yet) */
    int               wper;
    int64_t           spent;     /* settled in it (with shared: Redis's total + unsent) */
    int64_t           reserved;  /* reservations in flight */
    int64_t           unsent;    /* shared: settled here, not yet added in Redis */
    int               reset;     /* shared: a reset of window `start` not yet sent */
    int64_t           cleaned;   /* shared: the window whose predecessor was deleted, +1 */
};

struct mg_budget_registry {
    pthread_mutex_t   lock;
    struct mg_budget *head;
};

static const char *const per_names[] = {"day", "week", "month", "total"};

const char *
mg_budget_per_name(int per)
{
    return per >= 0 && per <= MG_BUDGET_TOTAL ? per_names[per] : "?";
}

int
mg_budget_per_parse(const char *s)
{
    int i;

    for (i = 0; i <= MG_BUDGET_TOTAL; i++) {
        if (strcmp(s, per_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

void
mg_budget_window(int per, int64_t now, int64_t *start, int64_t *end)
{
    int64_t days = now >= 0 ? now / 86400 : 0;
    time_t t = (time_t)now;
    struct tm tm;

    switch (per) {
    case MG_BUDGET_DAY:
        *start = days * 86400;
        *end = *start + 86400;
        return;
    case MG_BUDGET_WEEK:   /* 1970-01-01 was a Thursday: Monday is day 4 of the epoch's week */
        *start = (days - (days + 3) % 7) * 86400;
        *end = *start + 7 * 86400;
        return;
    case MG_BUDGET_MONTH:
        gmtime_r(&t, &tm);
        tm.tm_mday = 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        *start = (int64_t)timegm(&tm);
        tm.tm_mon++;   /* timegm normalizes December + 1 */
        *end = (int64_t)timegm(&tm);
        return;
    default:
        *start = 0;
        *end = 0;
    }
}

struct mg_budget_registry *
mg_budget_registry_create(void)
{
    struct mg_budget_registry *reg = mg_calloc(1, sizeof(*reg));

    mg_mutex_init(&reg->lock);
    return reg;
}

void
mg_budget_registry_destroy(struct mg_budget_registry *reg)
{
    struct mg_budget *b, *next;
    if (reg == NULL) {
        return;
    }
    for (b = reg->head; b != NULL; b = next) {
        next = b->next;
        pthread_mutex_destroy(&b->lock);
        free(b->name);
        free(b);
    }
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

static struct mg_budget *
get_locked(struct mg_budget_registry *reg, const char *name)
{
    struct mg_budget *b;

    for (b = reg->head; b != NULL; b = b->next) {
        if (strcmp(b->name, name) == 0) {
            return b;
        }
    }
    b = mg_calloc(1, sizeof(*b));
    b->name = mg_strdup(name);
    b->per = MG_BUDGET_TOTAL;
    b->wper = -1;
    mg_mutex_init(&b->lock);
    b->next = reg->head;
    reg->head = b;
    return b;
}

struct mg_budget *
mg_budget_get(struct mg_budget_registry *reg, const char *name)
{
    struct mg_budget *b;

    pthread_mutex_lock(&reg->lock);
    b = get_locked(reg, name);
    pthread_mutex_unlock(&reg->lock);
    return b;
}

const char *
mg_budget_name(const struct mg_budget *b)
{
    return b->name;
}

/*
 * Under b->lock: a later window starts from nothing (reservations in flight stay). The window is
 * computed again only when now leaves it (a month's takes two timegm calls: not per request).
 */
static void
roll(struct mg_budget *b, int64_t now, int64_t *end)
{
    int64_t start;

    if (b->wper != b->per || now < b->start || (b->end != 0 && now >= b->end)) {
        mg_budget_window(b->per, now, &start, &b->end);
        b->wper = b->per;
        if (start != b->start) {
            b->start = start;
            b->spent = 0;
            b->unsent = 0;
        }
    }
    if (end != NULL) {
        *end = b->end;
    }
}

void
mg_budget_configure(struct mg_budget *b, int64_t usd, int per)
{
    pthread_mutex_lock(&b->lock);
    b->usd = usd;
    b->per = per;
    pthread_mutex_unlock(&b->lock);
}

/* Under b->lock, after roll(). */
static void
view_of(const struct mg_budget *b, int64_t end, struct mg_budget_view *v)
{
    if (v == NULL) {
        return;
    }
    v->usd = b->usd;
    v->per = b->per;
    v->spent = b->spent;
    v->remaining = b->usd > b->spent ? b->usd - b->spent : 0;
    v->window_start = b->start;
    v->window_end = end;
}

int
mg_budget_admit(struct mg_budget *b, int64_t now, int64_t cost, int64_t *reserved,
                struct mg_budget_view *view)
{
    int64_t end, want, left;
    int ok;

    pthread_mutex_lock(&b->lock);
    roll(b, now, &end);
    want = cost < 0 ? 0 : cost > b->usd ? b->usd : cost;
    left = b->usd - b->spent - b->reserved;
    ok = b->spent < b->usd && left > 0 && want <= left;
    if (ok) {
        b->reserved += want;
    }
    *reserved = ok ? want : 0;
    view_of(b, end, view);
    pthread_mutex_unlock(&b->lock);
    return ok;
}

void
mg_budget_settle(struct mg_budget *b, int64_t now, int64_t reserved, int64_t cost)
{
    pthread_mutex_lock(&b->lock);
    roll(b, now, NULL);
    b->reserved -= reserved;
    if (b->reserved < 0) {
        b->reserved = 0;
    }
    if (cost > 0) {
        b->spent = b->spent > INT64_MAX - cost ? INT64_MAX : b->spent + cost;
        b->unsent = b->unsent > INT64_MAX - cost ? INT64_MAX : b->unsent + cost;
    }
    pthread_mutex_unlock(&b->lock);
}

void
mg_budget_peek(struct mg_budget *b, int64_t now, struct mg_budget_view *view)
{
    int64_t end;

    pthread_mutex_lock(&b->lock);
    roll(b, now, &end);
    view_of(b, end, view);
    pthread_mutex_unlock(&b->lock);
}

void
mg_budget_reset(struct mg_budget *b, int64_t now)
{
    pthread_mutex_lock(&b->lock);
    roll(b, now, NULL);
    b->spent = 0;
    b->unsent = 0;
    b->reset = 1;
    pthread_mutex_unlock(&b->lock);
}

int
mg_budget_take_redis(struct mg_budget *b, int64_t now, struct mg_budget_redis_work *w)
{
    int64_t end;

    pthread_mutex_lock(&b->lock);
    roll(b, now, &end);
    w->window = b->start;
    w->unsent = b->unsent;
    w->reset = b->reset;
    w->prev = -1;
    if (b->per != MG_BUDGET_TOTAL && b->cleaned != b->start + 1) {
        mg_budget_window(b->per, b->start - 1, &w->prev, &end);
        b->cleaned = b->start + 1;
    }
    b->unsent = 0;
    b->reset = 0;
    pthread_mutex_unlock(&b->lock);
    return w->unsent > 0 || w->reset || w->prev >= 0;
}

void
mg_budget_unsent_back(struct mg_budget *b, int64_t window_start, int64_t micro)
{
    pthread_mutex_lock(&b->lock);
    if (window_start == b->start) {   /* a window that is over is not added to the next */
        b->unsent += micro;
    }
    pthread_mutex_unlock(&b->lock);
}

void
mg_budget_reset_back(struct mg_budget *b, int64_t window_start)
{
    pthread_mutex_lock(&b->lock);
    if (window_start == b->start) {
        b->reset = 1;
    }
    pthread_mutex_unlock(&b->lock);
}

void
mg_budget_shared_total(struct mg_budget *b, int64_t window_start, int64_t total)
{
    pthread_mutex_lock(&b->lock);
    if (window_start == b->start && total >= 0) {
        b->spent = total > INT64_MAX - b->unsent ? INT64_MAX : total + b->unsent;
    }
    pthread_mutex_unlock(&b->lock);
}

/* ---- the state file -------------------------------------------------------------------------- */

/* RFC 3339 UTC of Unix seconds: the state file's window names. */
static void
window_name(int64_t start, char *out, size_t len)
{
    time_t t = (time_t)start;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

size_t
mg_budget_dump(struct mg_budget_registry *reg, struct mg_buf *out)
{
    struct mg_budget *b;
    size_t n = 0;
    char ts[32];

    mg_buf_adds(out, "{\"version\":1,\"spend\":{");
    pthread_mutex_lock(&reg->lock);
    for (b = reg->head; b != NULL; b = b->next) {
        int64_t start, spent;
        pthread_mutex_lock(&b->lock);
        start = b->start;
        spent = b->spent;
        pthread_mutex_unlock(&b->lock);
        if (spent <= 0) {
            continue;
        }
        window_name(start, ts, sizeof(ts));
        /* key names are [A-Za-z0-9_.-]+: nothing to escape */
        mg_buf_printf(out, "%s\"%s\":{\"%s\":%lld}", n++ ? "," : "", b->name, ts,
                      (long long)spent);
    }
    pthread_mutex_unlock(&reg->lock);
    mg_buf_adds(out, "}}\n");
    return n;
}

/* Unix seconds of "YYYY-MM-DDTHH:MM:SSZ", or -1. */
static int64_t
parse_window(const char *s)
{
    struct tm tm;
    const char *end;

    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return end != NULL && *end == '\0' ? (int64_t)timegm(&tm) : -1;
}

int
mg_budget_undump(struct mg_budget_registry *reg, const char *text, size_t len, char *why,
                 size_t whylen)
{
    json_error_t err;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err), *spend, *wins, *v;
    const char *name, *win;
    int rc = -1;

    if (doc == NULL) {
        snprintf(why, whylen, "not JSON (line %d: %s)", err.line, err.text);
        return -1;
    }
    spend = json_object_get(doc, "spend");
    if (!json_is_object(doc) || json_integer_value(json_object_get(doc, "version")) != 1 ||
        !json_is_integer(json_object_get(doc, "version")) || !json_is_object(spend)) {
        snprintf(why, whylen, "not a modelgate state file (version 1 with \"spend\")");
        goto out;
    }
    json_object_foreach(spend, name, wins) {
        if (!json_is_object(wins)) {
            snprintf(why, whylen, "the spend of \"%s\" is not an object", name);
            goto out;
        }
        json_object_foreach(wins, win, v) {
            if (parse_window(win) < 0 || !json_is_integer(v) || json_integer_value(v) < 0) {
                snprintf(why, whylen, "the spend of \"%s\" in \"%s\" is not a window and a "
                         "whole number of micro-dollars", name, win);
                goto out;
            }
        }
    }
    pthread_mutex_lock(&reg->lock);
    json_object_foreach(spend, name, wins) {
        struct mg_budget *b = get_locked(reg, name);
        json_object_foreach(wins, win, v) {
            int64_t start = parse_window(win);
            if (start >= b->start) {   /* the latest window of the key */
                b->start = start;
                b->wper = -1;   /* its window is checked again at the first use */
                b->spent = (int64_t)json_integer_value(v);
            }
        }
    }
    pthread_mutex_unlock(&reg->lock);
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

int
mg_budget_save(struct mg_budget_registry *reg, const char *path, char *why, size_t whylen)
{
    struct mg_buf out, tmp;
    size_t off = 0;
    int fd, rc = -1;

    mg_buf_init(&out, 256u * 1024 * 1024);
    mg_buf_init(&tmp, 4096);
    mg_budget_dump(reg, &out);
    mg_buf_printf(&tmp, "%s.tmp", path);
    fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(why, whylen, "%s: %s", tmp.data, strerror(errno));
        goto out;
    }
    while (off < out.len) {
        ssize_t n = write(fd, out.data + off, out.len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            snprintf(why, whylen, "%s: %s", tmp.data, strerror(errno));
            close(fd);
            goto out;
        }
        off += (size_t)n;
    }
    /* the bytes reach the disk before the name points at them */
    if (fsync(fd) != 0 || close(fd) != 0) {
        snprintf(why, whylen, "%s: %s", tmp.data, strerror(errno));
        goto out;
    }
    if (rename(tmp.data, path) != 0) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    mg_buf_deinit(&out);
    mg_buf_deinit(&tmp);
    return rc;
}

int
mg_budget_load(struct mg_budget_registry *reg, const char *path, char *why, size_t whylen)
{
    char inner[256];
    struct mg_buf text;
    char chunk[8192];
    size_t n;
    FILE *f = fopen(path, "rb");
    int rc = 0;

    if (f == NULL) {
        if (errno == ENOENT) {
            return 0;
        }
        snprintf(why, whylen, "state_file %s: %s", path, strerror(errno));
        return -1;
    }
    mg_buf_init(&text, 256u * 1024 * 1024);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (mg_buf_add(&text, chunk, n) != MG_OK) {
            rc = -1;
            snprintf(inner, sizeof(inner), "larger than 256 MiB");
            break;
        }
    }
    if (ferror(f)) {
        rc = -1;
        snprintf(inner, sizeof(inner), "%s", strerror(errno));
    }
    fclose(f);
    if (rc == 0 && mg_budget_undump(reg, text.data ? text.data : "", text.len, inner,
                                    sizeof(inner)) != 0) {
        rc = -1;
    }
    if (rc != 0) {
        snprintf(why, whylen, "state_file %s is damaged: %s (move it away to start with no "
                 "spend)", path, inner);
    }
    mg_buf_deinit(&text);
    return rc;
}
