/*
 * mg_hdr — byte-level checks of HTTP/1.x message parts (see mg_hdr.h for why and which choices).
 */
#include <string.h>

#include "mg_hdr.h"

#define TCHAR  1   /* RFC 9110 tchar */
#define VCHAR  2   /* visible ASCII, 0x21-0x7e */
#define NOVAL  4   /* never in a header value: NUL, LF, CR */
#define HEXDIG 8

/* One lookup per byte; rows of 16 bytes, the printable ones shown on the right. */
static const unsigned char cls[256] = {
     4,  0,  0,  0,  0,  0,  0,  0,  0,  0,  4,  0,  0,  4,  0,  0,   /* 00 ................ */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,   /* 10 ................ */
     0,  3,  2,  3,  3,  3,  3,  3,  2,  2,  3,  3,  2,  3,  3,  2,   /* 20 .!"#$%&'()*+,-./ */
    11, 11, 11, 11, 11, 11, 11, 11, 11, 11,  2,  2,  2,  2,  2,  2,   /* 30 0123456789:;<=>? */
     2, 11, 11, 11, 11, 11, 11,  3,  3,  3,  3,  3,  3,  3,  3,  3,   /* 40 @ABCDEFGHIJKLMNO */
     3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  2,  2,  2,  3,  3,   /* 50 PQRSTUVWXYZ[\]^_ */
     3, 11, 11, 11, 11, 11, 11,  3,  3,  3,  3,  3,  3,  3,  3,  3,   /* 60 `abcdefghijklmno */
     3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  2,  3,  2,  3,  0,   /* 70 pqrstuvwxyz{|}~. */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,   /* 80 obs-text */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,   /* 90 obs-text */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,   /* a0 obs-text */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,   /* b0 obs-text */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,   /* c0 obs-text */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,   /* d0 obs-text */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,   /* e0 obs-text */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,   /* f0 obs-text */
};

int
mg_hdr_name_ok(const char *name, size_t len)
{
    const unsigned char *p = (const unsigned char *)name;
    size_t i;

    if (len == 0) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (!(cls[p[i]] & TCHAR)) {
            return 0;
        }
    }
    return 1;
}

int
mg_hdr_value_ok(const char *value, size_t len)
{
    const unsigned char *p = (const unsigned char *)value;
    size_t i;

    for (i = 0; i < len; i++) {
        if (cls[p[i]] & NOVAL) {
            return 0;
        }
    }
    return 1;
}

int
mg_hdr_content_length(const char *value, size_t len, uint64_t *out)
{
    uint64_t n = 0;
    size_t i;

    if (len == 0) {
        return MG_ERR;
    }
    for (i = 0; i < len; i++) {
        unsigned d = (unsigned char)value[i] - (unsigned)'0';
        if (d > 9 || n > ((uint64_t)INT64_MAX - d) / 10) {
            return MG_ERR;
        }
        n = n * 10 + d;
    }
    *out = n;
    return MG_OK;
}

int
mg_hdr_cl_add(struct mg_hdr_cl *cl, const char *value, size_t len)
{
    uint64_t n;

    if (mg_hdr_content_length(value, len, &n) != MG_OK || (cl->seen && cl->value != n)) {
        return MG_ERR;
    }
    cl->value = n;
    cl->seen = 1;
    return MG_OK;
}

static int
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims spaces and tabs at both ends of p[0..*len); returns the new start. */
static const char *
trim_ows(const char *p, size_t *len)
{
    size_t n = *len;

    while (n > 0 && is_ows(*p)) {
        p++;
        n--;
    }
    while (n > 0 && is_ows(p[n - 1])) {
        n--;
    }
    *len = n;
    return p;
}

/* ASCII-only case-insensitive equality (strncasecmp depends on the locale). */
static int
eq_nocase(const char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (mg_hdr_lower(a[i]) != mg_hdr_lower(b[i])) {
            return 0;
        }
    }
    return 1;
}

int
mg_hdr_transfer_encoding_ok(const char *value, size_t len)
{
    const char *p = trim_ows(value, &len);

    return len == 7 && eq_nocase(p, "chunked", 7);
}

