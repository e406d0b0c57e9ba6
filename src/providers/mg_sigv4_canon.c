/*
 * mg_sigv4_canon — the canonical request of AWS Signature Version 4: the checks on what is to be
 * signed, percent-encoding, the sorted query, the sorted and trimmed headers, and its SHA-256.
 *
 * The canonical request is never built as one string: its pieces go straight into a SHA-256
 * context (and into the caller's debug buffer when there is one), so a long session token or
 * query costs no allocation. Only a query string needs room, to sort its parameters.
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "mg_sigv4_canon.h"

static const char hexdig[] = "0123456789ABCDEF";
static const char hexlow[] = "0123456789abcdef";

static int
unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '~';
}

static unsigned char
lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

void
mg_sigv4_hex(const unsigned char *p, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hexlow[p[i] >> 4];
        out[2 * i + 1] = hexlow[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Where the canonical request and the string to sign go: a digest, and a copy when asked. */
struct sink {
    EVP_MD_CTX    *md;
    struct mg_buf *copy;
    int            err;
};

static void
put(struct sink *s, const void *p, size_t n)
{
    if (n == 0 || s->err != MG_OK) {
        return;
    }
    if (EVP_DigestUpdate(s->md, p, n) != 1) {
        s->err = MG_ERR;
    } else if (s->copy != NULL && mg_buf_add(s->copy, p, n) != MG_OK) {
        s->err = MG_ETOOBIG;
    }
}

static void
puts_(struct sink *s, const char *str)
{
    put(s, str, strlen(str));
}

/* Writes p[0..n) percent-encoded, keeping '/' when keep_slash: in chunks, not byte by byte. */
static void
put_encoded(struct sink *s, const char *p, size_t n, int keep_slash)
{
    char tmp[256];
    size_t i, k = 0;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (k > sizeof(tmp) - 3) {
            put(s, tmp, k);
            k = 0;
        }
        if (unreserved(c) || (keep_slash && c == '/')) {
            tmp[k++] = (char)c;
        } else {
            tmp[k++] = '%';
            tmp[k++] = hexdig[c >> 4];
            tmp[k++] = hexdig[c & 15];
        }
    }
    put(s, tmp, k);
}

/* A header value with the ends trimmed and each inner run of spaces and tabs made one space. */
static void
put_trimmed(struct sink *s, const char *v)
{
    const char *p = v, *start;

    while (*p == ' ' || *p == '\t') {
        p++;
    }
    while (*p != '\0') {
        start = p;
        while (*p != '\0' && *p != ' ' && *p != '\t') {
            p++;
        }
        put(s, start, (size_t)(p - start));
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (*p != '\0') {
            put(s, " ", 1);
        }
    }
}

int
mg_sigv4_encode_segment(struct mg_buf *out, const char *s, size_t n)
{
    char tmp[3];
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (unreserved(c)) {
            if (mg_buf_add(out, &s[i], 1) != MG_OK) {
                return MG_ETOOBIG;
            }
            continue;
        }
        tmp[0] = '%';
        tmp[1] = hexdig[c >> 4];
        tmp[2] = hexdig[c & 15];
        if (mg_buf_add(out, tmp, 3) != MG_OK) {
            return MG_ETOOBIG;
        }
    }
    return MG_OK;
}

/* ---- query string ---- */

struct qparam {
    const char *name;
    size_t      nlen;
    const char *val;
    size_t      vlen;
};

/*
 * Appends p[0..n) decoded once (valid %XX only; a stray '%' is a literal) and encoded again, so
 * that two spellings of one parameter sign alike, as AWS's own canonicalization does.
 */
static int
add_reencoded(struct mg_buf *b, const char *p, size_t n)
{
    char tmp[3];
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (c == '%' && i + 2 < n && mg_hexval((unsigned char)p[i + 1]) >= 0 &&
            mg_hexval((unsigned char)p[i + 2]) >= 0) {
            c = (unsigned char)(mg_hexval((unsigned char)p[i + 1]) * 16 +
                                mg_hexval((unsigned char)p[i + 2]));
            i += 2;
        }
        if (unreserved(c)) {
            tmp[0] = (char)c;
            if (mg_buf_add(b, tmp, 1) != MG_OK) {
                return MG_ETOOBIG;
            }
        } else {
            tmp[0] = '%';
            tmp[1] = hexdig[c >> 4];
            tmp[2] = hexdig[c & 15];
            if (mg_buf_add(b, tmp, 3) != MG_OK) {
                return MG_ETOOBIG;
            }
        }
    }
    return MG_OK;
}

