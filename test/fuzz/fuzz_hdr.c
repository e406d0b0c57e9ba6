/*
 * Fuzz target: the mg_hdr checks, each against a slow, obvious re-statement of its rule, and the
 * log escaping against its inverse (what comes out is printable and decodes back to the input).
 */
#include <string.h>

#include "fuzz.h"
#include "mg_hdr.h"

static int
in_set(unsigned char c, const char *set)
{
    return c != 0 && strchr(set, c) != NULL;
}

static int
ref_name(const uint8_t *p, size_t n)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
                                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    size_t i;

    for (i = 0; i < n; i++) {
        if (!in_set(p[i], tchar)) {
            return 0;
        }
    }
    return n > 0;
}

static int
ref_visible(const uint8_t *p, size_t n, size_t max)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (p[i] < 0x21 || p[i] > 0x7e) {
            return 0;
        }
    }
    return n > 0 && n <= max;
}

/* Content-Length by the book: digits only, and at most INT64_MAX compared as decimal text. */
static int
ref_content_length(const uint8_t *p, size_t n, uint64_t *v)
{
    static const char max[] = "9223372036854775807";
    size_t i, z = 0;

    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }
    }
    if (n == 0) {
        return -1;
    }
    while (z < n - 1 && p[z] == '0') {
        z++;
    }
    if (n - z > 19 || (n - z == 19 && memcmp(p + z, max, 19) > 0)) {
        return -1;
    }
    *v = 0;
    for (i = z; i < n; i++) {
        *v = *v * 10 + (uint64_t)(p[i] - '0');
    }
    return 0;
}

static int
hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
        return (c | 0x20) - 'a' + 10;
    }
    return -1;
}

static int
ref_chunk(const uint8_t *p, size_t n, uint64_t *v)
{
    size_t i = 0;

    *v = 0;
    while (i < n && hexval(p[i]) >= 0) {
        if (i == 16) {
            return -1;
        }
        *v = *v * 16 + (uint64_t)hexval(p[i]);
        i++;
    }
    if (i == 0 || *v > (uint64_t)INT64_MAX) {
        return -1;
    }
    while (i < n && (p[i] == ' ' || p[i] == '\t')) {
        i++;
    }
    if (i < n && p[i] != ';') {
        return -1;
    }
    if (i == n && (p[n - 1] == ' ' || p[n - 1] == '\t')) {
        return -1;   /* whitespace only before an extension */
    }
    for (; i < n; i++) {
        if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f) {
            return -1;
        }
    }
    return 0;
}

struct walk {
    const uint8_t *base;
    size_t         len;
    size_t         count;
};

static int
check_name(void *arg, const char *name, size_t len)
{
    struct walk *w = arg;
    const uint8_t *p = (const uint8_t *)name;

    /* a non-empty slice of the value, trimmed, without a comma */
    FZ_CHECK(len > 0);
    FZ_CHECK(p >= w->base && p + len <= w->base + w->len);
    FZ_CHECK(memchr(name, ',', len) == NULL);
    FZ_CHECK(name[0] != ' ' && name[0] != '\t' && name[len - 1] != ' ' && name[len - 1] != '\t');
    FZ_CHECK(mg_hdr_in_connection((const char *)w->base, w->len, name, len) == 1);
    w->count++;
    return 0;
}

