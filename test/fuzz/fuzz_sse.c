/*
 * Fuzz target: the SSE splitter (mg_sse_feed/mg_sse_flush). The stream is fed whole, then in
 * pieces whose sizes come from the input, and each run is held to a reference split made byte by
 * byte (an event ends at a '\n' that follows a '\n' with only '\r's between):
 * - every byte comes out once, in order (nothing lost, nothing repeated);
 * - a whole event (whole=1) is exactly one reference event;
 * - every terminated event of at most MG_SSE_EVENT_MAX bytes comes out whole, however it was cut;
 *   fed whole, every terminated event does; the unterminated rest comes out of the flush.
 * The first input byte picks the piece sizes; when it is 1 modulo 8 the stream is the rest of the
 * input repeated past MG_SSE_EVENT_MAX bytes (and more, see below), to reach the oversized paths.
 */
#include <string.h>

#include "fuzz.h"
#include "mg_usage.h"

#define MAX_EVENTS 65536

struct out {
    const uint8_t *in;        /* the stream, to compare with */
    size_t         len;
    size_t         pos;       /* bytes handed out so far */
    size_t         starts[MAX_EVENTS];   /* offsets where whole events began */
    size_t         ends[MAX_EVENTS];
    size_t         nwhole;
};

static struct out got;

static void
on_event(void *arg, const char *p, size_t n, int whole)
{
    struct out *o = arg;

    FZ_CHECK(whole == 0 || whole == 1);
    FZ_CHECK(n <= o->len - o->pos);
    FZ_CHECK(n == 0 || memcmp(p, o->in + o->pos, n) == 0);
    if (whole) {
        FZ_CHECK(n > 0 && o->nwhole < MAX_EVENTS);
        o->starts[o->nwhole] = o->pos;
        o->ends[o->nwhole++] = o->pos + n;
    }
    o->pos += n;
}

/* Offsets just past the end of each terminated reference event; returns how many. */
static size_t
reference(const uint8_t *p, size_t n, size_t *ends, size_t max)
{
    size_t i, k = 0;
    int nl = 0;

    for (i = 0; i < n; i++) {
        if (p[i] == '\n') {
            if (++nl == 2) {
                FZ_CHECK(k < max);
                ends[k++] = i + 1;
                nl = 0;
            }
        } else if (p[i] != '\r') {
            nl = 0;
        }
    }
    return k;
}

static size_t ref_ends[MAX_EVENTS];

/* Feeds s[0..n) in pieces drawn from seed (0: whole), flushes, checks against the reference. */
static void
run(const uint8_t *s, size_t n, size_t nref, uint64_t seed)
{
    struct mg_sse sse;
    size_t off = 0, w = 0, r, start;

    got.pos = 0;   /* (the arrays are 1 MiB: not cleared, only nwhole of them are read) */
    got.nwhole = 0;
    got.in = s;
    got.len = n;
    mg_sse_init(&sse);
    while (off < n) {
        size_t piece = n - off;
        if (seed != 0) {
            uint64_t x = mg_rand_next(&seed);
            /* small pieces half of the time, else medium ones, sometimes past the cap */
            size_t max = (x & 1) ? 16 : (x & 6) ? 4096 : MG_SSE_EVENT_MAX + 4096;
            piece = 1 + (size_t)(x >> 8) % max;
            piece = piece < n - off ? piece : n - off;
        }
        mg_sse_feed(&sse, (const char *)s + off, piece, on_event, &got);
        off += piece;
    }
    mg_sse_flush(&sse, on_event, &got);
    mg_sse_deinit(&sse);
    FZ_CHECK(got.pos == n);

    /* walk the reference events and the whole events side by side */
    for (r = 0, start = 0; r < nref; start = ref_ends[r], r++) {
        size_t len = ref_ends[r] - start;
        if (w < got.nwhole && got.starts[w] == start) {
            FZ_CHECK(got.ends[w] == ref_ends[r]);
            w++;
        } else {
            FZ_CHECK(seed != 0 && len > MG_SSE_EVENT_MAX);
        }
    }
    FZ_CHECK(w == got.nwhole);   /* no whole event outside the reference ones */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *s;
    uint8_t *big = NULL;
    size_t n, nref;
    uint64_t seed;

    if (size == 0) {
        return 0;
    }
    seed = 0x9e3779b97f4a7c15ull ^ ((uint64_t)data[0] * 0x100000001b3ull);
    s = data + 1;
    n = size - 1;
    if ((data[0] & 7) == 1 && n > 0) {
        /* the rest repeated past the cap, then a blank line and the rest once more: an input
         * without a blank line becomes an oversized event that ends, followed by another one */
        size_t tile = MG_SSE_EVENT_MAX + MG_SSE_EVENT_MAX / 2, i;
        big = malloc(tile + 2 + n);
        FZ_CHECK(big != NULL);
        for (i = 0; i < tile; i += n) {
            memcpy(big + i, s, tile - i < n ? tile - i : n);
        }
        memcpy(big + tile, "\n\n", 2);
        memcpy(big + tile + 2, s, n);
        s = big;
        n = tile + 2 + n;
    }
    nref = reference(s, n, ref_ends, MAX_EVENTS);
    run(s, n, nref, 0);
    run(s, n, nref, seed);
    free(big);
    return 0;
}
