/*
 * bench_curl.h — the curl options a benchmark tool sets, checked: a refusal stops the tool with
 * the option's name (a tool that ran without one would measure something else).
 */
#ifndef MG_BENCH_CURL_H
#define MG_BENCH_CURL_H

#include <stdio.h>
#include <stdlib.h>

#include <curl/curl.h>

static inline void
mg_bench_easy_ok(CURLcode rc, const char *opt)
{
    if (rc != CURLE_OK) {
        fprintf(stderr, "curl_easy_setopt %s: %s\n", opt, curl_easy_strerror(rc));
        exit(1);
    }
}

static inline void
mg_bench_multi_ok(CURLMcode rc, const char *opt)
{
    if (rc != CURLM_OK) {
        fprintf(stderr, "curl_multi_setopt %s: %s\n", opt, curl_multi_strerror(rc));
        exit(1);
    }
}

#define MG_BENCH_SETOPT(e, opt, val)  mg_bench_easy_ok(curl_easy_setopt(e, opt, val), #opt)
#define MG_BENCH_MSETOPT(m, opt, val) mg_bench_multi_ok(curl_multi_setopt(m, opt, val), #opt)

#endif
