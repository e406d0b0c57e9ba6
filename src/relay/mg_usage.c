/*
 * mg_usage — usage objects found by a scan (no JSON tree of the whole answer), and SSE events.
 *
 * A raw `"usage"` followed by a colon can only be an object key: inside a JSON string the quotes
 * around such a word would be escaped. So a byte search is exact enough, and it works on the
 * bounded tail that is all the relay keeps of a long answer.
 */
#include <string.h>

#include "mg_usage.h"
#include "mg_util.h"

static const char *
skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
    }
    return p;
}

/*
 * Position of the value of the last `"usage":` key that starts at or after from in p[0..n), or
 * NULL. The byte before a match is read from p, so a window never hides an escaping backslash.
 */
static const char *
usage_value_from(const char *p, size_t n, const char *from)
{
    const char *end = p + n, *found = NULL, *s = from;

    while ((s = mg_find(s, (size_t)(end - s), "\"usage\"", 7)) != NULL) {
        const char *v = skip_ws(s + 7, end);
        if ((s == p || s[-1] != '\\') && v < end && *v == ':') {
            found = skip_ws(v + 1, end);
        }
        s += 7;
    }
    return found;
}

/* Position of the value of the last `"usage":` key in p[0..n), or NULL. */
static const char *
last_usage_value(const char *p, size_t n)
{
    /* usage is the last member of nearly every answer and chunk: look at the end first */
    if (n > 160) {
        const char *found = usage_value_from(p, n, p + n - 160);
        if (found != NULL) {
            return found;
        }
    }
    return usage_value_from(p, n, p);
}

/* Skips one JSON value (not validated: the backend's JSON is only read, never trusted). */
static const char *
skip_value(const char *p, const char *end)
{
    int depth = 0;

    while (p < end) {
        char c = *p;
        if (c == '"') {
            for (p++; p < end && *p != '"'; p++) {
                if (*p == '\\') {
                    p++;
                }
            }
            p++;
        } else if (c == '{' || c == '[') {
            depth++;
            p++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) {
                return p;
            }
            depth--;
            p++;
        } else if (c == ',' && depth == 0) {
            return p;
        } else {
            p++;
        }
        if (depth == 0 && (c == '"' || c == '}' || c == ']')) {
            return p;
        }
    }
    return NULL;
}

/* Reads a number at *pp (advancing it) into *v when it is a usage number to believe. */
static void
read_number(const char **pp, const char *end, int64_t *v)
{
    const char *p = *pp;
    int64_t n = 0;

    /* past MG_TOKENS_MAX the digits are skipped and n stays above it: no overflow */
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        n = n > MG_TOKENS_MAX ? n : n * 10 + (*p - '0');
    }
    /* a number that is not an integer in 0..2^53-1 is absent, as if not reported */
    if (v != NULL && mg_tokens_valid(n) && !(p < end && (*p == '.' || *p == 'e' || *p == 'E'))) {
        *v = n;
    }
    *pp = p;
}

static int
key_is(const char *k, size_t klen, const char *name)
{
    return klen == strlen(name) && memcmp(k, name, klen) == 0;
}

/* Where a member's number goes: the counts of the usage object, or of its *_details object. */
static int64_t *
destination(const char *k, size_t klen, struct mg_usage *u, int64_t *cache_apart, int details)
{
    if (details) {
        return key_is(k, klen, "cached_tokens") ? &u->cached
               : key_is(k, klen, "cache_creation_tokens") ? &u->written : NULL;
    }
    if (key_is(k, klen, "prompt_tokens") || key_is(k, klen, "input_tokens")) {
        return &u->input;
    }
    if (key_is(k, klen, "completion_tokens") || key_is(k, klen, "output_tokens")) {
        return &u->output;
    }
    /* Anthropic's: counted apart from input_tokens */
    return key_is(k, klen, "cache_read_input_tokens") ? &cache_apart[0]
           : key_is(k, klen, "cache_creation_input_tokens") ? &cache_apart[1] : NULL;
}

/*
 * Reads the token counts of the usage object starting at v ('{'), and of its
 * prompt_tokens_details / input_tokens_details (cached tokens): a small hand walk over its
 * members, since this runs for every answer and a JSON tree would cost more than the proxying.
 * Returns the position after the object, or NULL when it is malformed.
 */
static const char *
read_members(const char *v, const char *end, struct mg_usage *u, int64_t *cache_apart,
             int details)
{
    const char *p = v + 1;

    for (;;) {
        const char *k, *ke;
        size_t klen;
        p = skip_ws(p, end);
        if (p >= end || *p == '}') {
            break;
        }
        if (*p != '"') {
            return NULL;
        }
        k = ++p;
        while (p < end && *p != '"') {
            p++;
        }
        ke = p++;
        klen = (size_t)(ke - k);
        p = skip_ws(p, end);
        if (p >= end || *p != ':') {
            return NULL;
        }
        p = skip_ws(p + 1, end);
        if (p < end && *p >= '0' && *p <= '9') {
            read_number(&p, end, destination(k, klen, u, cache_apart, details));
        } else if (!details && p < end && *p == '{' &&
                   (key_is(k, klen, "prompt_tokens_details") ||
                    key_is(k, klen, "input_tokens_details"))) {
            p = read_members(p, end, u, cache_apart, 1);
            if (p == NULL) {
                return NULL;
            }
            p++;
        }
        p = skip_value(p, end);
        if (p == NULL) {
            return NULL;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p++;
        } else if (p < end && *p == '}') {
            break;
        } else {
            return NULL;
        }
    }
    return p < end ? p : NULL;
}