int
mg_hdr_chunk_size(const char *line, size_t len, uint64_t *size)
{
    const unsigned char *p = (const unsigned char *)line;
    uint64_t n = 0;
    size_t i = 0;

    while (i < len && (cls[p[i]] & HEXDIG)) {
        unsigned c = p[i] | 0x20u;   /* lower case for letters; digits keep their value */
        if (i == MG_HDR_CHUNK_DIGITS_MAX) {
            return MG_ERR;
        }
        n = (n << 4) | (c <= '9' ? c - '0' : c - 'a' + 10);
        i++;
    }
    if (i == 0 || n > (uint64_t)INT64_MAX) {
        return MG_ERR;
    }
    if (i < len) {
        /* chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ): checked as far as safety
         * goes (no CTL other than HTAB), since the gateway never reads extensions */
        while (i < len && is_ows((char)p[i])) {
            i++;
        }
        if (i == len || p[i] != ';') {
            return MG_ERR;
        }
        for (; i < len; i++) {
            if (!(cls[p[i]] & VCHAR) && p[i] != ' ' && p[i] != '\t' && p[i] < 0x80) {
                return MG_ERR;
            }
        }
    }
    if (size != NULL) {
        *size = n;
    }
    return MG_OK;
}

int
mg_hdr_chunk_size_ok(const char *line, size_t len)
{
    return mg_hdr_chunk_size(line, len, NULL) == MG_OK;
}

/* 1 when p[0..len) is 1 or more visible ASCII bytes. */
static int
all_vchar(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i;

    if (len == 0) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (!(cls[p[i]] & VCHAR)) {
            return 0;
        }
    }
    return 1;
}

int
mg_hdr_target_ok(const char *target, size_t len)
{
    return all_vchar(target, len);
}

int
mg_hdr_request_id_ok(const char *id, size_t len)
{
    return len <= MG_HDR_REQUEST_ID_MAX && all_vchar(id, len);
}

int
mg_hdr_connection_names(const char *value, size_t len, mg_hdr_name_fn fn, void *arg)
{
    const char *p = value, *end = value + len;

    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma != NULL ? comma : end;
        size_t n = (size_t)(stop - p);
        const char *name = trim_ows(p, &n);
        int rc;

        if (n > 0 && (rc = fn(arg, name, n)) != 0) {
            return rc;
        }
        p = comma != NULL ? comma + 1 : end;
    }
    return 0;
}

struct find {
    const char *name;
    size_t      len;
};

static int
find_name(void *arg, const char *name, size_t len)
{
    const struct find *f = arg;

    return len == f->len && eq_nocase(name, f->name, len);
}

int
mg_hdr_in_connection(const char *conn, size_t conn_len, const char *name, size_t name_len)
{
    struct find f = {name, name_len};

    return name_len > 0 && mg_hdr_connection_names(conn, conn_len, find_name, &f) != 0;
}

int
mg_hdr_escape(const char *in, size_t len, struct mg_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)in;
    size_t i, run = 0;

    for (i = 0; i < len; i++) {
        char esc[4];

        if (p[i] >= 0x20 && p[i] <= 0x7e && p[i] != '"' && p[i] != '\\') {
            continue;
        }
        if (mg_buf_add(out, in + run, i - run) != MG_OK) {
            break;
        }
        run = i;
        esc[0] = '\\';
        esc[1] = 'x';
        esc[2] = hex[p[i] >> 4];
        esc[3] = hex[p[i] & 15];
        if (mg_buf_add(out, esc, sizeof(esc)) != MG_OK) {
            break;
        }
        run = i + 1;
    }
    if (i == len && mg_buf_add(out, in + run, len - run) == MG_OK) {
        return MG_OK;
    }
    /* out of room: keep what fits of the plain run, and stop before the escape that did not */
    if (run < i && out->len < out->cap) {
        size_t room = out->cap - out->len;
        (void)mg_buf_add(out, in + run, i - run < room ? i - run : room);
    }
    return MG_ETOOBIG;
}
