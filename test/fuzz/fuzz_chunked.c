/*
 * Fuzz target: the chunked body decoder (mg_front_dechunk). The same bytes fed whole and fed in
 * two pieces cut where the input's first byte says must give the same body, consume the same
 * bytes and end the same way; the body never exceeds what was fed.
 */
#include <string.h>

#include "fuzz.h"
#include "mg_front.h"
#include "mg_util.h"

struct run {
    struct mg_buf out;
    ssize_t       used;
    int           done;
    int           status;   /* 0 when no error */
};

static int
collect(void *arg, const char *p, size_t n)
{
    return mg_buf_add(arg, p, n) == MG_OK ? 0 : -1;
}

static void
decode(const char *in, size_t n, size_t cut, struct run *r)
{
    static struct mg_front_chunked c;
    struct mg_front_refusal why;
    ssize_t a, b = 0;

    memset(&c, 0, sizeof(c));
    mg_buf_init(&r->out, 1 << 20);
    r->status = 0;
    a = mg_front_dechunk(&c, in, cut, collect, &r->out, &why);
    if (a >= 0 && !c.done && cut < n) {
        b = mg_front_dechunk(&c, in + a, n - (size_t)a, collect, &r->out, &why);
        if (b >= 0) {
            FZ_CHECK((size_t)a == cut);   /* not done: everything fed was taken */
        }
    }
    if (a < 0 || b < 0) {
        r->status = why.status;
        r->used = -1;
    } else {
        r->used = a + b;
    }
    r->done = c.done;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run whole, split;
    size_t cut;

    if (size == 0) {
        return 0;
    }
    cut = data[0] % size;
    decode((const char *)data + 1, size - 1, size - 1, &whole);
    decode((const char *)data + 1, size - 1, cut > size - 1 ? size - 1 : cut, &split);
    FZ_CHECK(whole.used == split.used);
    FZ_CHECK(whole.status == split.status);
    FZ_CHECK(whole.used < 0 || whole.done == split.done);
    FZ_CHECK(whole.out.len <= size);
    if (whole.used >= 0) {
        FZ_CHECK(whole.out.len == split.out.len &&
                 (whole.out.len == 0 ||
                  memcmp(whole.out.data, split.out.data, whole.out.len) == 0));
        FZ_CHECK(!whole.done || whole.used >= 5);   /* at least "0\r\n\r\n" */
    } else {
        FZ_CHECK(whole.status == 400 || whole.status == 0);
    }
    mg_buf_deinit(&whole.out);
    mg_buf_deinit(&split.out);
    return 0;
}
