/*
 * mg_access — buffered JSON access log lines; see mg_access.h for the design.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "mg_access.h"
#include "mg_json.h"
#include "mg_log.h"
#include "mg_util.h"

#define WRITE_MAX  4096     /* PIPE_BUF: one write of at most this never interleaves */
#define FLUSH_MS   100

/* Process-wide on purpose, not in the runtime: one file for the whole process, opened at start
 * and reopened by SIGUSR1; the workers' buffers (struct mg_access_out) are their own. */
static int        log_fd = -1;       /* fixed for the life of the process once opened */
static atomic_int log_on;
static char      *log_path;          /* NULL for stdout */

struct mg_access_out {
    struct mg_buf  buf;
    struct event  *timer;
    time_t         sec;          /* the second ts_prefix was made for */
    char           ts_prefix[40];/* {"time":"2026-11-26T13:49:27. */
};

static int
open_target(const char *path, char *err, size_t errlen)
{
    int fd = strcmp(path, "-") == 0 ? dup(1)
                                    : open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open access log %s: %s", path, strerror(errno));
    }
    return fd;
}

/*
 * Puts the newly opened file under the descriptor the workers write to (it never changes, so no
 * worker needs telling). When that fails the log keeps going to the old file; the caller says
 * so.
 */
static int
switch_fd(int fd, const char *path, char *err, size_t errlen)
{
    int rc = dup2(fd, log_fd) < 0 ? MG_ERR : MG_OK;

    if (rc != MG_OK) {
        snprintf(err, errlen, "access log %s: dup2: %s", path, strerror(errno));
    }
    close(fd);
    return rc;
}

int
mg_access_open(const char *path, char *err, size_t errlen)
{
    int fd;

    if (path == NULL) {
        atomic_store(&log_on, 0);
        return MG_OK;
    }
    fd = open_target(path, err, errlen);
    if (fd < 0) {
        return MG_ERR;
    }
    if (log_fd < 0) {
        log_fd = fd;
    } else if (switch_fd(fd, path, err, errlen) != MG_OK) {
        return MG_ERR;
    }
    free(log_path);
    log_path = strcmp(path, "-") == 0 ? NULL : mg_strdup(path);
    atomic_store(&log_on, 1);
    return MG_OK;
}

int
mg_access_reopen(char *err, size_t errlen)
{
    if (log_path == NULL || log_fd < 0) {
        return MG_OK;   /* stdout or off: nothing to reopen */
    }
    int fd = open_target(log_path, err, errlen);
    if (fd < 0) {
        return MG_ERR;
    }
    return switch_fd(fd, log_path, err, errlen);
}

int
mg_access_enabled(void)
{
    return atomic_load_explicit(&log_on, memory_order_relaxed);
}

void
mg_access_close(void)
{
    if (log_fd >= 0) {
        close(log_fd);
        log_fd = -1;
    }
    free(log_path);
    log_path = NULL;
    atomic_store(&log_on, 0);
}

/* Writes out whole lines, at most WRITE_MAX bytes per write(). */
static void
flush(struct mg_access_out *o)
{
    size_t off = 0;

    while (off < o->buf.len) {
        size_t n = o->buf.len - off;
        if (n > WRITE_MAX) {
            /* cut after the last newline that fits; a longer single line goes alone */
            const char *nl = memrchr(o->buf.data + off, '\n', WRITE_MAX);
            n = nl ? (size_t)(nl - (o->buf.data + off)) + 1 : n;
        }
        if (log_fd >= 0 && write(log_fd, o->buf.data + off, n) < 0 && errno != EAGAIN) {
            break;   /* a full disk must not stop the gateway: lines are dropped */
        }
        off += n;
    }
    mg_buf_reset(&o->buf);
}

static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
    flush(arg);
}

struct mg_access_out *
mg_access_out_create(struct event_base *base)
{
    struct mg_access_out *o = mg_calloc(1, sizeof(*o));

    mg_buf_init(&o->buf, 1024 * 1024);
    o->timer = evtimer_new(base, on_flush, o);
    if (o->timer == NULL) {
        abort();
    }
    return o;
}

void
mg_access_out_destroy(struct mg_access_out *o)
{
    if (o == NULL) {
        return;
    }
    flush(o);
    event_free(o->timer);
    mg_buf_deinit(&o->buf);
    free(o);
}

