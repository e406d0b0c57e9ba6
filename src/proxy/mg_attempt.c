/*
 * mg_attempt — one transfer to one backend, and the decision table of what its events mean.
 *
 * Nothing is freed inside a curl callback: the header and write callbacks only record and relay;
 * the end of a transfer is reported from mg_upstream after curl_multi_socket_action() returned,
 * and timeouts from the attempt's own timer event.
 */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "mg_attempt.h"
#include "mg_conf_types.h"
#include "mg_failover.h"
#include "mg_log.h"

/* ---- the transfer ------------------------------------------------------------------------- */

static void
arm_timer(struct mg_attempt *a, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

    evtimer_add(&a->timer, &tv);
}

/* When a stream must have committed: request sent + first_token. */
static int64_t
first_token_due(const struct mg_attempt *a)
{
    return a->t_sent + a->backend->timeouts.first_token_ms;
}

/*
 * The timer while body bytes are awaited: idle; and for a stream not committed yet, no later
 * than its first_token deadline. An idle timer already armed is not moved on every chunk (a
 * timer-heap update each): the deadline is noted, and when the timer fires early, on_timer()
 * arms it again for what is left, as nginx does with its lazy timers.
 */
static void
arm_body_timer(struct mg_attempt *a)
{
    int64_t ms = a->backend->timeouts.idle_ms, now = mg_now_ms();

    if (a->phase == MG_PHASE_OPEN && a->head.sse) {
        int64_t left = first_token_due(a) - now;
        if (left < ms) {
            a->timer_first_token = 1;   /* what fires is the first_token deadline */
            a->timer_idle = 0;
            arm_timer(a, left > 0 ? left : 0);
            return;
        }
    }
    a->timer_first_token = 0;
    a->idle_due = now + ms;
    if (!a->timer_idle || !evtimer_pending(&a->timer, NULL)) {
        a->timer_idle = 1;
        arm_timer(a, ms);
    }
}

static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
    struct mg_attempt *a = arg;
    size_t len = size * n;
    enum mg_outcome o;

    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        mg_head_reset(&a->head);   /* a new head: the first, or the one after a 1xx */
        return len;
    }
    if (len > 2 || (data[0] != '\r' && data[0] != '\n')) {
        return mg_head_line(&a->head, data, len) == MG_OK ? len : 0;
    }
    if (curl_easy_getinfo(a->xfer.easy, CURLINFO_RESPONSE_CODE, &a->head.status) != CURLE_OK) {
        return 0;   /* no status to classify: the transfer fails (a write error) */
    }
    o = mg_outcome_classify(a->phase, MG_AEV_HEAD, a->schema->classify(&a->head), CURLE_OK, 0);
    if (o == MG_OUTCOME_PENDING) {
        return len;
    }
    a->outcome = o;
    a->phase = o == MG_OUTCOME_HOLD ? MG_PHASE_HOLD
             : o == MG_OUTCOME_INSPECT ? MG_PHASE_INSPECT : MG_PHASE_OPEN;
    arm_body_timer(a);
    if (o == MG_OUTCOME_OPEN) {
        a->ops->head(a->owner, a, o);
    }
    return len;
}

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
    struct mg_attempt *a = arg;
    size_t len = size * n, r;

    if (a->phase == MG_PHASE_HOLD || a->phase == MG_PHASE_INSPECT) {
        if (mg_buf_add(&a->held, data, len) == MG_OK) {
            arm_body_timer(a);
            return len;
        }
        if (a->phase == MG_PHASE_HOLD) {
            a->held_cut = 1;
            return 0;   /* a fail-over answer longer than we read: fail at once */
        }
        /* a 400 this long is no context-length error: it is the answer */
        a->phase = MG_PHASE_OPEN;
        a->outcome = MG_OUTCOME_OPEN;
        a->ops->head(a->owner, a, MG_OUTCOME_OPEN);
        if (a->ops->body(a->owner, a, a->held.data, a->held.len) != a->held.len) {
            return 0;
        }
        mg_buf_reset(&a->held);
    }
    if (a->phase != MG_PHASE_OPEN && a->phase != MG_PHASE_RELAY) {
        return 0;
    }
    r = a->ops->body(a->owner, a, data, len);
    if (r == MG_ATTEMPT_PAUSE) {
        /* The client reads slower than the backend writes: hold the backend, not the bytes. */
        a->paused = 1;
        evtimer_del(&a->timer);
        return r;
    }
    arm_body_timer(a);
    return r;
}

