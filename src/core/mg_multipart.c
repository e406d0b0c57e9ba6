/*
 * mg_multipart — the `model` part of a multipart/form-data body: found (RFC 2046 framing, RFC
 * 7578 parts) and rewritten. Strict on purpose (see mg_multipart.h): every reading another
 * parser could make differently is an error, since the gateway routes on the value it reads and
 * the backend acts on the one it reads.
 *
 * One pass: each occurrence of "--boundary" is looked at once (memmem, linear), so a body of n
 * bytes costs O(n) whatever its parts hold; the part count and each part's headers are capped.
 */
#include <string.h>

#include "mg_multipart.h"

#define BOUNDARY_MAX 70

/* The parse state of one body. */
struct walk {
    const char *b;
    size_t      len;
    char        dash[BOUNDARY_MAX + 3];     /* "--" boundary */
    size_t      dl;
    const char *why;
};

/* One part's headers, as far as the model rule needs them. */
struct part {
    int    disposition;     /* seen Content-Disposition */
    int    model;           /* named exactly `model` */
    int    filename;        /* has filename or filename* */
    int    cte;             /* has Content-Transfer-Encoding */
};

static int
lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int
ieq(const char *a, size_t an, const char *b)
{
    size_t i;

    if (an != strlen(b)) {
        return 0;
    }
    for (i = 0; i < an; i++) {
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) {
            return 0;
        }
    }
    return 1;
}

/* RFC 9110 tchar. */
static int
tchar(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* RFC 2046 bcharsnospace. */
static int
bchar_nospace(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c != 0 && strchr("'()+_,-./:=?", c) != NULL);
}

static int
ows(int c)
{
    return c == ' ' || c == '\t';
}

static size_t
skip_ows(const char *s, size_t i, size_t n)
{
    while (i < n && ows((unsigned char)s[i])) {
        i++;
    }
    return i;
}

static size_t
token_end(const char *s, size_t i, size_t n)
{
    while (i < n && tchar((unsigned char)s[i])) {
        i++;
    }
    return i;
}

/*
 * A parameter value at s[*i] (token or quoted-string) up to n: its raw bytes (between the quotes)
 * in [*vo, *vo + *vl), its unescaped form (quoted pairs undone) in out, of which the first outcap
 * bytes are written and *outl is the whole length (out and outl may be NULL). *i moves past it.
 * 0, or -1 when malformed.
 */
static int
param_value(const char *s, size_t *i, size_t n, size_t *vo, size_t *vl, char *out,
            size_t outcap, size_t *outl)
{
    size_t j = *i, o = 0;
    int c;

    if (j < n && s[j] == '"') {
        *vo = ++j;
        for (;;) {
            if (j >= n) {
                return -1;
            }
            c = (unsigned char)s[j];
            if (c == '"') {
                break;
            }
            if (c == '\\') {
                if (++j >= n) {
                    return -1;
                }
                c = (unsigned char)s[j];
            }
            if (c < 0x20 && c != '\t') {
                return -1;
            }
            if (out != NULL && o < outcap) {
                out[o] = (char)c;
            }
            o++;
            j++;
        }
        *vl = j - *vo;
        *i = j + 1;
    } else {
        *vo = j;
        j = token_end(s, j, n);
        if (j == *vo) {
            return -1;
        }
        *vl = j - *vo;
        if (out != NULL) {
            memcpy(out, s + *vo, *vl < outcap ? *vl : outcap);
        }
        o = *vl;
        *i = j;
    }
    if (outl != NULL) {
        *outl = o;
    }
    return 0;
}

