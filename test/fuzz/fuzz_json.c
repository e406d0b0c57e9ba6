/*
 * Fuzz target: the request-body scanner (mg_json_scan_request) against jansson, and the rewrite
 * (mg_json_rewrite) it drives. Checked for every input:
 * - the scanner and jansson agree on validity, except where jansson is the stricter one by design
 *   (numbers it cannot hold, NUL in keys) or the scanner is (nesting over MG_JSON_MAX_DEPTH);
 * - the top-level checks agree with jansson's tree and an independent count of the members:
 *   MG_JSON_DUPLICATE exactly when the text has more top-level members than jansson's object
 *   (which keeps one of equal names), else MG_JSON_NAME_CASE exactly when one of jansson's names
 *   folds (ASCII case, long s) to "model" or "stream" without being it, else MG_JSON_BAD_VALUE
 *   exactly when jansson's "stream" is not a boolean or null or a max_tokens-like limit not null
 *   or an integer from 1 to MG_JSON_MAX_TOKENS;
 * - on MG_JSON_OK: the model sits between quotes at [model_start, model_end) and equals jansson's
 *   top-level "model", stream and include_usage equal jansson's reading;
 * - the rewrite with a new model and add_usage is valid JSON per jansson and the scanner, holds
 *   the new model, stream_options.include_usage true, and every other member unchanged;
 * - a rewrite without edits is the input byte for byte.
 */
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "mg_json.h"

/* Nesting depth of a jansson value, counted as the scanner counts it (the top object is 1). */
static size_t
depth(const json_t *v)
{
    size_t d = 0, i;
    const char *k;
    json_t *x;

    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, x) {
            size_t e = depth(x);
            d = e > d ? e : d;
        }
        return d + 1;
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, x) {
            size_t e = depth(x);
            d = e > d ? e : d;
        }
        return d + 1;
    }
    return 0;
}

/* jansson refuses these valid RFC 8259 texts on purpose; the scanner takes them. */
static int
jansson_only_limit(const json_error_t *err)
{
    enum json_error_code c = json_error_code(err);

    return c == json_error_numeric_overflow || c == json_error_null_byte_in_key;
}

/* Every member of a and b other than skip is in both and equal. */
static int
same_members_but(const json_t *a, const json_t *b, const char *skip1, const char *skip2)
{
    const char *k;
    json_t *v;
    size_t na = 0, nb = 0;

    json_object_foreach((json_t *)a, k, v) {
        if (strcmp(k, skip1) == 0 || (skip2 != NULL && strcmp(k, skip2) == 0)) {
            continue;
        }
        na++;
        if (!json_equal(v, json_object_get(b, k))) {
            return 0;
        }
    }
    json_object_foreach((json_t *)b, k, v) {
        if (strcmp(k, skip1) != 0 && (skip2 == NULL || strcmp(k, skip2) != 0)) {
            nb++;
        }
    }
    return na == nb;
}

