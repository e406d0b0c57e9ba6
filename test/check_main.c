/*
 * The test runner: every suite in one SRunner, so `make check` ends with one Check summary line.
 */
#include <curl/curl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mg_test.h"

/* suites declared here rather than in mg_test.h (new suites only touch this file) */
Suite *messages_suite(void);
Suite *fakeai_suite(void);
Suite *responses_suite(void);
Suite *resp_store_suite(void);
Suite *multipart_suite(void);
Suite *cors_suite(void);
Suite *tls_suite(void);
Suite *hub_suite(void);
Suite *resume_suite(void);
Suite *trace_suite(void);
Suite *status_suite(void);
Suite *checks_suite(void);
Suite *shared_suite(void);
Suite *cred_suite(void);
Suite *cloudcred_suite(void);
Suite *spend_suite(void);

int
main(void)
{
    char dir[] = "/tmp/mgtest.XXXXXX", cmd[64], build[PATH_MAX], src[PATH_MAX];
    char link[PATH_MAX + 8], link2[PATH_MAX + 8];
    SRunner *sr;
    int failed;

    /* every file a suite writes goes into a directory of this run: runs never collide */
    if (realpath(getenv("MG_BUILD") ? getenv("MG_BUILD") : "build", build) == NULL) {
        perror("MG_BUILD");
        return EXIT_FAILURE;
    }
    setenv("MG_BUILD", build, 1);
    if (getcwd(src, sizeof(src)) == NULL || mkdtemp(dir) == NULL || chdir(dir) != 0) {
        perror("mgtest directory");
        return EXIT_FAILURE;
    }
    /* the suites that read the source tree (conf/, test/golden/) find it through links */
    snprintf(link, sizeof(link), "%s/conf", src);
    snprintf(link2, sizeof(link2), "%s/test", src);
    if (symlink(link, "conf") != 0 || symlink(link2, "test") != 0) {
        perror("mgtest links");
        return EXIT_FAILURE;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sr = srunner_create(util_suite());
    srunner_add_suite(sr, conf_suite());
    srunner_add_suite(sr, json_suite());
    srunner_add_suite(sr, router_suite());
    srunner_add_suite(sr, balancer_suite());
    srunner_add_suite(sr, models_suite());
    srunner_add_suite(sr, usage_suite());
    srunner_add_suite(sr, stats_suite());
    srunner_add_suite(sr, proxy_suite());
    srunner_add_suite(sr, wire_suite());
    srunner_add_suite(sr, sigv4_suite());
    srunner_add_suite(sr, evstream_suite());
    srunner_add_suite(sr, translate_suite());
    srunner_add_suite(sr, health_suite());
    srunner_add_suite(sr, limit_suite());
    srunner_add_suite(sr, hdr_suite());
    srunner_add_suite(sr, auth_suite());
    srunner_add_suite(sr, providers_suite());
    srunner_add_suite(sr, integration_suite());
    srunner_add_suite(sr, failover_suite());
    srunner_add_suite(sr, front_suite());
    srunner_add_suite(sr, h1_suite());
    srunner_add_suite(sr, lifecycle_suite());
    srunner_add_suite(sr, runtime_suite());
    srunner_add_suite(sr, messages_suite());
    srunner_add_suite(sr, fakeai_suite());
    srunner_add_suite(sr, responses_suite());
    srunner_add_suite(sr, resp_store_suite());
    srunner_add_suite(sr, multipart_suite());
    srunner_add_suite(sr, cors_suite());
    srunner_add_suite(sr, tls_suite());
    srunner_add_suite(sr, hub_suite());
    srunner_add_suite(sr, trace_suite());
    srunner_add_suite(sr, status_suite());
    srunner_add_suite(sr, resume_suite());
    srunner_add_suite(sr, checks_suite());
    srunner_add_suite(sr, shared_suite());
    srunner_add_suite(sr, cred_suite());
    srunner_add_suite(sr, cloudcred_suite());
    srunner_add_suite(sr, spend_suite());
    /* the suites run quietly; then the SKIPPED lines and Check's summary, in that order, so that
     * a test that could not run is named in the last lines (it passes as a check) */
    printf("Running every suite\n");
    fflush(stdout);
    srunner_run_all(sr, CK_SILENT);
    mg_test_print_skipped();
    fflush(stdout);
    srunner_print(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    /* a failure message names a log in this directory: keep it then, and say where it is,
     * after the summary */
    fflush(stdout);
    if (getenv("MG_TEST_KEEP") == NULL && failed == 0) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", dir);
        }
    } else {
        fprintf(stderr, "test files kept in %s\n", dir);
    }
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
