/*
 * Fuzz target: mg_multipart. The input is a Content-Type value, a LF, then a body (the format
 * of the .in.http files of test/golden/multipart/; no LF: the body alone, with boundary "b").
 * Whatever the bytes: an answer, a reason with every error, and a found model that lies in the
 * body, is a plain value, and sits right after a blank line and right before a delimiter; a
 * rewrite keeps every other byte and reads back as the new model at the same offset.
 */
#include <string.h>

#include "fuzz.h"
#include "mg_multipart.h"

#define CT_MAX 512

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    char ct[CT_MAX + 1];
    const char *body, *why = NULL, *v;
    size_t cl, blen;
    struct mg_multipart_part m, m2;
    struct mg_buf out;
    static const char repl[] = "gpt-4o-transcribe";

    cl = nl != NULL ? (size_t)(nl - data) : 0;
    if (nl == NULL || cl > CT_MAX || memchr(data, '\0', cl) != NULL) {
        /* no type line: the body alone against a fixed type */
        memcpy(ct, "multipart/form-data; boundary=b", 32);
        body = (const char *)data;
        blen = size;
    } else {
        memcpy(ct, data, cl);
        ct[cl] = '\0';
        body = (const char *)nl + 1;
        blen = size - cl - 1;
    }
    if (mg_multipart_model(ct, body, blen, &m, &why) != MG_OK) {
        FZ_CHECK(why != NULL && why[0] != '\0');
        FZ_CHECK(m.off == 0 && m.len == 0);
        return 0;
    }
    FZ_CHECK(m.len >= 1 && m.len <= MG_MULTIPART_MODEL_MAX);
    FZ_CHECK(m.off <= blen && m.len <= blen - m.off);
    v = body + m.off;
    FZ_CHECK(memchr(v, '\r', m.len) == NULL && memchr(v, '\n', m.len) == NULL);
    FZ_CHECK(memchr(v, '\0', m.len) == NULL);
    /* the value follows its blank line and is followed by CRLF "--" (its delimiter) */
    FZ_CHECK(m.off >= 4 && memcmp(v - 4, "\r\n\r\n", 4) == 0);
    FZ_CHECK(blen - m.off - m.len >= 4 && memcmp(v + m.len, "\r\n--", 4) == 0);

    mg_buf_init(&out, blen + sizeof(repl));
    FZ_CHECK(mg_multipart_rewrite(body, blen, &m, repl, &out) == MG_OK);
    FZ_CHECK(out.len == blen - m.len + sizeof(repl) - 1);
    FZ_CHECK(memcmp(out.data, body, m.off) == 0);
    FZ_CHECK(memcmp(out.data + m.off + sizeof(repl) - 1, v + m.len, blen - m.off - m.len) == 0);
    FZ_CHECK(mg_multipart_model(ct, out.data, out.len, &m2, &why) == MG_OK);
    FZ_CHECK(m2.off == m.off && m2.len == sizeof(repl) - 1);
    mg_buf_deinit(&out);
    return 0;
}