static void
check_rewrite(const char *body, size_t len, const struct mg_json_req *r, const json_t *doc)
{
    static const char *const models[] = {"gpt-4o", "m\"\\\n\x01 caf\xc3\xa9 \xf0\x9f\x98\x80", ""};
    const char *nm = models[len % MG_ARRAY_LEN(models)];
    struct mg_json_req r2;
    struct mg_buf out;
    char model[64];
    json_error_t err;
    json_t *doc2, *so, *so2;

    mg_buf_init(&out, len * 2 + 256);

    /* no edit: the same bytes */
    FZ_CHECK(mg_json_rewrite(body, len, r, NULL, 0, &out) == MG_OK);
    FZ_CHECK(out.len == len && memcmp(out.data, body, len) == 0);

    /* the model alone: only the bytes between the quotes change */
    mg_buf_reset(&out);
    FZ_CHECK(mg_json_rewrite(body, len, r, nm, 0, &out) == MG_OK);
    FZ_CHECK(memcmp(out.data, body, r->model_start) == 0);
    FZ_CHECK(out.len >= len - (r->model_end - r->model_start));
    FZ_CHECK(memcmp(out.data + out.len - (len - r->model_end), body + r->model_end,
                    len - r->model_end) == 0);

    /* both edits */
    mg_buf_reset(&out);
    FZ_CHECK(mg_json_rewrite(body, len, r, nm, 1, &out) == MG_OK);
    FZ_CHECK(mg_json_scan_request(out.data, out.len, model, sizeof(model), &r2) == MG_JSON_OK);
    FZ_CHECK(r2.model_len == strlen(nm) && memcmp(model, nm, r2.model_len) == 0);
    FZ_CHECK(r2.include_usage == 1);
    FZ_CHECK(r2.stream == r->stream);

    if (doc != NULL) {
        doc2 = json_loadb(out.data, out.len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);
        if (doc2 == NULL) {
            fprintf(stderr, "rewritten body refused by jansson: %s\n%.*s\n", err.text,
                    (int)out.len, out.data);
        }
        FZ_CHECK(doc2 != NULL);
        FZ_CHECK(json_is_string(json_object_get(doc2, "model")));
        FZ_CHECK(strcmp(json_string_value(json_object_get(doc2, "model")), nm) == 0);
        so2 = json_object_get(doc2, "stream_options");
        FZ_CHECK(json_is_object(so2) && json_is_true(json_object_get(so2, "include_usage")));
        FZ_CHECK(same_members_but(doc, doc2, "model", "stream_options"));
        so = json_object_get(doc, "stream_options");
        if (json_is_object(so)) {
            FZ_CHECK(same_members_but(so, so2, "include_usage", NULL));
        } else {
            FZ_CHECK(json_object_size(so2) == 1);
        }
        json_decref(doc2);
    }
    mg_buf_deinit(&out);
}

/* 1 when v holds something: not null, not "", not [], not {}. */
static int
non_empty(const json_t *v)
{
    if (v == NULL) {
        return 0;
    }
    switch (json_typeof(v)) {
    case JSON_NULL: return 0;
    case JSON_STRING: return json_string_length(v) > 0;
    case JSON_ARRAY: return json_array_size(v) > 0;
    case JSON_OBJECT: return json_object_size(v) > 0;
    default: return 1;
    }
}

/* mg_json_chunk_kind as a tree reader says it (the relay's reading before it had the scanner). */
static int
chunk_kind_tree(const json_t *j)
{
    json_t *choices, *c, *v;
    const char *key;
    size_t i;
    int kind = 0;

    choices = json_object_get(j, "choices");
    json_array_foreach(choices, i, c) {
        json_object_foreach(json_object_get(c, "delta"), key, v) {
            if (strcmp(key, "role") != 0 && non_empty(v)) {
                kind |= MG_JSON_CHUNK_OUTPUT;
            }
        }
        if (non_empty(json_object_get(c, "text"))) {
            kind |= MG_JSON_CHUNK_OUTPUT;
        }
        v = json_object_get(c, "finish_reason");
        if (v != NULL && !json_is_null(v)) {
            kind |= MG_JSON_CHUNK_OUTPUT | MG_JSON_CHUNK_FINISH;
        }
    }
    v = json_object_get(j, "usage");
    if (v != NULL && !json_is_null(v)) {
        kind |= MG_JSON_CHUNK_OUTPUT;
    }
    return kind;
}

/*
 * The stream-chunk reader agrees with the tree on every valid object without duplicate keys and
 * within the depth limit, and says 0 for text the request scanner finds invalid (rc).
 */
static void
check_chunk_kind(const char *body, size_t size, int rc)
{
    int kind = mg_json_chunk_kind(body, size);
    json_t *j;

    if (rc == MG_JSON_INVALID || rc == MG_JSON_NOT_OBJECT) {
        FZ_CHECK(kind == 0);
        return;
    }
    j = json_loadb(body, size, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, NULL);
    if (j != NULL && json_is_object(j) && depth(j) <= MG_JSON_MAX_DEPTH) {
        if (kind != chunk_kind_tree(j)) {
            fprintf(stderr, "chunk kind %d, tree %d: %.*s\n", kind, chunk_kind_tree(j),
                    (int)size, body);
        }
        FZ_CHECK(kind == chunk_kind_tree(j));
    }
    json_decref(j);
}

