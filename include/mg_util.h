/*
 * mg_util — allocation that aborts on out-of-memory, a capped growable buffer, and the small
 * parsers (durations, sizes, listen addresses) that the config and the tests share.
 */
#ifndef MG_UTIL_H
#define MG_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <stdint.h>

#define MG_OK       0
#define MG_ERR     -1      /* generic failure; the caller's buffer holds the reason */
#define MG_ETOOBIG -2      /* a capped buffer would grow past its cap */

#define MG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation: never returns NULL; prints a line and aborts when memory is exhausted. */
void *mg_malloc(size_t n);
void *mg_calloc(size_t n, size_t size);
void *mg_realloc(void *p, size_t n);
char *mg_strdup(const char *s);

/* pthread_mutex_init() with default attributes; a failure aborts, as allocation does. */
void mg_mutex_init(pthread_mutex_t *mutex);

/*
 * memmem() for the short needles the relay looks for in each event ("\"usage\"", "\n\n"):
 * memchr() on the needle's second byte (the first is a quote, frequent in JSON), then a
 * compare. glibc's memmem() builds a shift table on every call: ~300 instructions on a
 * 200-byte event, where this takes a few dozen.
 */
const char *mg_find(const char *h, size_t hn, const char *needle, size_t nn);
char *mg_strndup(const char *s, size_t n);

/* A growable byte buffer with a hard cap fixed at creation (curl's dynbuf). Always NUL-terminated. */
struct mg_buf {
    char  *data;
    size_t len;
    size_t alloc;
    size_t cap;     /* largest len allowed */
};

/* Sets up an empty buffer that may hold at most cap bytes. */
void mg_buf_init(struct mg_buf *b, size_t cap);
/* Frees the memory; the buffer is empty and reusable afterwards. */
void mg_buf_deinit(struct mg_buf *b);
/* Makes room for n more bytes (one allocation instead of several doublings); MG_OK or MG_ETOOBIG. */
int mg_buf_reserve(struct mg_buf *b, size_t n);
/*
 * n random bytes as 2n lower-case hex digits into out (2n + 1 bytes, NUL-terminated), from the
 * kernel's generator: ids a client could otherwise guess (a stored Response's). MG_OK or MG_ERR.
 */
int mg_random_hex(char *out, size_t n);

/* Appends v in decimal (the writers' counts: cheaper than mg_buf_printf's "%lld"). */
int mg_buf_int(struct mg_buf *b, int64_t v);

/* mg_buf_add when the bytes do not fit in what is allocated. */
int mg_buf_add_slow(struct mg_buf *b, const void *p, size_t n);
/* Appends n bytes; MG_ETOOBIG (and nothing appended) when the cap would be passed. */
static inline int
mg_buf_add(struct mg_buf *b, const void *p, size_t n)
{
    /* the common case inline: it fits in what is allocated (and so under the cap) */
    if (n < b->alloc - b->len && n <= b->cap - b->len) {   /* len <= cap and len < alloc hold */
        if (n > 0) {
            memcpy(b->data + b->len, p, n);
        }
        b->len += n;
        b->data[b->len] = '\0';
        return MG_OK;
    }
    return mg_buf_add_slow(b, p, n);
}
/* Appends a C string. */
int mg_buf_adds(struct mg_buf *b, const char *s);
/* Appends printf-style text. */
int mg_buf_printf(struct mg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Empties the buffer and keeps its memory. */
void mg_buf_reset(struct mg_buf *b);

/*
 * A free list of same-size blocks, kept for reuse by one thread. A request's state is several
 * KiB: from malloc, each one took glibc's large-request path (a consolidation of its fast bins,
 * ~6,500 instructions a request under callgrind); from here it is a pointer pop. A reused block
 * holds what its last user left: the caller sets up every field.
 */
struct mg_pool {
    void  *head;    /* the spare blocks, linked through their first bytes */
    size_t n;       /* how many */
    size_t max;     /* spares kept; blocks put back beyond this are freed */
};

void mg_pool_init(struct mg_pool *p, size_t max);
/* A block of size bytes, not cleared (every block of a pool must have the same size). */
void *mg_pool_get(struct mg_pool *p, size_t size);
/* Gives a block back (NULL is a no-op). */
void mg_pool_put(struct mg_pool *p, void *block);
/* Frees the spares. */
void mg_pool_deinit(struct mg_pool *p);

/* "500ms", "5s", "2m", "1h" -> milliseconds. MG_OK or MG_ERR. */
int mg_parse_duration(const char *s, int64_t *ms);
/* "1024", "16KiB", "16MiB", "1GiB" -> bytes. MG_OK or MG_ERR. */
int mg_parse_size(const char *s, uint64_t *bytes);
/* "host:port", "[v6]:port", ":port" -> host (empty for all addresses) and port. MG_OK or MG_ERR. */
int mg_parse_listen(const char *s, char *host, size_t hostlen, int *port);

/* Milliseconds of a monotonic clock. */
int64_t mg_now_ms(void);
/* Microseconds of a monotonic clock. */
int64_t mg_now_us(void);

/* The value of a hex digit (either case), or -1. */
int mg_hexval(int c);

/*
 * The largest token count the gateway believes (2^53 - 1: exact in every JSON reader's double).
 * A backend's usage number outside 0..MG_TOKENS_MAX counts as absent, and sums stop here.
 */
#define MG_TOKENS_MAX ((int64_t)(((uint64_t)1 << 53) - 1))

/* 1 when v is a usage number to believe: 0 <= v <= MG_TOKENS_MAX. */
int mg_tokens_valid(int64_t v);
/*
 * a + b for token counts, saturating at MG_TOKENS_MAX: a backend that reports absurd usage must
 * not overflow a signed sum (undefined behaviour) or wrap a counter. A negative term (-1:
 * unknown) counts as 0, one above MG_TOKENS_MAX as MG_TOKENS_MAX.
 */
int64_t mg_tokens_add(int64_t a, int64_t b);

/* An answer's token usage, as every module that reads or writes one passes it. */
struct mg_usage {
    int64_t input;    /* prompt_tokens / input_tokens; -1 when unknown */
    int64_t output;   /* completion_tokens / output_tokens; -1 when unknown */
    int64_t cached;   /* of input: read from the provider's cache (-1: not said) */
    int64_t written;  /* of input: written to the provider's cache (-1: not said) */
};

/* xorshift64*: a small, seedable PRNG; state must not be 0. */
uint64_t mg_rand_next(uint64_t *state);

/*
 * Whether the peer of a connected socket has gone, without consuming anything:
 * 1 closed or reset, 0 nothing to say (would block), -1 bytes are waiting (the peer still talks).
 */
int mg_sock_peer_gone(int fd);

#endif
