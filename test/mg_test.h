/*
 * mg_test — helpers shared by the Check suites: processes, free ports, a small HTTP client.
 */
#ifndef MG_TEST_H
#define MG_TEST_H

#include <check.h>
#include <stddef.h>
#include <sys/types.h>

#include "mg_util.h"

Suite *util_suite(void);
Suite *conf_suite(void);
Suite *json_suite(void);
Suite *router_suite(void);
Suite *balancer_suite(void);
Suite *models_suite(void);
Suite *usage_suite(void);
Suite *stats_suite(void);
Suite *proxy_suite(void);
Suite *wire_suite(void);
Suite *sigv4_suite(void);
Suite *evstream_suite(void);
Suite *translate_suite(void);
Suite *health_suite(void);
Suite *limit_suite(void);
Suite *hdr_suite(void);
Suite *auth_suite(void);
Suite *providers_suite(void);
Suite *integration_suite(void);
Suite *failover_suite(void);
Suite *front_suite(void);
Suite *h1_suite(void);
Suite *lifecycle_suite(void);
Suite *runtime_suite(void);

/* Directory of the binaries under test ($MG_BUILD, default "build"). */
const char *mg_test_build_dir(void);
/* Multiplier for waits ($MG_TIME_SCALE, default 1; sanitizer builds run slower). */
int mg_test_scale(void);

/*
 * A test that cannot run says why (printf-style) and returns: the line is also kept in the run's
 * directory, and the runner repeats every such line as "SKIPPED: ..." just before Check's summary.
 */
void mg_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the SKIPPED lines the run's tests left (the runner, before its summary). */
void mg_test_print_skipped(void);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int mg_test_free_port(void);
/* Starts argv[0] with argv, stdout+stderr to logfile (or inherited when NULL). Returns its pid. */
pid_t mg_test_spawn(char *const argv[], const char *logfile);
/* Waits until something accepts on 127.0.0.1:port. 0 when it did within timeout_ms. */
int mg_test_wait_port(int port, int timeout_ms);
/* SIGTERM, then waits up to timeout_ms (SIGKILL after). Returns the exit status, or -1. */
int mg_test_stop(pid_t pid, int timeout_ms);

struct mg_test_resp {
    long          status;
    int           curl_rc;      /* CURLcode of the transfer */
    struct mg_buf headers;
    struct mg_buf body;
    double        t_first_ms;   /* first body byte, from the start */
    double        t_total_ms;
};

/*
 * One HTTP request with libcurl. method "GET" or "POST"; body may be NULL; headers is a
 * NULL-terminated list of "Name: value" lines or NULL. The response is in r (free it with
 * mg_test_resp_free()). Returns the CURLcode.
 */
int mg_test_http(const char *method, const char *url, const char *body, size_t body_len,
                 const char *const *headers, struct mg_test_resp *r);
void mg_test_resp_free(struct mg_test_resp *r);
/* Value of a response header (case-insensitive name), copied into buf; NULL when absent. */
const char *mg_test_header(const struct mg_test_resp *r, const char *name, char *buf, size_t len);

/*
 * mg_test_header() into one of four rotating static buffers (1 KiB each): up to four values may
 * be used at once, in one assertion. NULL when absent.
 */
const char *mg_test_hdr(const struct mg_test_resp *r, const char *name);

/* The response body parsed as JSON (a failed check when it is not). Free with json_decref. */
struct json_t *mg_test_body_json(const struct mg_test_resp *r);

/* Checks an OpenAI-shaped gateway error: status, JSON content type, code, message, type, param. */
void mg_test_assert_error(const struct mg_test_resp *r, long status, const char *code);

/* A counter of build/fakeai's GET /_fake/stats on port ("requests", "aborted", "active"). */
long mg_test_fake_stat(int port, const char *key);

/*
 * Sends req[0..len) on a new connection to 127.0.0.1:port and collects what comes back into out
 * until the server closes (returns 1) or timeout_ms passes (returns 0); -1 when it cannot send.
 */
int mg_test_raw(int port, const char *req, size_t len, int timeout_ms, struct mg_buf *out);

/* The value of one sample ("name{labels}") in Prometheus text, or -1 when it is absent. */
double mg_test_metric(const char *text, const char *series);

/* Writes text to a new temporary file; returns its path (static storage per call slot 0..7). */
const char *mg_test_write_temp(int slot, const char *text);

/*
 * A curl option a test client sets: a refusal stops the test process with the option's name (a
 * client missing an option would test something else; abort also works from the client threads).
 */
void mg_test_setopt_ok(int rc, const char *opt);
#define MG_TEST_SETOPT(e, opt, val) mg_test_setopt_ok((int)curl_easy_setopt(e, opt, val), #opt)

/* The whole file at path (NUL-terminated, *n its length; free it), or NULL when it is not there. */
char *mg_test_slurp(const char *path, size_t *n);

#endif