/* The deepest nesting of [ and { in JSON text (outside strings). */
static size_t
text_depth(const char *p, size_t n)
{
    size_t i, d = 0, max = 0;
    int in_string = 0;

    for (i = 0; i < n; i++) {
        if (in_string) {
            if (p[i] == '\\') {
                i++;
            } else if (p[i] == '"') {
                in_string = 0;
            }
        } else if (p[i] == '"') {
            in_string = 1;
        } else if (p[i] == '[' || p[i] == '{') {
            max = ++d > max ? d : max;
        } else if ((p[i] == ']' || p[i] == '}') && d > 0) {
            d--;
        }
    }
    return max;
}

/* Members of the top-level object of valid JSON text, counted by their colons. */
static size_t
text_members(const char *p, size_t n)
{
    size_t i, d = 0, count = 0;
    int in_string = 0;

    for (i = 0; i < n; i++) {
        if (in_string) {
            if (p[i] == '\\') {
                i++;
            } else if (p[i] == '"') {
                in_string = 0;
            }
        } else if (p[i] == '"') {
            in_string = 1;
        } else if (p[i] == '[' || p[i] == '{') {
            d++;
        } else if (p[i] == ']' || p[i] == '}') {
            d--;
        } else if (p[i] == ':' && d == 1) {
            count++;
        }
    }
    return count;
}