/* The boundary from the Content-Type into w->dash. 0, or -1 with w->why. */
static int
parse_type(struct walk *w, const char *ct)
{
    static const char type[] = "multipart/form-data";
    size_t n = strlen(ct), i, ne, vo, vl, bl = 0;
    char bnd[BOUNDARY_MAX + 1];
    int seen = 0;

    i = skip_ows(ct, 0, n);
    if (n - i < sizeof(type) - 1 || !ieq(ct + i, sizeof(type) - 1, type)) {
        w->why = "the Content-Type is not multipart/form-data";
        return -1;
    }
    i += sizeof(type) - 1;
    for (;;) {
        i = skip_ows(ct, i, n);
        if (i == n) {
            break;
        }
        if (ct[i] != ';') {
            w->why = "malformed Content-Type parameters";
            return -1;
        }
        i = skip_ows(ct, i + 1, n);
        if (i == n) {
            break;      /* a trailing ";" */
        }
        ne = token_end(ct, i, n);
        if (ne == i || ne >= n || ct[ne] != '=') {
            w->why = "malformed Content-Type parameters";
            return -1;
        }
        if (ieq(ct + i, ne - i, "boundary")) {
            if (seen++) {
                w->why = "two boundary parameters";
                return -1;
            }
            i = ne + 1;
            if (param_value(ct, &i, n, &vo, &vl, bnd, sizeof(bnd), &bl) != 0) {
                w->why = "malformed boundary";
                return -1;
            }
        } else {
            i = ne + 1;
            if (param_value(ct, &i, n, &vo, &vl, NULL, 0, NULL) != 0) {
                w->why = "malformed Content-Type parameters";
                return -1;
            }
        }
    }
    if (!seen) {
        w->why = "no boundary in the Content-Type";
        return -1;
    }
    if (bl == 0 || bl > BOUNDARY_MAX || bnd[bl - 1] == ' ') {
        w->why = "malformed boundary";
        return -1;
    }
    for (i = 0; i < bl; i++) {
        if (!bchar_nospace((unsigned char)bnd[i]) && bnd[i] != ' ') {
            w->why = "malformed boundary";
            return -1;
        }
    }
    w->dash[0] = '-';
    w->dash[1] = '-';
    memcpy(w->dash + 2, bnd, bl);
    w->dl = bl + 2;
    return 0;
}

/*
 * The next delimiter at or after from: the offset of its "--boundary", which starts the body or
 * follows CRLF. Occurrences inside a line are content. SIZE_MAX with w->why when there is none
 * or when one follows a bare LF (a lenient parser's delimiter).
 */
static size_t
next_delim(struct walk *w, size_t from)
{
    const char *p;
    size_t at;

    while (from <= w->len && w->len - from >= w->dl) {
        p = memmem(w->b + from, w->len - from, w->dash, w->dl);
        if (p == NULL) {
            break;
        }
        at = (size_t)(p - w->b);
        if (at == 0 || (at >= 2 && w->b[at - 2] == '\r' && w->b[at - 1] == '\n')) {
            return at;
        }
        if (w->b[at - 1] == '\n' || w->b[at - 1] == '\r') {
            w->why = "a boundary after a bare LF or CR";
            return SIZE_MAX;
        }
        from = at + 1;
    }
    w->why = "no close delimiter";
    return SIZE_MAX;
}