/* The connection is ready and the request is about to be sent: first_byte starts now. */
static int
on_prereq(void *arg, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
          int conn_local_port)
{
    struct mg_attempt *a = arg;

    a->t_sent = mg_now_ms();
    a->timer_idle = 0;
    /* a stream must commit within first_token of now, so a backend that never sends its head
     * is cut then too, not only at first_byte */
    a->timer_first_token = a->stream &&
                           a->backend->timeouts.first_token_ms < a->backend->timeouts.first_byte_ms;
    arm_timer(a, a->timer_first_token ? a->backend->timeouts.first_token_ms
                                      : a->backend->timeouts.first_byte_ms);
    return CURL_PREREQFUNC_OK;
}

static void
release_easy(struct mg_attempt *a)
{
    if (a->xfer.easy != NULL) {
        mg_upstream_easy_put(a->upstream, a->xfer.easy);
        a->xfer.easy = NULL;
    }
}

static void
on_done(void *arg, CURLcode rc)
{
    struct mg_attempt *a = arg;

    release_easy(a);
    evtimer_del(&a->timer);
    a->rc = rc;
    if (a->phase == MG_PHASE_HOLD && rc != CURLE_OK) {
        a->held_cut = 1;
    }
    if (a->phase == MG_PHASE_INSPECT && rc == CURLE_OK &&
        mg_failover_context_length(a->held.data, a->held.len)) {
        a->flags |= MG_AF_CONTEXT;
    }
    a->outcome = mg_outcome_classify(a->phase, MG_AEV_END, MG_HEAD_PENDING, rc, a->flags);
    a->ops->end(a->owner, a, a->outcome);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mg_attempt *a = arg;
    int64_t left = a->timer_idle ? a->idle_due - mg_now_ms() : 0;

    if (left > 0) {
        arm_timer(a, left);   /* bytes came since it was armed */
        return;
    }
    a->timeout = a->timer_first_token ? "timed out (first_token)"
               : a->phase == MG_PHASE_WAIT ? "timed out (first_byte)" : "timed out (idle)";
    mg_attempt_stop(a);
    if (a->phase == MG_PHASE_HOLD) {
        a->held_cut = 1;
    }
    a->outcome = mg_outcome_classify(a->phase, MG_AEV_TIMEOUT, MG_HEAD_PENDING,
                                     CURLE_OPERATION_TIMEDOUT, a->flags);
    a->ops->end(a->owner, a, a->outcome);
}

void
mg_attempt_init(struct mg_attempt *a, struct event_base *base, struct mg_upstream *up,
                size_t max_body, const struct mg_attempt_ops *ops, void *owner)
{
    memset(a, 0, sizeof(*a));
    mg_upreq_init(&a->up, max_body);
    mg_head_init(&a->head);
    mg_buf_init(&a->held, MG_HELD_BODY_MAX);
    evtimer_assign(&a->timer, base, on_timer, a);
    a->upstream = up;
    a->ops = ops;
    a->owner = owner;
}

void
mg_attempt_deinit(struct mg_attempt *a)
{
    mg_attempt_stop(a);
    mg_upreq_deinit(&a->up);
    mg_head_deinit(&a->head);
    mg_buf_deinit(&a->held);
}

void
mg_attempt_reset(struct mg_attempt *a, const struct mg_backend *b,
                 const struct mg_rule_backend *e)
{
    a->backend = b;
    a->entry = e;
    a->schema = mg_schema_get(b->schema);
    mg_upreq_reset(&a->up);
    mg_head_reset(&a->head);
    mg_buf_reset(&a->held);
    a->phase = MG_PHASE_WAIT;
    a->timer_first_token = 0;
    a->timer_idle = 0;
    a->outcome = MG_OUTCOME_PENDING;
    a->held_cut = 0;
    a->flags = 0;
    a->t_sent = mg_now_ms();
    a->timeout = NULL;
    a->rc = CURLE_OK;
    a->paused = 0;
    a->errbuf[0] = '\0';
}

/*
 * Sets one option of the attempt's handle; a refusal fails the attempt (the proxy counts it and
 * moves on) with the option's name in the attempt's error text.
 */
#define SET(opt, val)                                                                           \
    do {                                                                                        \
        if ((rc = curl_easy_setopt(e, opt, val)) != CURLE_OK) {                                 \
            failed = #opt;                                                                      \
            goto error;                                                                         \
        }                                                                                       \
    } while (0)