static void
check_escape(const uint8_t *p, size_t n)
{
    struct mg_buf out;
    size_t i, o = 0;

    mg_buf_init(&out, n * 4 + 1);
    FZ_CHECK(mg_hdr_escape((const char *)p, n, &out) == MG_OK);
    for (i = 0; i < n; i++) {
        /* decode one output unit and compare it with the input byte */
        FZ_CHECK(o < out.len);
        FZ_CHECK(out.data[o] >= 0x20 && out.data[o] <= 0x7e);
        if (out.data[o] == '\\') {
            FZ_CHECK(o + 4 <= out.len && out.data[o + 1] == 'x');
            FZ_CHECK(hexval((uint8_t)out.data[o + 2]) * 16 + hexval((uint8_t)out.data[o + 3]) ==
                     p[i]);
            FZ_CHECK(p[i] < 0x20 || p[i] > 0x7e || p[i] == '"' || p[i] == '\\');
            o += 4;
        } else {
            FZ_CHECK(out.data[o] != '"' && (uint8_t)out.data[o] == p[i]);
            o++;
        }
    }
    FZ_CHECK(o == out.len);
    mg_buf_deinit(&out);

    /* with a small cap: a prefix of the full escape, never cut inside "\xHH" */
    if (n > 0) {
        struct mg_buf full, part;
        mg_buf_init(&full, n * 4 + 1);
        mg_buf_init(&part, n % 7 + 1);
        FZ_CHECK(mg_hdr_escape((const char *)p, n, &full) == MG_OK);
        if (mg_hdr_escape((const char *)p, n, &part) == MG_OK) {
            FZ_CHECK(part.len == full.len);
        } else {
            FZ_CHECK(part.len <= part.cap && part.len < full.len);
            FZ_CHECK(full.data[part.len] == '\\' || part.len == part.cap);
        }
        FZ_CHECK(part.len == 0 || memcmp(part.data, full.data, part.len) == 0);
        /* the cut falls between units: count backslashes' positions in the kept part */
        for (i = 0; i < part.len; i++) {
            if (part.data[i] == '\\') {
                FZ_CHECK(i + 4 <= part.len);
                i += 3;
            }
        }
        mg_buf_deinit(&full);
        mg_buf_deinit(&part);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    uint64_t a = 1, b = 2;
    struct mg_hdr_cl cl = {0};
    struct walk w = {data, size, 0};
    const uint8_t *nl;
    size_t i;
    int value_ok = 1;

    FZ_CHECK(mg_hdr_name_ok(s, size) == ref_name(data, size));
    for (i = 0; i < size; i++) {
        value_ok &= data[i] != 0 && data[i] != '\r' && data[i] != '\n';
    }
    FZ_CHECK(mg_hdr_value_ok(s, size) == value_ok);
    FZ_CHECK(mg_hdr_target_ok(s, size) == ref_visible(data, size, SIZE_MAX));
    FZ_CHECK(mg_hdr_request_id_ok(s, size) == ref_visible(data, size, MG_HDR_REQUEST_ID_MAX));

    FZ_CHECK((mg_hdr_content_length(s, size, &a) == MG_OK) ==
             (ref_content_length(data, size, &b) == 0));
    FZ_CHECK(mg_hdr_content_length(s, size, &a) != MG_OK || a == b);
    FZ_CHECK((mg_hdr_chunk_size(s, size, &a) == MG_OK) == (ref_chunk(data, size, &b) == 0));
    FZ_CHECK(mg_hdr_chunk_size(s, size, &a) != MG_OK || a == b);
    FZ_CHECK(mg_hdr_chunk_size_ok(s, size) == (mg_hdr_chunk_size(s, size, NULL) == MG_OK));

    /* the input split at newlines: Content-Length headers that must agree */
    for (i = 0; i <= size; i = (size_t)(nl - data) + 1) {
        nl = memchr(data + i, '\n', size - i);
        if (nl == NULL) {
            nl = data + size;
        }
        if (mg_hdr_cl_add(&cl, s + i, (size_t)(nl - data) - i) != MG_OK) {
            break;
        }
        FZ_CHECK(cl.seen && mg_hdr_content_length(s + i, (size_t)(nl - data) - i, &a) == MG_OK);
        FZ_CHECK(a == cl.value);
    }

    FZ_CHECK(mg_hdr_connection_names(s, size, check_name, &w) == 0);
    FZ_CHECK(mg_hdr_in_connection(s, size, "", 0) == 0);
    FZ_CHECK(w.count > 0 || mg_hdr_in_connection(s, size, "close", 5) == 0);
    (void)mg_hdr_transfer_encoding_ok(s, size);

    check_escape(data, size);
    return 0;
}
