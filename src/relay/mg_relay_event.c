/*
 * mg_relay_event — what one event of a stream is for the commit gate (the fields every API
 * shares, then the API's classifier), and the message of a backend's error event.
 */
#include <string.h>

#include <jansson.h>

#include "mg_api_types.h"
#include "mg_relay.h"
#include "mg_relay_int.h"
#include "mg_util.h"

/* ---- events ------------------------------------------------------------------------------- */

/* An event's "event:" name and its data (several data lines joined by '\n' into join). */
static void
event_fields(const char *p, size_t n, const char **name, size_t *nlen, const char **data,
             size_t *dlen, struct mg_buf *join)
{
    const char *end = p + n, *line = p;
    int ndata = 0;

    *name = NULL;
    *nlen = 0;
    *data = NULL;
    *dlen = 0;
    while (line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line)), *v;
        const char *le = eol ? eol : end;
        size_t len;
        if (le > line && le[-1] == '\r') {
            le--;
        }
        len = (size_t)(le - line);
        if (len >= 5 && memcmp(line, "data:", 5) == 0) {
            v = line + 5 + (len > 5 && line[5] == ' ');
            if (ndata++ == 0) {
                *data = v;
                *dlen = (size_t)(le - v);
            } else {
                if (ndata == 2) {
                    mg_buf_reset(join);
                    mg_buf_add(join, *data, *dlen);
                }
                mg_buf_add(join, "\n", 1);
                mg_buf_add(join, v, (size_t)(le - v));
                *data = join->data;
                *dlen = join->len;
            }
        } else if (len >= 6 && memcmp(line, "event:", 6) == 0) {
            v = line + 6 + (len > 6 && line[6] == ' ');
            *name = v;
            *nlen = (size_t)(le - v);
        }
        line = eol ? eol + 1 : end;
    }
}

static int
name_is(const char *name, size_t nlen, const char *lit)
{
    return name != NULL && nlen == strlen(lit) && memcmp(name, lit, nlen) == 0;
}

int
mg_relay_event_kind(const struct mg_api *api, int committed, const char *p, size_t n)
{
    struct mg_api_event ev;
    struct mg_buf join;
    int kind = 0;

    mg_buf_init(&join, MG_SSE_EVENT_MAX);
    event_fields(p, n, &ev.name, &ev.nlen, &ev.data, &ev.dlen, &join);
    if (name_is(ev.name, ev.nlen, "error")) {
        kind = MG_EV_ERROR;
    } else if (ev.data == NULL && ev.name == NULL) {
        kind = 0;   /* a comment, or nothing */
    } else if (ev.data != NULL && ev.dlen == 6 && memcmp(ev.data, "[DONE]", 6) == 0) {
        kind = MG_EV_DONE;
    } else {
        kind = api->event_kind(committed, &ev);
    }
    mg_buf_deinit(&join);
    return kind;
}

size_t
mg_relay_event_error(const char *p, size_t n, char *msg, size_t len)
{
    const char *name, *data, *m = NULL;
    size_t nlen, dlen;
    struct mg_buf join;
    json_t *j, *e;
    int w;

    mg_buf_init(&join, MG_SSE_EVENT_MAX);
    event_fields(p, n, &name, &nlen, &data, &dlen, &join);
    j = data ? json_loadb(data, dlen, 0, NULL) : NULL;
    e = json_object_get(j, "error");
    m = json_string_value(json_object_get(json_is_object(e) ? e : j, "message"));
    if (m == NULL && json_is_string(e)) {
        m = json_string_value(e);
    }
    w = snprintf(msg, len, "%s", m != NULL ? m : "the backend sent an error event");
    json_decref(j);
    mg_buf_deinit(&join);
    return w < 0 ? 0 : (size_t)w < len ? (size_t)w : len - 1;
}
