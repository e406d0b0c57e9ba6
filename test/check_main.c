/*
 * The test runner: every suite in one SRunner, so `make check` ends with one Check summary line.
 */
#include <curl/curl.h>
#include <stdlib.h>

#include "mg_test.h"

int
main(void)
{
    SRunner *sr;
    int failed;

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
    srunner_add_suite(sr, sigv4_suite());
    srunner_add_suite(sr, evstream_suite());
    srunner_add_suite(sr, translate_suite());
    srunner_add_suite(sr, health_suite());
    srunner_add_suite(sr, limit_suite());
    srunner_add_suite(sr, providers_suite());
    srunner_add_suite(sr, integration_suite());
    srunner_add_suite(sr, lifecycle_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