int
mg_attempt_start(struct mg_attempt *a)
{
    const struct mg_backend *b = a->backend;
    struct curl_slist *headers;
    const char *failed = NULL;
    CURLcode rc;
    CURL *e;

    if (a->up.body_len > 1024 * 1024) {
        /* above 1 MiB curl would ask for 100-continue and wait for it: an empty Expect: says
         * no (below, curl sends none, and the header would only cost a line) */
        mg_schema_add_line(&a->up, "Expect:");
    }
    headers = mg_schema_header_list(&a->up);
    if (a->up.lines_cut) {
        snprintf(a->errbuf, sizeof(a->errbuf), "upstream header lines over %d KiB",
                 MG_SCHEMA_LINES_MAX / 1024);
        return MG_ERR;
    }
    e = mg_upstream_easy_get(a->upstream);
    a->xfer.easy = e;

    /* Every option that varies is set on every attempt; the constant ones stay on pooled handles
     * (no curl_easy_reset, which costs as much as setting them all again). */
    if (mg_upstream_easy_fresh(e)) {
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_HEADERFUNCTION, on_header);
        SET(CURLOPT_WRITEFUNCTION, on_body);
        SET(CURLOPT_PREREQFUNCTION, on_prereq);
        SET(CURLOPT_NOPROXY, "");   /* NO_PROXY was applied at load */
    }
    SET(CURLOPT_PROXY, b->proxy ? b->proxy : "");
    {
        CURLU *u = mg_upstream_url(a->upstream, a->up.url.data);
        SET(CURLOPT_CURLU, u);   /* NULL clears a pooled handle's last one */
        if (u == NULL) {
            SET(CURLOPT_URL, a->up.url.data);
        }
    }
    if (a->up.method == NULL) {   /* POSTFIELDS makes it a POST again on a pooled handle */
        SET(CURLOPT_POSTFIELDS, a->up.body);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)a->up.body_len);
        SET(CURLOPT_CUSTOMREQUEST, NULL);
    } else {
        SET(CURLOPT_HTTPGET, 1L);
        SET(CURLOPT_CUSTOMREQUEST, strcmp(a->up.method, "GET") == 0 ? NULL : a->up.method);
    }
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_HEADERDATA, a);
    SET(CURLOPT_WRITEDATA, a);
    SET(CURLOPT_PREREQDATA, a);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)b->timeouts.connect_ms);
    SET(CURLOPT_TIMEOUT_MS, (long)b->timeouts.total_ms);
    SET(CURLOPT_ERRORBUFFER, a->errbuf);
    a->xfer.done = on_done;
    a->xfer.arg = a;
    if (mg_upstream_start(a->upstream, &a->xfer) != MG_OK) {
        release_easy(a);
        return MG_ERR;
    }
    return MG_OK;

error:
    snprintf(a->errbuf, sizeof(a->errbuf), "curl_easy_setopt %s: %s", failed,
             curl_easy_strerror(rc));
    mg_log_error("backend %s: %s", b->name, a->errbuf);
    release_easy(a);
    return MG_ERR;
}

#undef SET

void
mg_attempt_stop(struct mg_attempt *a)
{
    if (a->xfer.easy != NULL) {
        mg_upstream_cancel(a->upstream, &a->xfer);
        release_easy(a);
    }
    evtimer_del(&a->timer);
}

void
mg_attempt_committed(struct mg_attempt *a)
{
    a->phase = MG_PHASE_RELAY;
}

void
mg_attempt_resume(struct mg_attempt *a)
{
    CURLcode rc;

    if (a->paused && a->xfer.easy != NULL) {
        a->paused = 0;
        arm_body_timer(a);
        if ((rc = curl_easy_pause(a->xfer.easy, CURLPAUSE_CONT)) != CURLE_OK) {
            /* the transfer stays paused: the idle timer, armed above, ends it */
            mg_log_error("backend %s: curl_easy_pause: %s", a->backend->name,
                         curl_easy_strerror(rc));
        }
    }
}

const char *
mg_attempt_reason(const struct mg_attempt *a)
{
    switch (a->outcome) {
    case MG_OUTCOME_FAIL_TIMEOUT:
        return a->timeout != NULL ? a->timeout : "timed out";
    case MG_OUTCOME_FAIL_EVENT:
        return "error event before any output";
    case MG_OUTCOME_FAIL_EMPTY:
        return "event stream ended before any event";
    case MG_OUTCOME_FAIL_CONTEXT:
        return "context length exceeded";
    case MG_OUTCOME_FAIL_STATUS:
        return a->held_cut ? "error answer cut short" : "error answer";
    default:
        break;
    }
    if (a->timeout != NULL) {
        return a->timeout;
    }
    switch (a->rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return "connection failed";
    case CURLE_OPERATION_TIMEDOUT:
        return "timed out";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
        return "TLS error";
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return "connection closed";
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_WRITE_ERROR:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return "invalid answer";
    default:
        return "transfer failed";
    }
}

const char *
mg_attempt_error(const struct mg_attempt *a)
{
    if (a->timeout != NULL) {
        return a->timeout;
    }
    return a->errbuf[0] ? a->errbuf : curl_easy_strerror(a->rc);
}
