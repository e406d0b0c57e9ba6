/*
 * soak — N requests, C at a time, of a mix: plain chat completions, streams, clients that leave
 * mid-stream, and requests whose first backend fails (fail-over). Counts what came back.
 *
 *   soak URL N C
 *
 * Request i is: i % 20 == 0 a client that aborts after its first stream bytes, i % 20 == 1 a
 * request for "m-fail" (a rule whose first backend answers 500), i % 4 == 2 a stream, else plain.
 * Prints one line: sent=, ok=, aborted=, failed_over=, errors=, and the statuses seen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "bench_curl.h"

struct req {
    CURL  *e;
    long   index;
    int    abort_after_data;
    size_t got;
};

static size_t
on_data(char *d, size_t s, size_t n, void *arg)
{
    struct req *r = arg;

    r->got += s * n;
    return r->abort_after_data ? 0 : s * n;   /* 0: the client leaves mid-answer */
}

static void
setup(struct req *r, const char *url, long i, struct curl_slist *h)
{
    static const char *plain = "{\"model\":\"m-ok\",\"messages\":[]}";
    static const char *stream = "{\"model\":\"m-ok\",\"stream\":true,\"messages\":[]}";
    static const char *fail = "{\"model\":\"m-fail\",\"messages\":[]}";
    const char *body = i % 20 == 1 ? fail : (i % 4 == 2 || i % 20 == 0) ? stream : plain;

    r->index = i;
    r->got = 0;
    r->abort_after_data = i % 20 == 0;
    curl_easy_reset(r->e);
    MG_BENCH_SETOPT(r->e, CURLOPT_URL, url);
    MG_BENCH_SETOPT(r->e, CURLOPT_POSTFIELDS, body);
    MG_BENCH_SETOPT(r->e, CURLOPT_HTTPHEADER, h);
    MG_BENCH_SETOPT(r->e, CURLOPT_WRITEFUNCTION, on_data);
    MG_BENCH_SETOPT(r->e, CURLOPT_WRITEDATA, r);
    MG_BENCH_SETOPT(r->e, CURLOPT_PRIVATE, r);
    MG_BENCH_SETOPT(r->e, CURLOPT_TIMEOUT, 30L);
}

int
main(int argc, char **argv)
{
    long n, c, next = 0, done = 0, ok = 0, aborted = 0, fo = 0, errors = 0, codes[600] = {0};
    struct curl_slist *h = NULL;
    struct req *reqs;
    CURLM *m;
    int running, i;

    if (argc != 4) {
        fprintf(stderr, "usage: soak URL N C\n");
        return 2;
    }
    n = strtol(argv[2], NULL, 10);
    c = strtol(argv[3], NULL, 10);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "x-fake-chunks: 5");
    m = curl_multi_init();
    reqs = calloc((size_t)c, sizeof(*reqs));
    for (i = 0; i < c && next < n; i++) {
        reqs[i].e = curl_easy_init();
        setup(&reqs[i], argv[1], next++, h);
        curl_multi_add_handle(m, reqs[i].e);
    }
    while (done < n) {
        CURLMsg *msg;
        int left;
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 100, NULL);
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            struct req *r;
            long status = 0;
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            if (r->abort_after_data) {
                aborted++;
            } else if (msg->data.result == CURLE_OK && status == 200) {
                ok++;
                fo += r->index % 20 == 1;
            } else {
                errors++;
            }
            if (status >= 0 && status < 600) {
                codes[status]++;
            }
            done++;
            curl_multi_remove_handle(m, r->e);
            if (next < n) {
                setup(r, argv[1], next++, h);
                curl_multi_add_handle(m, r->e);
            }
        }
    }
    printf("sent=%ld ok=%ld aborted=%ld failed_over=%ld errors=%ld statuses:", n, ok, aborted, fo,
           errors);
    for (i = 0; i < 600; i++) {
        if (codes[i] > 0) {
            printf(" %d=%ld", i, codes[i]);
        }
    }
    printf("\n");
    for (i = 0; i < c; i++) {
        if (reqs[i].e != NULL) {
            curl_easy_cleanup(reqs[i].e);
        }
    }
    free(reqs);
    curl_slist_free_all(h);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return errors == 0 ? 0 : 1;
}