/* Appends the decimal digits of v (no printf: this runs for every request). */
static void
add_int(struct mg_buf *b, int64_t v)
{
    char d[24];
    size_t i = sizeof(d);
    uint64_t u = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;

    do {
        d[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        d[--i] = '-';
    }
    mg_buf_add(b, d + i, sizeof(d) - i);
}

/* Microseconds as milliseconds with three decimals. */
static void
add_ms(struct mg_buf *b, int64_t us)
{
    char frac[4];

    add_int(b, us / 1000);
    frac[0] = '.';
    frac[1] = (char)('0' + (us / 100) % 10);
    frac[2] = (char)('0' + (us / 10) % 10);
    frac[3] = (char)('0' + us % 10);
    mg_buf_add(b, frac, 4);
}

/* ,"name": then a JSON string, or null */
static void
str_field(struct mg_buf *b, const char *name, const char *v)
{
    mg_buf_add(b, ",\"", 2);
    mg_buf_adds(b, name);
    mg_buf_add(b, "\":", 2);
    if (v == NULL) {
        mg_buf_adds(b, "null");
    } else {
        mg_json_quote(b, v, strlen(v));
    }
}

/* ,"name": then the number, or null when it is negative */
static void
int_field(struct mg_buf *b, const char *name, int64_t v, int ms)
{
    mg_buf_add(b, ",\"", 2);
    mg_buf_adds(b, name);
    mg_buf_add(b, "\":", 2);
    if (v < 0) {
        mg_buf_adds(b, "null");
    } else if (ms) {
        add_ms(b, v);
    } else {
        add_int(b, v);
    }
}

void
mg_access_log(struct mg_access_out *o, const struct mg_access_rec *r)
{
    struct timespec now;
    struct tm tm;
    char ts[40];
    size_t i, before;

    if (!mg_access_enabled()) {
        return;
    }
    before = o->buf.len;
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != o->sec) {   /* the date part changes once a second */
        o->sec = now.tv_sec;
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(o->ts_prefix, sizeof(o->ts_prefix), "{\"time\":\"%s.", ts);
    }
    mg_buf_adds(&o->buf, o->ts_prefix);
    {
        char msz[5] = {(char)('0' + now.tv_nsec / 100000000), (char)('0' + now.tv_nsec / 10000000 % 10),
                       (char)('0' + now.tv_nsec / 1000000 % 10), 'Z', '"'};
        mg_buf_add(&o->buf, msz, 5);
    }
    str_field(&o->buf, "request_id", r->request_id);
    str_field(&o->buf, "client", r->client);
    str_field(&o->buf, "method", r->method);
    str_field(&o->buf, "path", r->path);
    str_field(&o->buf, "model", r->model);
    if (r->api != NULL) {
        str_field(&o->buf, "api", r->api);
    }
    if (r->upstream_api != NULL) {
        str_field(&o->buf, "upstream_api", r->upstream_api);
    }
    if (r->response_id != NULL) {
        str_field(&o->buf, "response_id", r->response_id);
    }
    str_field(&o->buf, "key", r->key);
    int_field(&o->buf, "rule", r->rule, 0);
    mg_buf_adds(&o->buf, ",\"backends\":[");
    for (i = 0; i < r->nbackends; i++) {
        if (i > 0) {
            mg_buf_adds(&o->buf, ",");
        }
        mg_json_quote(&o->buf, r->backends[i], strlen(r->backends[i]));
    }
    mg_buf_add(&o->buf, "]", 1);
    int_field(&o->buf, "status", r->status, 0);
    if (r->error != NULL) {
        str_field(&o->buf, "error", r->error);
    }
    if (r->resumed > 0) {
        int_field(&o->buf, "resumed", r->resumed, 0);
    }
    int_field(&o->buf, "bytes_in", r->bytes_in, 0);
    int_field(&o->buf, "bytes_out", r->bytes_out, 0);
    int_field(&o->buf, "duration_ms", r->duration_us, 1);
    int_field(&o->buf, "ttfb_ms", r->ttfb_us, 1);
    int_field(&o->buf, "input_tokens", r->input_tokens, 0);
    int_field(&o->buf, "output_tokens", r->output_tokens, 0);
    if (r->usage_estimated) {
        mg_buf_adds(&o->buf, ",\"usage_estimated\":true");
    }
    if (r->cost_known) {   /* a JSON number exact to the micro-dollar */
        mg_buf_printf(&o->buf, ",\"cost_usd\":%lld.%06lld", (long long)(r->cost_micro / 1000000),
                      (long long)(r->cost_micro % 1000000));
    }
    if (mg_buf_adds(&o->buf, r->stream ? ",\"stream\":true}\n" : ",\"stream\":false}\n") != MG_OK) {
        /* the buffer is full (the disk is slower than the traffic): drop this line whole */
        o->buf.len = before;
        if (o->buf.data != NULL) {
            o->buf.data[before] = '\0';
        }
        flush(o);
        return;
    }
    if (o->buf.len >= WRITE_MAX) {
        flush(o);
    } else if (!evtimer_pending(o->timer, NULL)) {
        struct timeval tv = {0, FLUSH_MS * 1000};
        evtimer_add(o->timer, &tv);
    }
}
