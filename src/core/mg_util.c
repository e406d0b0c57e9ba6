/*
 * mg_util — allocation, the capped buffer and the scalar parsers shared by every module.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "mg_util.h"

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef VALGRIND_MAKE_MEM_UNDEFINED
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n) ((void)(p), (void)(n))
#endif

static void
oom(size_t n)
{
    fprintf(stderr, "modelgate: out of memory allocating %zu bytes\n", n);
    abort();
}

void *
mg_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        oom(n);
    }
    return p;
}

void *
mg_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) {
        oom(n * size);
    }
    return p;
}

void *
mg_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        oom(n);
    }
    return q;
}

void
mg_mutex_init(pthread_mutex_t *mutex)
{
    int rc = pthread_mutex_init(mutex, NULL);

    if (rc != 0) {
        fprintf(stderr, "modelgate: pthread_mutex_init: %s\n", strerror(rc));
        abort();
    }
}

char *
mg_strndup(const char *s, size_t n)
{
    char *p = mg_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

const char *
mg_find(const char *h, size_t hn, const char *needle, size_t nn)
{
    const char *p, *q, *lim;

    if (nn < 2) {
        return nn == 0 ? h : memchr(h, needle[0], hn);
    }
    if (nn > hn) {
        return NULL;
    }
    lim = h + (hn - nn) + 2;   /* the second byte of the last place the needle fits, + 1 */
    for (p = h + 1; p < lim; p = q + 1) {
        if ((q = memchr(p, needle[1], (size_t)(lim - p))) == NULL) {
            return NULL;
        }
        if (q[-1] == needle[0] && memcmp(q + 1, needle + 2, nn - 2) == 0) {
            return q - 1;
        }
    }
    return NULL;
}

char *
mg_strdup(const char *s)
{
    return s == NULL ? NULL : mg_strndup(s, strlen(s));
}

void
mg_buf_init(struct mg_buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap;
}

void
mg_buf_deinit(struct mg_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
}

void
mg_buf_reset(struct mg_buf *b)
{
    b->len = 0;
    if (b->data != NULL) {
        b->data[0] = '\0';
    }
}

void
mg_pool_init(struct mg_pool *p, size_t max)
{
    p->head = NULL;
    p->n = 0;
    p->max = max;
}

void *
mg_pool_get(struct mg_pool *p, size_t size)
{
    void *b = p->head;

    if (b == NULL) {
        return mg_calloc(1, size);
    }
    memcpy(&p->head, b, sizeof(void *));
    p->n--;
    /* under memcheck, what the last user left reads as never written: a field the next user
     * forgets to set is reported, as it would be in a fresh block (a no-op without valgrind) */
    VALGRIND_MAKE_MEM_UNDEFINED(b, size);
    return b;
}

void
mg_pool_put(struct mg_pool *p, void *block)
{
    if (block == NULL) {
        return;
    }
    if (p->n >= p->max) {
        free(block);
        return;
    }
    memcpy(block, &p->head, sizeof(void *));
    p->head = block;
    p->n++;
}

void
mg_pool_deinit(struct mg_pool *p)
{
    while (p->head != NULL) {
        void *b = p->head;
        memcpy(&p->head, b, sizeof(void *));
        free(b);
    }
    p->n = 0;
}

int
mg_buf_reserve(struct mg_buf *b, size_t n)
{
    size_t need, alloc;

    if (n > b->cap || b->len > b->cap - n) {
        return MG_ETOOBIG;
    }
    need = b->len + n + 1;
    if (need <= b->alloc) {
        return MG_OK;
    }
    alloc = b->alloc ? b->alloc : 64;
    while (alloc < need) {
        alloc *= 2;
    }
    b->data = mg_realloc(b->data, alloc);
    b->alloc = alloc;
    return MG_OK;
}

int
mg_buf_add_slow(struct mg_buf *b, const void *p, size_t n)
{
    if (mg_buf_reserve(b, n) != MG_OK) {
        return MG_ETOOBIG;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return MG_OK;
}

int
mg_random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    size_t i;

    if (n > sizeof(raw) || getrandom(raw, n, 0) != (ssize_t)n) {
        return MG_ERR;
    }
    for (i = 0; i < n; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * n] = '\0';
    return MG_OK;
}

int
mg_buf_int(struct mg_buf *b, int64_t v)
{
    char d[24], *p = d + sizeof(d);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        *--p = '-';
    }
    return mg_buf_add(b, p, (size_t)(d + sizeof(d) - p));
}