static int
bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);

    if (c != 0) {
        return c;
    }
    return an < bn ? -1 : (an > bn ? 1 : 0);
}

static int
qparam_cmp(const void *x, const void *y)
{
    const struct qparam *a = x, *b = y;
    int c = bytes_cmp(a->name, a->nlen, b->name, b->nlen);

    return c != 0 ? c : bytes_cmp(a->val, a->vlen, b->val, b->vlen);
}

/* The canonical query: each parameter encoded, sorted by name then value, joined by '&'. */
static int
canonical_query(const char *q, struct mg_buf *out, struct mg_sigv4_result *res)
{
    struct mg_buf tmp;
    struct qparam params[MG_SIGV4_MAX_PARAMS];
    size_t offs[MG_SIGV4_MAX_PARAMS][3];    /* name start, '=' position (value start), end */
    size_t np = 0, i;
    const char *p = q;
    int rc = MG_OK;

    mg_buf_init(&tmp, MG_SIGV4_QUERY_MAX);
    mg_buf_add(&tmp, "", 0);    /* allocated even when every name and value is empty */
    while (*p != '\0' && rc == MG_OK) {
        const char *amp = strchr(p, '&');
        size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t nlen = eq != NULL ? (size_t)(eq - p) : len;

        if (len > 0 && np == MG_SIGV4_MAX_PARAMS) {
            res->error = "too many query parameters";
            rc = MG_ERR;
        } else if (len > 0) {
            offs[np][0] = tmp.len;
            rc = add_reencoded(&tmp, p, nlen);
            offs[np][1] = tmp.len;
            if (rc == MG_OK && eq != NULL) {
                rc = add_reencoded(&tmp, eq + 1, len - nlen - 1);
            }
            offs[np][2] = tmp.len;
            np++;
        }
        p += len;
        if (*p == '&') {
            p++;
        }
    }
    /* tmp no longer moves: now the offsets can become pointers */
    for (i = 0; i < np && rc == MG_OK; i++) {
        params[i].name = tmp.data + offs[i][0];
        params[i].nlen = offs[i][1] - offs[i][0];
        params[i].val = tmp.data + offs[i][1];
        params[i].vlen = offs[i][2] - offs[i][1];
    }
    if (rc == MG_OK) {
        qsort(params, np, sizeof(params[0]), qparam_cmp);
    }
    for (i = 0; i < np && rc == MG_OK; i++) {
        if ((i > 0 && mg_buf_add(out, "&", 1) != MG_OK) ||
            mg_buf_add(out, params[i].name, params[i].nlen) != MG_OK ||
            mg_buf_add(out, "=", 1) != MG_OK ||
            mg_buf_add(out, params[i].val, params[i].vlen) != MG_OK) {
            rc = MG_ETOOBIG;
        }
    }
    if (rc == MG_ETOOBIG) {
        res->error = "query string too long";
    }
    mg_buf_deinit(&tmp);
    return rc;
}

/* ---- headers ---- */

struct hdr {
    const char *name;
    size_t      nlen;
    const char *value;
    size_t      order;      /* position in the request: repeats keep it (qsort is not stable) */
};

static int
name_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    size_t i, n = an < bn ? an : bn;

    for (i = 0; i < n; i++) {
        unsigned char x = lower((unsigned char)a[i]), y = lower((unsigned char)b[i]);

        if (x != y) {
            return x < y ? -1 : 1;
        }
    }
    return an < bn ? -1 : (an > bn ? 1 : 0);
}

static int
hdr_cmp(const void *x, const void *y)
{
    const struct hdr *a = x, *b = y;
    int c = name_cmp(a->name, a->nlen, b->name, b->nlen);

    if (c != 0) {
        return c;
    }
    return a->order < b->order ? -1 : (a->order > b->order ? 1 : 0);
}

