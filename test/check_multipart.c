/*
 * Unit tests of the multipart/form-data `model` reader and rewriter (mg_multipart): golden bodies
 * under test/golden/multipart/ (`<case>.in.http`: the Content-Type value, a LF, then the body
 * bytes; `<case>.out.json`: {"model": …} or {"error": "invalid_multipart", "why": the reason}),
 * among them bodies captured from curl 7.88 -F and the OpenAI Node SDK 4.104 (transcription,
 * image edit), and two as openai-python's httpx writes them (by hand, from httpx _multipart.py);
 * then the edges a golden file cannot show: caps, rewrites, truncations, byte mutations.
 */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_multipart.h"
#include "mg_test.h"

#define GOLDEN "test/golden/multipart/"
#define CT     "multipart/form-data; boundary=b"

static char *
slurp(const char *base, const char *suffix, size_t *len)
{
    char path[512];
    FILE *f;
    char *p;
    long n;

    snprintf(path, sizeof(path), GOLDEN "%s%s", base, suffix);
    ck_assert_msg((f = fopen(path, "rb")) != NULL, "%s is missing", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    ck_assert_int_ge(n, 0);
    ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
    p = mg_malloc((size_t)n + 1);
    ck_assert_int_eq(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* A rewrite of a found model: the same bytes around new, and the new body reads new. */
static void
check_rewrite(const char *label, const char *ct, const char *body, size_t len,
              const struct mg_multipart_part *m, const char *new_model)
{
    struct mg_multipart_part m2;
    struct mg_buf out;
    size_t nl = strlen(new_model);
    const char *why = NULL;

    mg_buf_init(&out, len + nl);
    ck_assert_int_eq(mg_multipart_rewrite(body, len, m, new_model, &out), MG_OK);
    ck_assert_uint_eq(out.len, len - m->len + nl);
    ck_assert_msg(memcmp(out.data, body, m->off) == 0, "%s: bytes before the model", label);
    ck_assert(memcmp(out.data + m->off, new_model, nl) == 0);
    ck_assert_msg(memcmp(out.data + m->off + nl, body + m->off + m->len,
                         len - m->off - m->len) == 0, "%s: bytes after the model", label);
    ck_assert_msg(mg_multipart_model(ct, out.data, out.len, &m2, &why) == MG_OK,
                  "%s: the rewritten body: %s", label, why);
    ck_assert_uint_eq(m2.off, m->off);
    ck_assert_uint_eq(m2.len, nl);
    mg_buf_deinit(&out);
}

static void
golden(const char *base, int *oks, int *errs)
{
    size_t n, jn;
    char *in = slurp(base, ".in.http", &n), *js = slurp(base, ".out.json", &jn), *nl;
    json_t *want = json_loadb(js, jn, 0, NULL), *wm;
    struct mg_multipart_part m;
    const char *why = NULL, *body;
    size_t blen;
    int rc;

    ck_assert_msg(want != NULL, "%s.out.json is not JSON", base);
    nl = memchr(in, '\n', n);
    ck_assert_msg(nl != NULL, "%s.in.http has no Content-Type line", base);
    *nl = '\0';
    body = nl + 1;
    blen = n - (size_t)(nl + 1 - in);
    rc = mg_multipart_model(in, body, blen, &m, &why);
    wm = json_object_get(want, "model");
    if (wm != NULL) {
        ck_assert_msg(rc == MG_OK, "%s: refused: %s", base, why);
        ck_assert_msg(m.len == strlen(json_string_value(wm))
                      && memcmp(body + m.off, json_string_value(wm), m.len) == 0,
                      "%s: read %.*s", base, (int)m.len, body + m.off);
        check_rewrite(base, in, body, blen, &m, "gpt-4o-transcribe-2025-03-20");
        check_rewrite(base, in, body, blen, &m, "x");
        (*oks)++;
    } else {
        ck_assert_str_eq(json_string_value(json_object_get(want, "error")), "invalid_multipart");
        ck_assert_msg(rc == MG_ERR, "%s: accepted, model %.*s", base, (int)m.len, body + m.off);
        ck_assert_msg(why != NULL && why[0] != '\0', "%s: no reason", base);
        if (json_object_get(want, "why") != NULL) {
            ck_assert_msg(strcmp(why, json_string_value(json_object_get(want, "why"))) == 0,
                          "%s: refused for another reason: %s", base, why);
        }
        ck_assert_uint_eq(m.len, 0);
        (*errs)++;
    }
    json_decref(want);
    free(in);
    free(js);
}

START_TEST(golden_bodies)
{
    static const char sfx[] = ".in.http";
    char base[256];
    struct dirent *de;
    DIR *d;
    int oks = 0, errs = 0;

    ck_assert_msg((d = opendir(GOLDEN)) != NULL, "no " GOLDEN " (run from the source tree)");
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l <= sizeof(sfx) - 1 || l >= sizeof(base)
            || strcmp(de->d_name + l - (sizeof(sfx) - 1), sfx) != 0) {
            continue;
        }
        memcpy(base, de->d_name, l - (sizeof(sfx) - 1));
        base[l - (sizeof(sfx) - 1)] = '\0';
        golden(base, &oks, &errs);
    }
    closedir(d);
    ck_assert_int_ge(oks, 14);
    ck_assert_int_ge(errs, 36);
}
END_TEST

static int
read_model(const char *ct, const char *body, size_t len, const char **why)
{
    struct mg_multipart_part m;

    return mg_multipart_model(ct, body, len, &m, why);
}

START_TEST(null_and_types)
{
    static const char body[] = "--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
                               "m\r\n--b--";
    struct mg_multipart_part m;
    const char *why = NULL;

    ck_assert_int_eq(mg_multipart_model(CT, body, sizeof(body) - 1, &m, NULL), MG_OK);
    ck_assert_uint_eq(m.len, 1);
    ck_assert_int_eq(mg_multipart_model(NULL, body, sizeof(body) - 1, &m, &why), MG_ERR);
    ck_assert_ptr_nonnull(why);
    ck_assert_int_eq(read_model(CT, NULL, 0, &why), MG_ERR);
    ck_assert_int_eq(read_model(CT, NULL, 5, &why), MG_ERR);
    ck_assert_int_eq(read_model("", body, sizeof(body) - 1, &why), MG_ERR);
    ck_assert_int_eq(read_model("multipart/form-data-x; boundary=b", body, sizeof(body) - 1,
                                &why), MG_ERR);
    ck_assert_int_eq(read_model("multipart/form-data boundary=b", body, sizeof(body) - 1,
                                &why), MG_ERR);
    ck_assert_int_eq(read_model("multipart/form-data; boundary", body, sizeof(body) - 1,
                                &why), MG_ERR);
    ck_assert_int_eq(read_model("multipart/form-data; boundary=b;", body, sizeof(body) - 1,
                                &why), MG_OK);
    ck_assert_int_eq(read_model("  multipart/form-data ;\tboundary=\"b\" ", body,
                                sizeof(body) - 1, &why), MG_OK);
    ck_assert_int_eq(read_model("multipart/form-data; boundary=\"\\b\"", body,
                                sizeof(body) - 1, &why), MG_OK);
    ck_assert_int_eq(read_model("multipart/form-data; x=\"unclosed; boundary=b", body,
                                sizeof(body) - 1, &why), MG_ERR);
    /* a token boundary takes tchars only: "(" is a bchar, but only quoted */
    ck_assert_int_eq(read_model("multipart/form-data; boundary=a(b", body, sizeof(body) - 1,
                                &why), MG_ERR);
}
END_TEST

START_TEST(model_caps)
{
    struct mg_buf b;
    int i;
    const char *why = NULL;

    mg_buf_init(&b, 4096);
    /* 512 bytes: the most */
    ck_assert_int_eq(mg_buf_adds(&b, "--b\r\nContent-Disposition: form-data; name=model\r\n\r\n"),
                     MG_OK);
    for (i = 0; i < MG_MULTIPART_MODEL_MAX; i++) {
        ck_assert_int_eq(mg_buf_adds(&b, "m"), MG_OK);
    }
    ck_assert_int_eq(mg_buf_adds(&b, "\r\n--b--\r\n"), MG_OK);
    ck_assert_int_eq(read_model(CT, b.data, b.len, &why), MG_OK);
    mg_buf_reset(&b);
    ck_assert_int_eq(mg_buf_adds(&b, "--b\r\nContent-Disposition: form-data; name=model\r\n\r\n"),
                     MG_OK);
    for (i = 0; i <= MG_MULTIPART_MODEL_MAX; i++) {
        ck_assert_int_eq(mg_buf_adds(&b, "m"), MG_OK);
    }
    ck_assert_int_eq(mg_buf_adds(&b, "\r\n--b--\r\n"), MG_OK);
    ck_assert_int_eq(read_model(CT, b.data, b.len, &why), MG_ERR);
    /* a NUL or a CR in the value */
    {
        static const char nul[] = "--b\r\nContent-Disposition: form-data; name=model\r\n\r\n"
                                  "a\0b\r\n--b--";
        static const char cr[] = "--b\r\nContent-Disposition: form-data; name=model\r\n\r\n"
                                 "a\rb\r\n--b--";
        static const char ok[] = "--b\r\nContent-Disposition: form-data; name=model\r\n\r\n"
                                 "a-b\r\n--b--";
        ck_assert_int_eq(read_model(CT, nul, sizeof(nul) - 1, &why), MG_ERR);
        ck_assert_int_eq(read_model(CT, cr, sizeof(cr) - 1, &why), MG_ERR);
        ck_assert_int_eq(read_model(CT, ok, sizeof(ok) - 1, &why), MG_OK);
    }
    mg_buf_deinit(&b);
}
END_TEST

START_TEST(part_count_bounded)
{
    struct mg_buf b;
    const char *why = NULL;
    int i;

    mg_buf_init(&b, 1 << 20);
    ck_assert_int_eq(mg_buf_adds(&b, "--b\r\nContent-Disposition: form-data; name=model\r\n\r\n"
                                     "m\r\n"), MG_OK);
    for (i = 1; i < MG_MULTIPART_PARTS_MAX; i++) {
        ck_assert_int_eq(mg_buf_adds(&b, "--b\r\nContent-Disposition: form-data; name=x\r\n\r\n"
                                         "1\r\n"), MG_OK);
    }
    ck_assert_int_eq(mg_buf_adds(&b, "--b--\r\n"), MG_OK);
    ck_assert_int_eq(read_model(CT, b.data, b.len, &why), MG_OK);
    /* one more part */
    b.len -= 7;
    ck_assert_int_eq(mg_buf_adds(&b, "--b\r\nContent-Disposition: form-data; name=x\r\n\r\n"
                                     "1\r\n--b--\r\n"), MG_OK);
    ck_assert_int_eq(read_model(CT, b.data, b.len, &why), MG_ERR);
    ck_assert_str_eq(why, "too many parts");
    mg_buf_deinit(&b);
    /* a hundred thousand small parts: refused at the cap */
    mg_buf_init(&b, 8 << 20);
    for (i = 0; i < 100000; i++) {
        ck_assert_int_eq(mg_buf_adds(&b, "--b\r\nContent-Disposition: form-data; name=x\r\n"
                                         "\r\n\r\n"), MG_OK);
    }
    ck_assert_int_eq(mg_buf_adds(&b, "--b--\r\n"), MG_OK);
    ck_assert_int_eq(read_model(CT, b.data, b.len, &why), MG_ERR);
    ck_assert_str_eq(why, "too many parts");
    mg_buf_deinit(&b);
}
END_TEST

START_TEST(headers_capped)
{
    struct mg_buf b;
    const char *why = NULL;
    int i;

    mg_buf_init(&b, 1 << 16);
    ck_assert_int_eq(mg_buf_adds(&b, "--b\r\nContent-Disposition: form-data; name=model\r\n"),
                     MG_OK);
    for (i = 0; i < 400; i++) {
        ck_assert_int_eq(mg_buf_adds(&b, "X-Pad: 0123456789\r\n"), MG_OK);
    }
    ck_assert_int_eq(mg_buf_adds(&b, "\r\nm\r\n--b--\r\n"), MG_OK);
    ck_assert_int_eq(read_model(CT, b.data, b.len, &why), MG_OK);
    mg_buf_reset(&b);
    ck_assert_int_eq(mg_buf_adds(&b, "--b\r\nContent-Disposition: form-data; name=model\r\n"),
                     MG_OK);
    for (i = 0; i < 500; i++) {
        ck_assert_int_eq(mg_buf_adds(&b, "X-Pad: 0123456789\r\n"), MG_OK);
    }
    ck_assert_int_eq(mg_buf_adds(&b, "\r\nm\r\n--b--\r\n"), MG_OK);
    ck_assert_int_eq(read_model(CT, b.data, b.len, &why), MG_ERR);
    ck_assert_str_eq(why, "part headers too long");
    mg_buf_deinit(&b);
}
END_TEST

START_TEST(rewrite_edges)
{
    static const char body[] = "--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
                               "whisper-1\r\n--b--\r\n";
    size_t len = sizeof(body) - 1;
    struct mg_multipart_part m, bad;
    struct mg_buf out;

    ck_assert_int_eq(mg_multipart_model(CT, body, len, &m, NULL), MG_OK);
    /* the cap: exactly enough, one byte short */
    mg_buf_init(&out, len - m.len + 3);
    ck_assert_int_eq(mg_multipart_rewrite(body, len, &m, "abc", &out), MG_OK);
    ck_assert_uint_eq(out.len, len - 6);
    mg_buf_deinit(&out);
    mg_buf_init(&out, len - m.len + 2);
    ck_assert_int_eq(mg_multipart_rewrite(body, len, &m, "abc", &out), MG_ETOOBIG);
    ck_assert_uint_eq(out.len, 0);
    mg_buf_deinit(&out);
    /* appends after what out holds */
    mg_buf_init(&out, 1 << 10);
    ck_assert_int_eq(mg_buf_adds(&out, "head"), MG_OK);
    ck_assert_int_eq(mg_multipart_rewrite(body, len, &m, "w", &out), MG_OK);
    ck_assert_int_eq(memcmp(out.data, "head--b\r\n", 9), 0);
    ck_assert_uint_eq(out.len, 4 + len - 8);
    mg_buf_reset(&out);
    /* a bad value or a part outside the body: nothing appended */
    ck_assert_int_eq(mg_multipart_rewrite(body, len, &m, "", &out), MG_ERR);
    ck_assert_int_eq(mg_multipart_rewrite(body, len, &m, NULL, &out), MG_ERR);
    ck_assert_int_eq(mg_multipart_rewrite(body, len, &m, "a\r\nb", &out), MG_ERR);
    ck_assert_int_eq(mg_multipart_rewrite(body, len, &m, "a\nb", &out), MG_ERR);
    bad = (struct mg_multipart_part){len - 2, 3};
    ck_assert_int_eq(mg_multipart_rewrite(body, len, &bad, "x", &out), MG_ERR);
    bad = (struct mg_multipart_part){len + 1, 0};
    ck_assert_int_eq(mg_multipart_rewrite(body, len, &bad, "x", &out), MG_ERR);
    bad = (struct mg_multipart_part){1, SIZE_MAX};
    ck_assert_int_eq(mg_multipart_rewrite(body, len, &bad, "x", &out), MG_ERR);
    ck_assert_uint_eq(out.len, 0);
    mg_buf_deinit(&out);
}
END_TEST

/* Every prefix of a good body is refused (no close delimiter) without reading past it. */
START_TEST(every_truncation)
{
    size_t n, i, blen;
    char *in = slurp("binary-boundary-like", ".in.http", &n), *nl = memchr(in, '\n', n), *cut;
    const char *why;

    *nl = '\0';
    blen = n - (size_t)(nl + 1 - in);
    for (i = 0; i < blen; i++) {
        /* an exact-size copy, so that valgrind sees a read past it */
        cut = mg_malloc(i + 1);
        memcpy(cut, nl + 1, i);
        why = NULL;
        ck_assert_msg(read_model(in, i > 0 ? cut : NULL, i, &why) == MG_ERR
                      || i >= blen - 2, "prefix %zu accepted", i);
        free(cut);
    }
    free(in);
}
END_TEST

/* Each byte of a good body changed to each of the bytes that matter: no crash, a sane answer. */
START_TEST(every_mutation)
{
    static const char set[] = "\r\n-\"\\;=: b\0m";
    size_t n, i, k, blen;
    char *in = slurp("python-sdk-transcription", ".in.http", &n), *nl = memchr(in, '\n', n), *b;
    struct mg_multipart_part m;
    const char *why;

    *nl = '\0';
    b = nl + 1;
    blen = n - (size_t)(b - in);
    for (i = 0; i < blen; i += (i < 400 || i > blen - 200) ? 1 : 37) {
        char keep = b[i];
        for (k = 0; k < sizeof(set) - 1; k++) {
            b[i] = set[k];
            why = NULL;
            if (mg_multipart_model(in, b, blen, &m, &why) == MG_OK) {
                ck_assert_uint_ge(m.len, 1);
                ck_assert_uint_le(m.off + m.len, blen);
                ck_assert_ptr_null(memchr(b + m.off, '\n', m.len));
            } else {
                ck_assert_ptr_nonnull(why);
            }
        }
        b[i] = keep;
    }
    free(in);
}
END_TEST

Suite *
multipart_suite(void)
{
    Suite *s = suite_create("multipart");
    TCase *t = tcase_create("multipart");

    tcase_add_test(t, golden_bodies);
    tcase_add_test(t, null_and_types);
    tcase_add_test(t, model_caps);
    tcase_add_test(t, part_count_bounded);
    tcase_add_test(t, headers_capped);
    tcase_add_test(t, rewrite_edges);
    tcase_add_test(t, every_truncation);
    tcase_add_test(t, every_mutation);
    suite_add_tcase(s, t);
    return s;
}
