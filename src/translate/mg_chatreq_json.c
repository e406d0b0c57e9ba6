/*
 * mg_chatreq_json — the JSON writing the translators share: a jansson value written as compact
 * text (mg_chatreq_dump), and objects made without json_pack's format (mg_chatreq_obj).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mg_chatreq_json.h"
#include "mg_json.h"
#include "mg_oai.h"

/*
 * A value written as compact JSON. By hand rather than json_dump_callback(): jansson's writer
 * makes a callback per token and checks every string again, several times the cost of this
 * (docs/benchmarks.md, issue 21). Same text as jansson's compact form, with reals as
 * JSON_REAL_PRECISION(15) writes them.
 */
static int
dump(const json_t *j, struct mg_buf *out)
{
    char num[64];
    const char *key;
    json_t *v;
    size_t i;
    int rc = MG_OK, n;

    switch (json_typeof(j)) {
    case JSON_OBJECT:
        rc = mg_buf_add(out, "{", 1);
        i = 0;
        json_object_foreach((json_t *)j, key, v) {
            if (rc == MG_OK && i++ > 0) {
                rc = mg_buf_add(out, ",", 1);
            }
            rc = rc == MG_OK ? mg_json_quote(out, key, strlen(key)) : rc;
            rc = rc == MG_OK ? mg_buf_add(out, ":", 1) : rc;
            rc = rc == MG_OK ? dump(v, out) : rc;
            if (rc != MG_OK) {
                return rc;
            }
        }
        return rc == MG_OK ? mg_buf_add(out, "}", 1) : rc;
    case JSON_ARRAY:
        rc = mg_buf_add(out, "[", 1);
        json_array_foreach(j, i, v) {
            if (rc == MG_OK && i > 0) {
                rc = mg_buf_add(out, ",", 1);
            }
            rc = rc == MG_OK ? dump(v, out) : rc;
            if (rc != MG_OK) {
                return rc;
            }
        }
        return rc == MG_OK ? mg_buf_add(out, "]", 1) : rc;
    case JSON_STRING:
        return mg_json_quote(out, json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return mg_buf_add(out, num, (size_t)n);
    case JSON_REAL:
        n = snprintf(num, sizeof(num), "%.15g", json_real_value(j));
        if (strpbrk(num, ".eE") == NULL && n + 3 <= (int)sizeof(num)) {
            memcpy(num + n, ".0", 3);   /* a real stays a real, as jansson writes it */
            n += 2;
        }
        return mg_buf_add(out, num, (size_t)n);
    case JSON_TRUE:
        return mg_buf_add(out, "true", 4);
    case JSON_FALSE:
        return mg_buf_add(out, "false", 5);
    default:
        return mg_buf_add(out, "null", 4);
    }
}

json_t *
mg_chatreq_obj(const char *key, json_t *value, ...)
{
    json_t *o = json_object();
    va_list ap;

    va_start(ap, value);
    while (key != NULL) {
        if (value != NULL) {
            json_object_set_new_nocheck(o, key, value);
        }
        key = va_arg(ap, const char *);
        value = key != NULL ? va_arg(ap, json_t *) : NULL;
    }
    va_end(ap);
    return o;
}

int
mg_chatreq_dump(const json_t *j, struct mg_buf *out)
{
    size_t len = out->len;

    if (j != NULL && dump(j, out) == MG_OK) {
        return MG_OK;
    }
    out->len = len;
    if (out->data != NULL) {
        out->data[len] = '\0';
    }
    return MG_ETOOBIG;
}

json_t *
mg_chatreq_json_schema(json_t *root)
{
    json_t *rf = json_object_get(root, "response_format"), *js;
    const char *type = json_string_value(json_object_get(rf, "type"));

    if (type == NULL || strcmp(type, "json_schema") != 0) {
        return NULL;
    }
    js = json_object_get(rf, "json_schema");
    return json_is_object(json_object_get(js, "schema")) ? js : NULL;
}

json_t *
mg_chatreq_kept_message(const struct mg_oai_kept *k)
{
    json_t *msg = json_object(), *calls;
    size_t i;

    if (k->content != NULL) {
        json_object_set_new_nocheck(msg, "content", json_stringn(k->content, k->content_len));
    }
    if (k->ncalls > 0) {
        calls = json_array();
        for (i = 0; i < k->ncalls; i++) {
            json_array_append_new(calls, mg_chatreq_obj(
                "id", json_string(k->calls[i].id), "type", MG_JSTR("function"), "function",
                mg_chatreq_obj("name", json_string(k->calls[i].name), "arguments",
                               json_string(k->calls[i].arguments), NULL), NULL));
        }
        json_object_set_new_nocheck(msg, "tool_calls", calls);
    }
    return msg;
}