/* The Content-Disposition value v[0..n) into pt. 0, or -1 with w->why. */
static int
disposition(struct walk *w, const char *v, size_t n, struct part *pt)
{
    size_t i = token_end(v, 0, n), ne, vo, vl, ul;
    char un[64];
    int names = 0;

    if (!ieq(v, i, "form-data")) {
        w->why = "a part whose Content-Disposition is not form-data";
        return -1;
    }
    for (;;) {
        i = skip_ows(v, i, n);
        if (i == n) {
            break;
        }
        if (v[i] != ';') {
            w->why = "a malformed Content-Disposition";
            return -1;
        }
        i = skip_ows(v, i + 1, n);
        if (i == n) {
            break;
        }
        ne = token_end(v, i, n);
        if (ne == i || ne >= n || v[ne] != '=') {
            w->why = "a malformed Content-Disposition";
            return -1;
        }
        if (ieq(v + i, ne - i, "name*")) {
            w->why = "a part named with name*";
            return -1;
        }
        if (ieq(v + i, ne - i, "filename") || ieq(v + i, ne - i, "filename*")) {
            i = ne + 1;
            if (param_value(v, &i, n, &vo, &vl, NULL, 0, NULL) != 0) {
                w->why = "a malformed Content-Disposition";
                return -1;
            }
            pt->filename = 1;
            continue;
        }
        if (!ieq(v + i, ne - i, "name")) {
            i = ne + 1;
            if (param_value(v, &i, n, &vo, &vl, NULL, 0, NULL) != 0) {
                w->why = "a malformed Content-Disposition";
                return -1;
            }
            continue;
        }
        if (names++) {
            w->why = "a part with two names";
            return -1;
        }
        i = ne + 1;
        if (param_value(v, &i, n, &vo, &vl, un, sizeof(un), &ul) != 0) {
            w->why = "a malformed Content-Disposition";
            return -1;
        }
        /*
         * `model` exactly (raw, so no quoted pair either); or, read raw or unescaped, `model` in
         * any case: a name some parser reads as model, an error
         */
        if (vl == 5 && memcmp(v + vo, "model", 5) == 0) {
            pt->model = 1;
        } else if (ieq(v + vo, vl, "model") || (ul == 5 && ieq(un, ul, "model"))) {
            w->why = "a part named like model but not exactly model";
            return -1;
        }
    }
    if (names == 0) {
        w->why = "a part without a name";
        return -1;
    }
    return 0;
}

/* The headers of the part at [h, e): *body gets where its content starts. 0, or -1 (w->why). */
static int
headers(struct walk *w, size_t h, size_t e, struct part *pt, size_t *body)
{
    const char *b = w->b, *eol;
    size_t i = h, le, ne, vs, ve;

    for (;;) {
        if (i - h > MG_MULTIPART_HEADERS_MAX) {
            w->why = "part headers too long";
            return -1;
        }
        eol = memmem(b + i, e - i, "\r\n", 2);
        if (eol == NULL) {
            w->why = "part headers without an end";
            return -1;
        }
        le = (size_t)(eol - b);
        if (le == i) {
            *body = i + 2;
            break;
        }
        if (le - h > MG_MULTIPART_HEADERS_MAX) {
            w->why = "part headers too long";
            return -1;
        }
        if (memchr(b + i, '\n', le - i) != NULL || memchr(b + i, '\r', le - i) != NULL
            || memchr(b + i, '\0', le - i) != NULL) {
            w->why = "a bare CR, LF or NUL in part headers";
            return -1;
        }
        if (ows((unsigned char)b[i]) || (le + 2 < e && ows((unsigned char)b[le + 2]))) {
            w->why = "a folded part header";    /* seen before its first line is read */
            return -1;
        }
        ne = token_end(b, i, le);
        if (ne == i || ne == le || b[ne] != ':') {
            w->why = "a malformed part header";
            return -1;
        }
        vs = skip_ows(b, ne + 1, le);
        ve = le;
        while (ve > vs && ows((unsigned char)b[ve - 1])) {
            ve--;
        }
        if (ieq(b + i, ne - i, "content-disposition")) {
            if (pt->disposition++) {
                w->why = "a part with two Content-Disposition headers";
                return -1;
            }
            if (disposition(w, b + vs, ve - vs, pt) != 0) {
                return -1;
            }
        } else if (ieq(b + i, ne - i, "content-transfer-encoding")) {
            pt->cte = 1;
        }
        i = le + 2;
    }
    if (!pt->disposition) {
        w->why = "a part without Content-Disposition";
        return -1;
    }
    return 0;
}