static int
read_usage(const char *v, const char *end, struct mg_usage *u)
{
    int64_t apart[2] = {-1, -1};

    u->input = u->output = u->cached = u->written = -1;
    if (read_members(v, end, u, apart, 0) == NULL) {
        return 0;
    }
    if (apart[0] >= 0 || apart[1] >= 0) {   /* Anthropic's input_tokens is the uncached part */
        u->cached = apart[0];
        u->written = apart[1];
        if (u->input >= 0) {
            u->input = mg_tokens_add(mg_tokens_add(u->input, apart[0]), apart[1]);
        }
    }
    return u->input >= 0 || u->output >= 0;
}

int
mg_usage_has_object(const char *p, size_t n)
{
    const char *v = last_usage_value(p, n);

    return v != NULL && v < p + n && *v == '{';
}

int
mg_usage_parse(const char *p, size_t n, struct mg_usage *u)
{
    const char *v = last_usage_value(p, n);

    if (v == NULL || v >= p + n || *v != '{') {
        return 0;
    }
    return read_usage(v, p + n, u);
}

void
mg_sse_init(struct mg_sse *s)
{
    mg_buf_init(&s->ev, MG_SSE_EVENT_MAX);
    s->oversized = 0;
    s->nl = 0;
}

void
mg_sse_deinit(struct mg_sse *s)
{
    mg_buf_deinit(&s->ev);
}

void
mg_sse_feed(struct mg_sse *s, const char *p, size_t n, mg_sse_event_fn fn, void *arg)
{
    size_t i, start = 0;

    for (i = 0; i < n; i++) {
        if (p[i] != '\n') {
            if (p[i] != '\r') {
                /* any other byte ends a run of blank lines; jump to the next newline, since
                 * event bodies are long lines ('\r' before it changes nothing) */
                const char *nl = memchr(p + i, '\n', n - i);
                s->nl = 0;
                i = (nl ? (size_t)(nl - p) : n) - 1;
            }
            continue;
        }
        if (++s->nl < 2) {
            continue;
        }
        /* p[start..i] ends the current event */
        s->nl = 0;
        if (s->oversized) {
            fn(arg, p + start, i + 1 - start, 0);
            s->oversized = 0;
        } else if (s->ev.len == 0) {
            fn(arg, p + start, i + 1 - start, 1);   /* the whole event is in this piece */
        } else if (mg_buf_add(&s->ev, p + start, i + 1 - start) == MG_OK) {
            fn(arg, s->ev.data, s->ev.len, 1);
        } else {
            fn(arg, s->ev.data, s->ev.len, 0);
            fn(arg, p + start, i + 1 - start, 0);
        }
        mg_buf_reset(&s->ev);
        start = i + 1;
    }
    if (start == n) {
        return;
    }
    if (s->oversized) {
        fn(arg, p + start, n - start, 0);
    } else if (mg_buf_add(&s->ev, p + start, n - start) != MG_OK) {
        /* too big to hold: pass it on as it comes, unparsed */
        s->oversized = 1;
        fn(arg, s->ev.data ? s->ev.data : "", s->ev.len, 0);
        fn(arg, p + start, n - start, 0);
        mg_buf_reset(&s->ev);
    }
}

void
mg_sse_reset(struct mg_sse *s)
{
    mg_buf_reset(&s->ev);
    s->oversized = 0;
    s->nl = 0;
}

void
mg_sse_flush(struct mg_sse *s, mg_sse_event_fn fn, void *arg)
{
    if (s->ev.len > 0) {
        fn(arg, s->ev.data, s->ev.len, 0);
    }
    mg_buf_reset(&s->ev);
    s->oversized = 0;
    s->nl = 0;
}

int
mg_sse_is_usage_only(const char *p, size_t n)
{
    const char *v = last_usage_value(p, n), *c, *end = p + n;

    if (v == NULL || v >= end || *v != '{') {
        return 0;
    }
    c = mg_find(p, n, "\"choices\"", 9);
    if (c == NULL) {
        return 0;
    }
    c = skip_ws(c + 9, end);
    if (c >= end || *c != ':') {
        return 0;
    }
    c = skip_ws(c + 1, end);
    if (c >= end || *c != '[') {
        return 0;
    }
    c = skip_ws(c + 1, end);
    return c < end && *c == ']';
}

int
mg_sse_strip_null_usage(const char *p, size_t n, struct mg_buf *out)
{
    const char *end = p + n, *s = p, *run = p;
    int rc = MG_OK;

    while ((s = mg_find(s, (size_t)(end - s), "\"usage\"", 7)) != NULL && rc == MG_OK) {
        const char *v = skip_ws(s + 7, end), *comma = s;
        if (v < end && *v == ':') {
            v = skip_ws(v + 1, end);
        } else {
            v = NULL;
        }
        /* the member must be `, "usage": null` with its comma before it */
        while (comma > run && (comma[-1] == ' ' || comma[-1] == '\t')) {
            comma--;
        }
        if (v != NULL && end - v >= 4 && memcmp(v, "null", 4) == 0 && comma > run &&
            comma[-1] == ',') {
            const char *cut = comma - 1;
            while (cut > run && (cut[-1] == ' ' || cut[-1] == '\t')) {
                cut--;
            }
            rc = mg_buf_add(out, run, (size_t)(cut - run));
            run = v + 4;
            s = run;
            continue;
        }
        s += 7;
    }
    if (rc == MG_OK) {
        rc = mg_buf_add(out, run, (size_t)(end - run));
    }
    return rc;
}
