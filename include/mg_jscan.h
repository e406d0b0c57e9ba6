/*
 * mg_jscan — the validating JSON scanner the mg_json modules share (not for other callers: the
 * public face is mg_json.h). A scan is a cursor over a body; every function returns MG_JSON_OK or
 * MG_JSON_INVALID and moves the cursor past what it read.
 */
#ifndef MG_JSCAN_H
#define MG_JSCAN_H

#include <stddef.h>

#include "mg_json.h"

/* A cursor: p the next byte, end the body's end, base its start (offsets), depth of nesting. */
struct mg_jscan {
    const unsigned char *p;
    const unsigned char *end;
    const unsigned char *base;
    int depth;
};

/* Skips JSON white space. Inline: it runs between every two tokens. */
static inline void
mg_jscan_ws(struct mg_jscan *s)
{
    while (s->p < s->end && *s->p <= ' ' &&
           (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) {
        s->p++;
    }
}

/*
 * Scans a string starting at the opening quote. When buf is not NULL the decoded text goes there
 * (NUL-terminated, *outlen its length when outlen is not NULL); *overflow is set when it does not
 * fit in cap bytes.
 */
int mg_jscan_string(struct mg_jscan *s, char *buf, size_t cap, size_t *outlen, int *overflow);

/* Any value (white space before it skipped). */
int mg_jscan_value(struct mg_jscan *s);

/* Past the opening bracket at s->p: 1 when an item follows, 0 when the container is empty (and
 * now closed), -1 when the input ends. */
int mg_jscan_open(struct mg_jscan *s, unsigned char close);

/* After an item: 1 past a ',' with another item to come, 0 past the closing bracket, -1 for
 * anything else (a trailing comma included). */
int mg_jscan_next(struct mg_jscan *s, unsigned char close);

/* A member's key and its colon; leaves s->p on the value. The key is decoded into key when it
 * is not NULL (see mg_jscan_string). */
int mg_jscan_key(struct mg_jscan *s, char *key, size_t cap, size_t *klen, int *over);

/* After a member's key: the colon (white space around it skipped); leaves s->p on the value. */
int mg_jscan_colon(struct mg_jscan *s);

/* The end of the run of plain string bytes at p (printable ASCII other than '"' and '\\'). */
const unsigned char *mg_jscan_plain_run(const unsigned char *p, const unsigned char *end);

/* The escape after a backslash (s->p past the backslash) as a code point; surrogates paired. */
int mg_jscan_escape(struct mg_jscan *s, unsigned *cp);

#endif