/* After "--boundary" at at: 1 for the close delimiter, 0 for a part's (*next: its first byte). */
static int
delim_end(struct walk *w, size_t at, size_t *next)
{
    size_t i = at + w->dl;

    if (w->len - i >= 2 && w->b[i] == '-' && w->b[i + 1] == '-') {
        i = skip_ows(w->b, i + 2, w->len);
        if (i != w->len && (w->len - i < 2 || w->b[i] != '\r' || w->b[i + 1] != '\n')) {
            w->why = "bytes after the close delimiter";
            return -1;
        }
        return 1;
    }
    i = skip_ows(w->b, i, w->len);
    if (w->len - i < 2 || w->b[i] != '\r' || w->b[i + 1] != '\n') {
        w->why = "a boundary inside a part, or a malformed delimiter line";
        return -1;
    }
    *next = i + 2;
    return 0;
}

int
mg_multipart_model(const char *content_type, const char *body, size_t len,
                   struct mg_multipart_part *model, const char **why)
{
    struct walk w;
    struct part pt;
    size_t at, h, e, vs, found = 0, parts = 0;
    int rc;

    memset(&w, 0, sizeof(w));
    w.b = body;
    w.len = len;
    model->off = model->len = 0;
    if (content_type == NULL || (body == NULL && len > 0)) {
        w.why = "no multipart body";
        goto error;
    }
    if (parse_type(&w, content_type) != 0) {
        goto error;
    }
    if (body == NULL || (at = next_delim(&w, 0)) == SIZE_MAX) {
        w.why = body == NULL ? "no close delimiter" : w.why;
        goto error;
    }
    while ((rc = delim_end(&w, at, &h)) == 0) {
        if (++parts > MG_MULTIPART_PARTS_MAX) {
            w.why = "too many parts";
            goto error;
        }
        if ((at = next_delim(&w, h)) == SIZE_MAX) {
            goto error;
        }
        if (at < h + 2) {
            w.why = "an empty part";
            goto error;
        }
        e = at - 2;     /* the CRLF before "--boundary" belongs to the delimiter */
        memset(&pt, 0, sizeof(pt));
        if (headers(&w, h, e, &pt, &vs) != 0) {
            goto error;
        }
        if (!pt.model) {
            continue;
        }
        if (found++) {
            w.why = "two model parts";
            goto error;
        }
        if (pt.filename || pt.cte) {
            w.why = pt.filename ? "a model part with a filename"
                                : "a model part with a Content-Transfer-Encoding";
            goto error;
        }
        if (e == vs) {
            w.why = "an empty model";
            goto error;
        }
        if (e - vs > MG_MULTIPART_MODEL_MAX) {
            w.why = "a model over 512 bytes";
            goto error;
        }
        if (memchr(body + vs, '\r', e - vs) || memchr(body + vs, '\n', e - vs)
            || memchr(body + vs, '\0', e - vs)) {
            w.why = "a model holding CR, LF or NUL";
            goto error;
        }
        model->off = vs;
        model->len = e - vs;
    }
    if (rc < 0) {
        goto error;
    }
    if (!found) {
        w.why = "no model part";
        goto error;
    }
    return MG_OK;

error:
    model->off = model->len = 0;
    if (why != NULL) {
        *why = w.why;
    }
    return MG_ERR;
}

int
mg_multipart_rewrite(const char *body, size_t len, const struct mg_multipart_part *model,
                     const char *new_model, struct mg_buf *out)
{
    size_t nl = new_model != NULL ? strlen(new_model) : 0;
    int rc;

    if (model->len == 0 || model->off > len || model->len > len - model->off || nl == 0
        || strpbrk(new_model, "\r\n") != NULL) {
        return MG_ERR;
    }
    if (out->cap - out->len < len - model->len || out->cap - out->len - (len - model->len) < nl) {
        return MG_ETOOBIG;
    }
    if ((rc = mg_buf_reserve(out, len - model->len + nl)) != MG_OK
        || (rc = mg_buf_add(out, body, model->off)) != MG_OK
        || (rc = mg_buf_add(out, new_model, nl)) != MG_OK
        || (rc = mg_buf_add(out, body + model->off + model->len,
                            len - model->off - model->len)) != MG_OK) {
        return rc;
    }
    return MG_OK;
}