static int
hdr_cmp_name(const struct hdr *a, const struct hdr *b)
{
    return name_cmp(a->name, a->nlen, b->name, b->nlen);
}

static int
name_is(const char *name, const char *lit)
{
    return name_cmp(name, strlen(name), lit, strlen(lit)) == 0;
}

/* An HTTP token: what a header name may be made of. */
static int
valid_name(const char *s)
{
    const char *p;

    if (*s == '\0') {
        return 0;
    }
    for (p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;

        if (c <= 32 || c >= 127 || strchr("\"(),/:;<=>?@[\\]{}", c) != NULL) {
            return 0;
        }
    }
    return 1;
}

static int
valid_value(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

static int
fail(struct mg_sigv4_result *res, const char *why)
{
    res->error = why;
    return MG_ERR;
}

/* ---- what is signed ---- */

int
mg_sigv4_canon_check(const struct mg_sigv4_request *req, const struct mg_sigv4_creds *creds,
                     struct mg_sigv4_result *res)
{
    size_t i;

    if (req->method == NULL || !valid_name(req->method) || req->host == NULL ||
        req->host[0] == '\0' || !valid_value(req->host)) {
        return fail(res, "method or host missing or invalid");
    }
    if (req->region == NULL || req->service == NULL || !valid_name(req->region) ||
        !valid_name(req->service) || strlen(req->region) > MG_SIGV4_NAME_MAX ||
        strlen(req->service) > MG_SIGV4_NAME_MAX || strchr(req->region, '/') != NULL) {
        return fail(res, "region or service missing or invalid");
    }
    if (creds->access_key_id == NULL || creds->secret_access_key == NULL ||
        !valid_name(creds->access_key_id) || creds->secret_access_key[0] == '\0' ||
        strlen(creds->access_key_id) > MG_SIGV4_KEY_ID_MAX ||
        strlen(creds->secret_access_key) > MG_SIGV4_SECRET_MAX) {
        return fail(res, "access key id or secret missing or invalid");
    }
    if (creds->session_token != NULL && !valid_value(creds->session_token)) {
        return fail(res, "session token contains a line break");
    }
    if (req->nheaders > MG_SIGV4_MAX_HEADERS || (req->nheaders > 0 && req->headers == NULL)) {
        return fail(res, "too many headers to sign");
    }
    if (req->body_len > 0 && req->body == NULL) {
        return fail(res, "body_len without a body");
    }
    for (i = 0; i < req->nheaders; i++) {
        const struct mg_sigv4_header *h = &req->headers[i];

        if (h->name == NULL || h->value == NULL || !valid_name(h->name) ||
            !valid_value(h->value)) {
            return fail(res, "invalid header to sign");
        }
        if (name_is(h->name, "host") || name_is(h->name, "authorization") ||
            name_is(h->name, "x-amz-date") || name_is(h->name, "x-amz-security-token") ||
            name_is(h->name, "x-amz-content-sha256")) {
            return fail(res, "header set by the signer given by the caller");
        }
    }
    return MG_OK;
}

/* The headers to sign, sorted by lowercase name (repeats in request order), and their names. */
struct hset {
    struct hdr hs[MG_SIGV4_MAX_HEADERS + 4];
    size_t     nh;
    char       names[MG_SIGV4_AUTH_MAX];    /* "content-type;host;x-amz-date" */
    size_t     nlen;
    size_t     group_off[MG_SIGV4_MAX_HEADERS + 4];     /* each distinct name in names */
    size_t     group_len[MG_SIGV4_MAX_HEADERS + 4];
    size_t     ng;
};

static void
hset_add(struct hset *h, const char *name, const char *value)
{
    h->hs[h->nh] = (struct hdr){ name, strlen(name), value, h->nh };
    h->nh++;
}

static int
collect_headers(struct hset *h, const struct mg_sigv4_request *req, const char *token,
                struct mg_sigv4_result *res)
{
    size_t i, j, k;

    for (i = 0; i < req->nheaders; i++) {
        hset_add(h, req->headers[i].name, req->headers[i].value);
    }
    hset_add(h, "host", req->host);
    hset_add(h, "x-amz-date", res->amz_date);
    if (token != NULL) {
        hset_add(h, "x-amz-security-token", token);
    }
    if (req->payload_header) {
        hset_add(h, "x-amz-content-sha256", res->payload_hash);
    }
    qsort(h->hs, h->nh, sizeof(h->hs[0]), hdr_cmp);
    for (i = 0; i < h->nh; i = j) {
        for (j = i + 1; j < h->nh && hdr_cmp_name(&h->hs[i], &h->hs[j]) == 0; j++) {
        }
        if (h->nlen + h->hs[i].nlen + 1 >= sizeof(h->names)) {
            return fail(res, "signed header names too long");
        }
        if (h->nlen > 0) {
            h->names[h->nlen++] = ';';
        }
        h->group_off[h->ng] = h->nlen;
        h->group_len[h->ng] = h->hs[i].nlen;
        h->ng++;
        for (k = 0; k < h->hs[i].nlen; k++) {
            h->names[h->nlen++] = (char)lower((unsigned char)h->hs[i].name[k]);
        }
    }
    h->names[h->nlen] = '\0';
    return MG_OK;
}

/* Writes the canonical request into s. */
static void
canonical_request(struct sink *s, const struct mg_sigv4_request *req, const struct hset *h,
                  const struct mg_buf *query, const char *payload_hash)
{
    const char *path = (req->path != NULL && req->path[0] != '\0') ? req->path : "/";
    size_t i = 0, g;

    puts_(s, req->method);
    put(s, "\n", 1);
    if (strcmp(req->service, "s3") == 0) {
        puts_(s, path);
    } else {
        put_encoded(s, path, strlen(path), 1);
    }
    put(s, "\n", 1);
    put(s, query->len > 0 ? query->data : "", query->len);
    put(s, "\n", 1);
    for (g = 0; g < h->ng; g++) {
        size_t first = i;

        put(s, h->names + h->group_off[g], h->group_len[g]);
        put(s, ":", 1);
        for (; i < h->nh && hdr_cmp_name(&h->hs[i], &h->hs[first]) == 0; i++) {
            if (i > first) {
                put(s, ",", 1);
            }
            put_trimmed(s, h->hs[i].value);
        }
        put(s, "\n", 1);
    }
    put(s, "\n", 1);
    put(s, h->names, h->nlen);
    put(s, "\n", 1);
    put(s, payload_hash, 64);
}

/* The hex SHA-256 of the canonical request, copied to req->creq_out when there is one. */
static int
hash_canonical_request(const struct mg_sigv4_request *req, const struct hset *h,
                       struct mg_sigv4_result *res, char hex[65])
{
    struct sink s = { NULL, req->creq_out, MG_OK };
    struct mg_buf query;
    unsigned char digest[32];
    unsigned int dlen;
    int rc;

    mg_buf_init(&query, MG_SIGV4_QUERY_MAX);
    if (req->query != NULL && req->query[0] != '\0' &&
        (rc = canonical_query(req->query, &query, res)) != MG_OK) {
        mg_buf_deinit(&query);
        return rc;
    }
    if ((s.md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(s.md, EVP_sha256(), NULL) != 1) {
        s.err = MG_ERR;
    }
    canonical_request(&s, req, h, &query, res->payload_hash);
    if (s.err == MG_OK && EVP_DigestFinal_ex(s.md, digest, &dlen) != 1) {
        s.err = MG_ERR;
    }
    EVP_MD_CTX_free(s.md);
    mg_buf_deinit(&query);
    if (s.err != MG_OK) {
        res->error = s.err == MG_ETOOBIG ? "canonical request passes its buffer's cap"
                                         : "SHA-256 failed";
        return s.err;
    }
    mg_sigv4_hex(digest, 32, hex);
    return MG_OK;
}

int
mg_sigv4_canon_hash(const struct mg_sigv4_request *req, const char *token,
                    struct mg_sigv4_result *res, char names[MG_SIGV4_AUTH_MAX], char hex[65])
{
    struct hset h;
    int rc;

    memset(&h, 0, sizeof(h));
    if ((rc = collect_headers(&h, req, token, res)) != MG_OK ||
        (rc = hash_canonical_request(req, &h, res, hex)) != MG_OK) {
        return rc;
    }
    memcpy(names, h.names, h.nlen + 1);
    return MG_OK;
}