/* 1 when key folds to word as Go's encoding/json folds names (ASCII case; U+017F is s). */
static int
folds_to(const char *key, size_t n, const char *word)
{
    char f[16];
    size_t i, o = 0;

    for (i = 0; i < n && o < sizeof(f); i++) {
        unsigned char c = (unsigned char)key[i];
        if (c == 0xC5 && i + 1 < n && (unsigned char)key[i + 1] == 0xBF) {
            f[o++] = 's';
            i++;
        } else {
            f[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
    }
    return i == n && o == strlen(word) && memcmp(f, word, o) == 0;
}

/* The answer the top-level checks call for, by jansson's tree (0 when none does). */
static int
expected_check(const char *body, size_t size, const json_t *doc, const json_t *exact)
{
    static const char *const limits[] = {"max_tokens", "max_completion_tokens",
                                         "max_output_tokens"};
    const char *k;
    json_t *v;
    size_t i;

    if (text_members(body, size) != json_object_size(doc)) {
        return MG_JSON_DUPLICATE;
    }
    json_object_foreach((json_t *)doc, k, v) {
        size_t n = strlen(k);
        if ((folds_to(k, n, "model") && strcmp(k, "model") != 0) ||
            (folds_to(k, n, "stream") && strcmp(k, "stream") != 0)) {
            return MG_JSON_NAME_CASE;
        }
    }
    v = json_object_get(doc, "stream");
    if (v != NULL && !json_is_boolean(v) && !json_is_null(v)) {
        return MG_JSON_BAD_VALUE;
    }
    for (i = 0; i < MG_ARRAY_LEN(limits); i++) {
        v = json_object_get(doc, limits[i]);
        if (v == NULL || json_is_null(v)) {
            continue;
        }
        if (exact == NULL) {
            /* only the tree with reals (an integer elsewhere overflowed jansson's): a number
             * that is not whole or out of range must be refused, a whole one may be "1e3" */
            if (!json_is_number(v) || json_number_value(v) < 1 ||
                json_number_value(v) > MG_JSON_MAX_TOKENS ||
                json_number_value(v) != (double)(long long)json_number_value(v)) {
                return MG_JSON_BAD_VALUE;
            }
            continue;
        }
        v = json_object_get(exact, limits[i]);
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > MG_JSON_MAX_TOKENS) {
            return MG_JSON_BAD_VALUE;
        }
    }
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    char model[64];
    struct mg_json_req r;
    json_error_t err;
    json_t *doc, *m, *so;
    int rc;

    rc = mg_json_scan_request(body, size, model, sizeof(model), &r);
    check_chunk_kind(body, size, rc);
    if (memchr(body, '\0', size) != NULL) {
        /* never valid JSON (raw control byte), but jansson takes a NUL for the end of input */
        FZ_CHECK(rc == MG_JSON_INVALID);
        return 0;
    }
    doc = json_loadb(body, size, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);

    if (rc == MG_JSON_INVALID) {
        /* jansson may only accept what nests deeper than the scanner allows, anywhere in the
         * text: a deep value that a later duplicate key replaces is refused all the same */
        FZ_CHECK(doc == NULL || depth(doc) > MG_JSON_MAX_DEPTH ||
                 text_depth(body, size) > MG_JSON_MAX_DEPTH);
        json_decref(doc);
        return 0;
    }
    if (doc == NULL) {
        if (!jansson_only_limit(&err)) {
            fprintf(stderr, "scanner said %d, jansson: %s\n", rc, err.text);
        }
        FZ_CHECK(jansson_only_limit(&err));
    }
    if (rc == MG_JSON_NOT_OBJECT) {
        FZ_CHECK(doc == NULL || !json_is_object(doc));
        json_decref(doc);
        return 0;
    }
    FZ_CHECK(doc == NULL || json_is_object(doc));
    if (doc != NULL) {
        /* integers as jansson reads them (NULL when one somewhere is too large for it) */
        json_t *exact = json_loadb(body, size, JSON_ALLOW_NUL, NULL);
        int want = expected_check(body, size, doc, exact), reals_only = exact == NULL;

        json_decref(exact);
        if (want != 0 || rc == MG_JSON_DUPLICATE || rc == MG_JSON_NAME_CASE ||
            rc == MG_JSON_BAD_VALUE) {
            if (rc != want && !(want == 0 && reals_only && rc == MG_JSON_BAD_VALUE)) {
                fprintf(stderr, "scanner said %d, the tree %d\n", rc, want);
            }
            FZ_CHECK(rc == want || (want == 0 && reals_only && rc == MG_JSON_BAD_VALUE));
            json_decref(doc);
            return 0;
        }
    } else if (rc == MG_JSON_DUPLICATE || rc == MG_JSON_NAME_CASE || rc == MG_JSON_BAD_VALUE) {
        return 0;   /* jansson refused a number or a NUL in a key: nothing to compare with */
    }
    m = json_object_get(doc, "model");
    if (rc == MG_JSON_NO_MODEL) {
        FZ_CHECK(doc == NULL || !json_is_string(m));
        json_decref(doc);
        return 0;
    }
    if (rc == MG_JSON_MODEL_LONG) {
        FZ_CHECK(doc == NULL || json_string_length(m) + 1 > sizeof(model));
        json_decref(doc);
        return 0;
    }
    FZ_CHECK(rc == MG_JSON_OK);
    FZ_CHECK(r.model == model && r.model_len < sizeof(model) && model[r.model_len] == '\0');
    FZ_CHECK(r.model_start < r.model_end && r.model_end <= size);
    FZ_CHECK(body[r.model_start] == '"' && body[r.model_end - 1] == '"');
    FZ_CHECK(r.obj_end < size && body[r.obj_end] == '}');
    FZ_CHECK(r.usage_ins != NULL && r.usage_at + r.usage_del <= size);
    if (doc != NULL) {
        FZ_CHECK(json_is_string(m) && json_string_length(m) == r.model_len);
        FZ_CHECK(memcmp(json_string_value(m), model, r.model_len) == 0);
        FZ_CHECK(r.stream == json_is_true(json_object_get(doc, "stream")));
        so = json_object_get(doc, "stream_options");
        FZ_CHECK(r.include_usage ==
                 (json_is_object(so) && json_is_true(json_object_get(so, "include_usage"))));
    }
    check_rewrite(body, size, &r, doc);
    json_decref(doc);
    return 0;
}
