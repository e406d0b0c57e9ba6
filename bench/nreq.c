/*
 * nreq — exactly N POSTs of BODYFILE to URL over one keep-alive connection (for instruction
 * counts, where a duration-based load generator would not give a fixed request count).
 *
 *   nreq URL BODYFILE N ["Header: value" ...]
 *   NREQ_INSECURE=1: an https:// URL's certificate is not checked (the bench's self-signed one)
 */
#include <stdio.h>
#include <stdlib.h>

#include <curl/curl.h>

#include "bench_curl.h"

static size_t
sink(char *d, size_t s, size_t n, void *arg)
{
    return s * n;
}

int
main(int argc, char **argv)
{
    struct curl_slist *h = NULL;
    char *body;
    long size, i, n, status, bad = 0;
    FILE *f;
    CURL *e;

    if (argc < 4) {
        fprintf(stderr, "usage: nreq URL BODYFILE N [\"Header: value\" ...]\n");
        return 2;
    }
    f = fopen(argv[2], "rb");
    if (f == NULL) {
        perror(argv[2]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    rewind(f);
    body = malloc((size_t)size);
    if (fread(body, 1, (size_t)size, f) != (size_t)size) {
        return 1;
    }
    fclose(f);
    n = strtol(argv[3], NULL, 10);
    e = curl_easy_init();
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    for (i = 4; i < argc; i++) {
        h = curl_slist_append(h, argv[i]);   /* e.g. the client key, an SDK's headers */
    }
    MG_BENCH_SETOPT(e, CURLOPT_URL, argv[1]);
    MG_BENCH_SETOPT(e, CURLOPT_HTTPHEADER, h);
    MG_BENCH_SETOPT(e, CURLOPT_POSTFIELDS, body);
    MG_BENCH_SETOPT(e, CURLOPT_POSTFIELDSIZE, size);
    MG_BENCH_SETOPT(e, CURLOPT_WRITEFUNCTION, sink);
    if (getenv("NREQ_INSECURE") != NULL) {   /* https:// to the bench's self-signed proxies */
        MG_BENCH_SETOPT(e, CURLOPT_SSL_VERIFYPEER, 0L);
        MG_BENCH_SETOPT(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    for (i = 0; i < n; i++) {
        if (curl_easy_perform(e) != CURLE_OK) {
            bad++;
            continue;
        }
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        bad += status != 200;
    }
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    free(body);
    printf("requests=%ld failed=%ld\n", n, bad);
    return bad != 0;
}
