/*
 * mg_json — the scan of a request body (see mg_json.h for why): the top-level object's members,
 * "model", "stream", "stream_options" and the max_tokens-like limits read as every backend will.
 * The scanner itself is mg_jscan; the checks on the top-level names are mg_json_names; the stream
 * chunk reader and the body edits have files of their own.
 */
#include <stdint.h>
#include <string.h>

#include "mg_jscan.h"
#include "mg_json.h"
#include "mg_json_names.h"

/*
 * The value of "stream_options": records whether include_usage is true and, if not, the edit that
 * would make it so (see struct mg_json_req).
 */
static int
scan_stream_options(struct mg_jscan *s, struct mg_json_req *out)
{
    const unsigned char *start = s->p;
    int more, members = 0;

    out->include_usage = 0;
    if (*s->p != '{') {
        if (mg_jscan_value(s) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        out->usage_at = (size_t)(start - s->base);
        out->usage_del = (size_t)(s->p - start);
        out->usage_ins = "{\"include_usage\":true}";
        return MG_JSON_OK;
    }
    /* by default: insert as the first member, right after the brace */
    out->usage_at = (size_t)(start + 1 - s->base);
    out->usage_del = 0;
    out->usage_ins = NULL;
    for (more = mg_jscan_open(s, '}'); more == 1; more = mg_jscan_next(s, '}')) {
        const unsigned char *v;
        char key[16];
        size_t klen = 0;
        int over = 0;

        if (mg_jscan_key(s, key, sizeof(key), &klen, &over) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        members++;
        v = s->p;
        if (mg_jscan_value(s) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        if (!over && klen == 13 && memcmp(key, "include_usage", 13) == 0) {
            out->include_usage = s->p - v == 4 && memcmp(v, "true", 4) == 0;
            out->usage_at = (size_t)(v - s->base);
            out->usage_del = (size_t)(s->p - v);
            out->usage_ins = "true";
        }
    }
    if (more < 0) {
        return MG_JSON_INVALID;
    }
    if (out->usage_ins == NULL) {
        /* an empty object ("{}", "{ }") takes the member alone; else it goes before the first */
        out->usage_ins = members == 0 ? "\"include_usage\":true" : "\"include_usage\":true,";
    }
    return MG_JSON_OK;
}

/* What the JSON value starting with c is, for an error message. */
static const char *
kind_of(unsigned char c)
{
    switch (c) {
    case '"': return "a string";
    case '{': return "an object";
    case '[': return "an array";
    case 't':
    case 'f': return "a boolean";
    case 'n': return "null";
    default: return "a number";
    }
}

/* Records the first parameter with a wrong value (its value is [v, s->p)). */
static void
bad_value(struct mg_json_req *out, const struct mg_jscan *s, const unsigned char *v,
          const char *param, const char *want, const char *got)
{
    if (out->bad_param == NULL) {
        out->bad_param = param;
        out->bad_want = want;
        out->bad_got = got;
        out->bad_at = (size_t)(v - s->base);
        out->bad_len = (size_t)(s->p - v);
    }
}

#define LIMIT_WANT "an integer from 1 to 2147483647"
_Static_assert(MG_JSON_MAX_TOKENS == 2147483647, "LIMIT_WANT names MG_JSON_MAX_TOKENS");

/*
 * A max_tokens-like limit: null, or an integer from 1 to MG_JSON_MAX_TOKENS written as one
 * (OpenAI refuses 1.5, "10", 0 and -1; 1e3 and 10.0 are numbers jansson, and so the translating
 * schemas, do not take for integers).
 */
static int
scan_limit(struct mg_jscan *s, const char *param, struct mg_json_req *out)
{
    const unsigned char *v = s->p, *p;
    uint64_t n = 0;
    int rc;

    if ((rc = mg_jscan_value(s)) != MG_JSON_OK || *v == 'n') {
        return rc;
    }
    if (*v != '-' && (*v < '0' || *v > '9')) {
        bad_value(out, s, v, param, LIMIT_WANT, kind_of(*v));
        return MG_JSON_OK;
    }
    for (p = v; p < s->p && *p >= '0' && *p <= '9' && n <= MG_JSON_MAX_TOKENS; p++) {
        n = n * 10 + (uint64_t)(*p - '0');
    }
    if (p == s->p && n >= 1 && n <= MG_JSON_MAX_TOKENS) {
        /* the largest limit given bounds the answer: the token limit's estimate adds it */
        out->max_tokens = (int64_t)n > out->max_tokens ? (int64_t)n : out->max_tokens;
        return MG_JSON_OK;
    }
    for (p = v; p < s->p && *p != '.' && *p != 'e' && *p != 'E'; p++) {
    }
    bad_value(out, s, v, param, LIMIT_WANT,
              p < s->p ? "a decimal number" : "an integer out of range");
    return MG_JSON_OK;
}

/* The top-level object's members (s->p on its '{'); what mg_json_scan_request answers. */
static int
scan_top(struct mg_jscan *s, char *buf, size_t bufsize, struct mg_json_req *out,
         struct mg_json_names *ns)
{
    int have_model = 0, model_long = 0, more, rc;
    const char *variant = NULL;
    char key[24];

    s->depth = 1;
    for (more = mg_jscan_open(s, '}'); more == 1; more = mg_jscan_next(s, '}')) {
        const unsigned char *v;
        const char *name;
        size_t len;

        if (mg_json_names_take(s, key, sizeof(key), ns, &name, &len) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        v = s->p;
#define NAME_IS(lit) (name != NULL && len == sizeof(lit) - 1 && memcmp(name, lit, len) == 0)
        if (NAME_IS("model")) {
            if (*s->p == '"') {
                int overflow = 0;
                out->model_start = (size_t)(s->p - s->base);
                if (mg_jscan_string(s, buf, bufsize, &out->model_len, &overflow) != MG_JSON_OK) {
                    return MG_JSON_INVALID;
                }
                out->model_end = (size_t)(s->p - s->base);
                have_model = 1;
                model_long = overflow;
            } else {
                if (mg_jscan_value(s) != MG_JSON_OK) {
                    return MG_JSON_INVALID;
                }
                have_model = 0;
            }
        } else if (NAME_IS("stream")) {
            if (mg_jscan_value(s) != MG_JSON_OK) {
                return MG_JSON_INVALID;
            }
            out->stream = *v == 't';
            if (*v != 't' && *v != 'f' && *v != 'n') {
                bad_value(out, s, v, "stream", "a boolean", kind_of(*v));
            }
        } else if (NAME_IS("stream_options")) {
            if ((rc = scan_stream_options(s, out)) != MG_JSON_OK) {
                return rc;
            }
        } else if (NAME_IS("max_tokens") || NAME_IS("max_completion_tokens") ||
                   NAME_IS("max_output_tokens")) {
            /* name points into the body or key: the parameter's name must outlive both */
            const char *param = len == 10 ? "max_tokens" : len == 21 ? "max_completion_tokens"
                                                                     : "max_output_tokens";
            if ((rc = scan_limit(s, param, out)) != MG_JSON_OK) {
                return rc;
            }
        } else {
            if (NAME_IS("temperature")) {
                out->temperature_at = (size_t)(v - s->base) + 1;
            } else if (NAME_IS("top_p")) {
                out->top_p_at = (size_t)(v - s->base) + 1;
            }
            /* a variant of model or stream starts with m, s or the long s (0xC5 0xBF) */
            unsigned char c0 = name != NULL && len != 0 ? (unsigned char)name[0] : 0;
            if (variant == NULL && len >= 5 && len <= 7 &&
                ((c0 | 0x20) == 'm' || (c0 | 0x20) == 's' || c0 == 0xC5)) {
                variant = mg_json_names_variant(name, len, "model")    ? "model"
                          : mg_json_names_variant(name, len, "stream") ? "stream" : NULL;
            }
            if ((rc = mg_jscan_value(s)) != MG_JSON_OK) {
                return rc;
            }
        }
#undef NAME_IS
    }
    if (more < 0) {
        return MG_JSON_INVALID;
    }
    out->obj_end = (size_t)(s->p - 1 - s->base);
    if (out->usage_ins == NULL) {   /* no stream_options: add it as the last member */
        out->usage_at = out->obj_end;
        out->usage_del = 0;
        out->usage_ins = ",\"stream_options\":{\"include_usage\":true}";
    }
    mg_jscan_ws(s);
    if (s->p != s->end) {
        return MG_JSON_INVALID;
    }
    if (mg_json_names_duplicate(ns, s->end)) {
        return MG_JSON_DUPLICATE;
    }
    if (variant != NULL) {
        out->bad_param = variant;
        out->bad_want = out->bad_got = NULL;
        out->bad_at = out->bad_len = 0;
        return MG_JSON_NAME_CASE;
    }
    if (out->bad_param != NULL) {
        return MG_JSON_BAD_VALUE;
    }
    if (!have_model) {
        return MG_JSON_NO_MODEL;
    }
    return model_long ? MG_JSON_MODEL_LONG : MG_JSON_OK;
}

int
mg_json_scan_request(const char *body, size_t len, char *buf, size_t bufsize,
                     struct mg_json_req *out)
{
    struct mg_jscan s = {(const unsigned char *)body, (const unsigned char *)body + len,
                     (const unsigned char *)body, 0};
    struct mg_json_names ns;
    int rc;

    memset(out, 0, sizeof(*out));
    out->model = buf;
    mg_jscan_ws(&s);
    if (s.p >= s.end) {
        return MG_JSON_INVALID;
    }
    if (*s.p != '{') {
        if (mg_jscan_value(&s) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        mg_jscan_ws(&s);
        return s.p == s.end ? MG_JSON_NOT_OBJECT : MG_JSON_INVALID;
    }
    mg_json_names_init(&ns);
    rc = scan_top(&s, buf, bufsize, out, &ns);
    mg_json_names_deinit(&ns);
    return rc;
}
