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
#include "mg_conf.h"

enum mg_outcome
mg_outcome_classify(enum mg_phase phase, enum mg_attempt_event ev, enum mg_head_class cls,
                    CURLcode rc)
{
    switch (ev) {
    case MG_AEV_HEAD:
        if (cls == MG_HEAD_PENDING) {
            return MG_OUTCOME_PENDING;
        }
        return cls == MG_HEAD_FAILOVER ? MG_OUTCOME_HOLD : MG_OUTCOME_COMMIT;
    case MG_AEV_END:
        if (phase == MG_PHASE_RELAY) {
            return rc == CURLE_OK ? MG_OUTCOME_COMPLETE : MG_OUTCOME_CUT;
        }
        if (phase == MG_PHASE_HOLD) {
            return MG_OUTCOME_FAIL_STATUS;   /* what was read of it is passed on if it is last */
        }
        return rc == CURLE_OPERATION_TIMEDOUT ? MG_OUTCOME_FAIL_TIMEOUT : MG_OUTCOME_FAIL_ERROR;
    case MG_AEV_TIMEOUT:
    default:
        if (phase == MG_PHASE_RELAY) {
            return MG_OUTCOME_CUT;
        }
        return phase == MG_PHASE_HOLD ? MG_OUTCOME_FAIL_STATUS : MG_OUTCOME_FAIL_TIMEOUT;
    }
}

int
mg_outcome_fails(enum mg_outcome o)
{
    return o == MG_OUTCOME_FAIL_STATUS || o == MG_OUTCOME_FAIL_ERROR ||
           o == MG_OUTCOME_FAIL_TIMEOUT;
}

const char *
mg_outcome_result(enum mg_outcome o, long status, char *buf, size_t len)
{
    switch (o) {
    case MG_OUTCOME_FAIL_STATUS:
        snprintf(buf, len, "http_%ld", status);
        return buf;
    case MG_OUTCOME_FAIL_TIMEOUT:
        return "timeout";
    case MG_OUTCOME_FAIL_ERROR:
        return "error";
    default:
        return "ok";
    }
}

/* ---- the transfer ------------------------------------------------------------------------- */

static void
arm_timer(struct mg_attempt *a, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

    evtimer_add(&a->timer, &tv);
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
    curl_easy_getinfo(a->xfer.easy, CURLINFO_RESPONSE_CODE, &a->head.status);
    o = mg_outcome_classify(a->phase, MG_AEV_HEAD, a->schema->classify(&a->head), CURLE_OK);
    if (o == MG_OUTCOME_PENDING) {
        return len;
    }
    arm_timer(a, a->backend->timeouts.idle_ms);
    a->phase = o == MG_OUTCOME_HOLD ? MG_PHASE_HOLD : MG_PHASE_RELAY;
    a->outcome = o;
    a->ops->head(a->owner, a, o);
    return len;
}

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
    struct mg_attempt *a = arg;
    size_t len = size * n, r;

    if (a->phase == MG_PHASE_HOLD) {
        size_t room = MG_HELD_BODY_MAX - a->held.len;
        mg_buf_add(&a->held, data, len < room ? len : room);
        arm_timer(a, a->backend->timeouts.idle_ms);
        return len;
    }
    if (a->phase != MG_PHASE_RELAY) {
        return 0;
    }
    r = a->ops->body(a->owner, a, data, len);
    if (r == MG_ATTEMPT_PAUSE) {
        /* The client reads slower than the backend writes: hold the backend, not the bytes. */
        a->paused = 1;
        evtimer_del(&a->timer);
        return r;
    }
    arm_timer(a, a->backend->timeouts.idle_ms);
    return r;
}

/* The connection is ready and the request is about to be sent: first_byte starts now. */
static int
on_prereq(void *arg, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
          int conn_local_port)
{
    struct mg_attempt *a = arg;

    arm_timer(a, a->backend->timeouts.first_byte_ms);
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
    a->outcome = mg_outcome_classify(a->phase, MG_AEV_END, MG_HEAD_PENDING, rc);
    a->ops->end(a->owner, a, a->outcome);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mg_attempt *a = arg;

    a->timeout = a->phase == MG_PHASE_WAIT ? "timed out (first_byte)" : "timed out (idle)";
    mg_attempt_stop(a);
    a->outcome = mg_outcome_classify(a->phase, MG_AEV_TIMEOUT, MG_HEAD_PENDING,
                                     CURLE_OPERATION_TIMEDOUT);
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
    a->outcome = MG_OUTCOME_PENDING;
    a->timeout = NULL;
    a->rc = CURLE_OK;
    a->paused = 0;
    a->errbuf[0] = '\0';
}

int
mg_attempt_start(struct mg_attempt *a)
{
    const struct mg_backend *b = a->backend;
    CURL *e = mg_upstream_easy_get(a->upstream);

    /* Every option that varies is set on every attempt; the constant ones stay on pooled handles
     * (no curl_easy_reset, which costs as much as setting them all again). */
    if (mg_upstream_easy_fresh(e)) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
    }
    curl_easy_setopt(e, CURLOPT_URL, a->up.url.data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, a->up.body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)a->up.body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, a->up.headers);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, a);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)b->timeouts.connect_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)b->timeouts.total_ms);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->errbuf);
    a->xfer.easy = e;
    a->xfer.done = on_done;
    a->xfer.arg = a;
    if (mg_upstream_start(a->upstream, &a->xfer) != MG_OK) {
        release_easy(a);
        return MG_ERR;
    }
    return MG_OK;
}

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
mg_attempt_resume(struct mg_attempt *a)
{
    if (a->paused && a->xfer.easy != NULL) {
        a->paused = 0;
        arm_timer(a, a->backend->timeouts.idle_ms);
        curl_easy_pause(a->xfer.easy, CURLPAUSE_CONT);
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