int
mg_buf_adds(struct mg_buf *b, const char *s)
{
    return mg_buf_add(b, s, strlen(s));
}

int
mg_buf_printf(struct mg_buf *b, const char *fmt, ...)
{
    va_list ap;
    size_t room = b->alloc > b->len ? b->alloc - b->len : 0;
    int n;

    /* once into the room there is: most texts fit, and vsnprintf is not cheap to run twice */
    va_start(ap, fmt);
    n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < room && (size_t)n <= b->cap - b->len) {
        b->len += (size_t)n;
        return MG_OK;
    }
    if (room > 0) {
        b->data[b->len] = '\0';   /* what did not fit is no part of the buffer */
    }
    if (n < 0 || mg_buf_reserve(b, (size_t)n) != MG_OK) {
        return MG_ETOOBIG;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return MG_OK;
}

/* Reads the leading unsigned decimal number of s; *end points past it. MG_ERR if none/overflow. */
static int
parse_number(const char *s, uint64_t *v, const char **end)
{
    uint64_t n = 0;
    const char *p = s;

    if (!isdigit((unsigned char)*p)) {
        return MG_ERR;
    }
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10) {
            return MG_ERR;
        }
        n = n * 10 + d;
        p++;
    }
    *v = n;
    *end = p;
    return MG_OK;
}

struct unit {
    const char *name;
    uint64_t    mul;
};

/* A whole number followed by exactly one of the units (an empty name allows a bare number). */
static int
parse_with_unit(const char *s, const struct unit *units, size_t nunits, uint64_t max,
                uint64_t *out)
{
    const char *end;
    uint64_t n;
    size_t i;

    if (s == NULL || parse_number(s, &n, &end) != MG_OK) {
        return MG_ERR;
    }
    for (i = 0; i < nunits; i++) {
        if (strcmp(end, units[i].name) == 0) {
            if (n > max / units[i].mul) {
                return MG_ERR;
            }
            *out = n * units[i].mul;
            return MG_OK;
        }
    }
    return MG_ERR;
}

int
mg_parse_duration(const char *s, int64_t *ms)
{
    static const struct unit units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    uint64_t v;

    if (parse_with_unit(s, units, MG_ARRAY_LEN(units), (uint64_t)INT64_MAX, &v) != MG_OK) {
        return MG_ERR;
    }
    *ms = (int64_t)v;
    return MG_OK;
}

int
mg_parse_size(const char *s, uint64_t *bytes)
{
    static const struct unit units[] = {
        {"", 1}, {"B", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", 1024ull * 1024 * 1024},
    };

    return parse_with_unit(s, units, MG_ARRAY_LEN(units), UINT64_MAX, bytes);
}

int
mg_parse_listen(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon, *hs, *he;
    const char *end;
    uint64_t p;

    if (s == NULL) {
        return MG_ERR;
    }
    if (s[0] == '[') {
        he = strchr(s, ']');
        if (he == NULL || he[1] != ':') {
            return MG_ERR;
        }
        hs = s + 1;
        colon = he + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL) {
            return MG_ERR;
        }
        hs = s;
        he = colon;
    }
    if ((size_t)(he - hs) >= hostlen) {
        return MG_ERR;
    }
    if (parse_number(colon + 1, &p, &end) != MG_OK || *end != '\0' || p > 65535) {
        return MG_ERR;
    }
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    *port = (int)p;
    return MG_OK;
}

int64_t
mg_now_ms(void)
{
    return mg_now_us() / 1000;
}

int64_t
mg_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
mg_tokens_valid(int64_t v)
{
    return v >= 0 && v <= MG_TOKENS_MAX;
}

int64_t
mg_tokens_add(int64_t a, int64_t b)
{
    a = a < 0 ? 0 : a > MG_TOKENS_MAX ? MG_TOKENS_MAX : a;
    b = b < 0 ? 0 : b > MG_TOKENS_MAX ? MG_TOKENS_MAX : b;
    /* both at most 2^53 - 1: the sum fits easily, then it is clamped */
    return a + b > MG_TOKENS_MAX ? MG_TOKENS_MAX : a + b;
}

uint64_t
mg_rand_next(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

int
mg_sock_peer_gone(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

    if (n > 0) {
        return -1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return 0;
    }
    return 1;
}

int
mg_hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}
