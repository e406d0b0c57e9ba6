/*
 * mg_json_chunk — what an OpenAI stream chunk carries (output, a finish), read for the commit
 * gate without building a tree (mg_json_chunk_kind in mg_json.h).
 */
#include <string.h>

#include "mg_jscan.h"
#include "mg_json.h"

/* 1 when the value at s->p holds something: not null, "", [] or {} (s->p does not move). */
static int
holds_something(const struct mg_jscan *s)
{
    const unsigned char *p = s->p;
    unsigned char open = *p;

    switch (open) {
    case 'n':
        return 0;
    case '"':
        return s->end - p > 1 && p[1] != '"';
    case '[':
    case '{':
        for (p++; p < s->end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'); p++) {
        }
        return p < s->end && *p != (open == '[' ? ']' : '}');
    default:
        return 1;
    }
}

#define KEY_IS(lit) (!over && klen == sizeof(lit) - 1 && memcmp(key, lit, klen) == 0)

/* The members of a choice's "delta" (s->p on its '{'): output unless only "role" holds any. */
static int
chunk_delta(struct mg_jscan *s, int *kind)
{
    int more;

    if (++s->depth > MG_JSON_MAX_DEPTH) {
        return MG_JSON_INVALID;
    }
    for (more = mg_jscan_open(s, '}'); more == 1; more = mg_jscan_next(s, '}')) {
        char key[8];
        size_t klen = 0;
        int over = 0;

        if (mg_jscan_key(s, key, sizeof(key), &klen, &over) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        if (!KEY_IS("role") && holds_something(s)) {
            *kind |= MG_JSON_CHUNK_OUTPUT;
        }
        if (mg_jscan_value(s) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
    }
    s->depth--;
    return more == 0 ? MG_JSON_OK : MG_JSON_INVALID;
}

/* One element of "choices" (any value; only objects are read). */
static int
chunk_choice(struct mg_jscan *s, int *kind)
{
    int more;

    mg_jscan_ws(s);
    if (s->p >= s->end || *s->p != '{') {
        return mg_jscan_value(s);
    }
    if (++s->depth > MG_JSON_MAX_DEPTH) {
        return MG_JSON_INVALID;
    }
    for (more = mg_jscan_open(s, '}'); more == 1; more = mg_jscan_next(s, '}')) {
        char key[16];
        size_t klen = 0;
        int over = 0, rc;

        if (mg_jscan_key(s, key, sizeof(key), &klen, &over) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        if (KEY_IS("delta") && *s->p == '{') {
            rc = chunk_delta(s, kind);
        } else {
            if (KEY_IS("text") && holds_something(s)) {
                *kind |= MG_JSON_CHUNK_OUTPUT;
            } else if (KEY_IS("finish_reason") && *s->p != 'n') {
                *kind |= MG_JSON_CHUNK_OUTPUT | MG_JSON_CHUNK_FINISH;
            }
            rc = mg_jscan_value(s);
        }
        if (rc != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
    }
    s->depth--;
    return more == 0 ? MG_JSON_OK : MG_JSON_INVALID;
}

int
mg_json_chunk_kind(const char *data, size_t len)
{
    struct mg_jscan s = {(const unsigned char *)data, (const unsigned char *)data + len,
                     (const unsigned char *)data, 1};
    int kind = 0, more;

    mg_jscan_ws(&s);
    if (s.p >= s.end || *s.p != '{') {
        return 0;
    }
    for (more = mg_jscan_open(&s, '}'); more == 1; more = mg_jscan_next(&s, '}')) {
        char key[16];
        size_t klen = 0;
        int over = 0, rc = MG_JSON_OK, items;

        if (mg_jscan_key(&s, key, sizeof(key), &klen, &over) != MG_JSON_OK) {
            return 0;
        }
        if (KEY_IS("choices") && *s.p == '[') {
            s.depth++;
            for (items = mg_jscan_open(&s, ']'); items == 1 && rc == MG_JSON_OK;
                 items = mg_jscan_next(&s, ']')) {
                rc = chunk_choice(&s, &kind);
            }
            s.depth--;
            if (rc != MG_JSON_OK || items != 0) {
                return 0;
            }
            continue;
        }
        if (KEY_IS("usage") && *s.p != 'n') {
            kind |= MG_JSON_CHUNK_OUTPUT;
        }
        if (mg_jscan_value(&s) != MG_JSON_OK) {
            return 0;
        }
    }
    mg_jscan_ws(&s);
    return more == 0 && s.p == s.end ? kind : 0;
}

#undef KEY_IS
