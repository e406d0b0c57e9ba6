/*
 * Fuzz target: the usage reader and the usage-event edits (mg_usage_parse, mg_sse_is_usage_only,
 * mg_sse_strip_null_usage) on backend bytes, which are never trusted. Beyond "no crash, no read
 * past the end": a found usage has a count and comes from a "usage" key; stripping only removes
 * bytes (what is left is a subsequence of the input), removes some only when there is a null to
 * remove, and is a no-op without "usage".
 */
#include <string.h>

#include "fuzz.h"
#include "mg_usage.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    struct mg_usage u = {-7, -7, -7, -7};
    struct mg_buf out;
    size_t i, j;
    int found, rc;

    found = mg_usage_parse(p, size, &u);
    FZ_CHECK(found == 0 || found == 1);
    if (found) {
        FZ_CHECK(u.input >= -1 && u.output >= -1);
        FZ_CHECK(u.input >= 0 || u.output >= 0);
        FZ_CHECK(memmem(p, size, "\"usage\"", 7) != NULL);
    }
    (void)mg_sse_is_usage_only(p, size);
    FZ_CHECK(!mg_sse_is_usage_only(p, size) || memmem(p, size, "\"usage\"", 7) != NULL);

    mg_buf_init(&out, size + 1);
    rc = mg_sse_strip_null_usage(p, size, &out);
    FZ_CHECK(rc == MG_OK);
    FZ_CHECK(out.len <= size);
    if (memmem(p, size, "\"usage\"", 7) == NULL) {
        FZ_CHECK(out.len == size && memcmp(out.data, p, size) == 0);
    }
    /* what is left is a subsequence of the input, and what went are whole null-usage members */
    for (i = 0, j = 0; i < out.len; i++, j++) {
        while (j < size && data[j] != (uint8_t)out.data[i]) {
            j++;
        }
        FZ_CHECK(j < size);
    }
    if (out.len < size) {
        FZ_CHECK(memmem(p, size, "null", 4) != NULL);
    }
    mg_buf_deinit(&out);
    return 0;
}
