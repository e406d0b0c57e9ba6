/*
 * mg_harness — fakeai instances and a modelgate for the integration suites (see mg_harness.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mg_harness.h"
#include "mg_test.h"

void
mg_harness_init(struct mg_harness *h, const char *gw_log, const char *fake_log)
{
    memset(h, 0, sizeof(*h));
    snprintf(h->gw_log, sizeof(h->gw_log), "%s", gw_log);
    snprintf(h->fake_log, sizeof(h->fake_log), "%s", fake_log);
    h->gw_port = mg_test_free_port();
}

int
mg_harness_fake(struct mg_harness *h, const char *name, char *const *extra)
{
    char bin[256], port[16];
    char *argv[16];
    int n = 0, i = h->nfake;

    ck_assert_int_lt(i, MG_HARNESS_FAKES);
    h->fake_port[i] = mg_test_free_port();
    h->fake_name[i] = name;
    snprintf(port, sizeof(port), "%d", h->fake_port[i]);
    snprintf(bin, sizeof(bin), "%s/fakeai", mg_test_build_dir());
    argv[n++] = bin;
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--name";
    argv[n++] = (char *)name;
    for (; extra != NULL && *extra != NULL && n < 15; extra++) {
        argv[n++] = *extra;
    }
    argv[n] = NULL;
    h->fake_pid[i] = mg_test_spawn(argv, h->fake_log);
    h->nfake++;
    return i;
}

void
mg_harness_start(struct mg_harness *h, int slot, const char *conf)
{
    char bin[256];
    char *argv[] = {bin, "-c", NULL, NULL};
    int i;

    h->conf_path = mg_test_write_temp(slot, conf);
    ck_assert_ptr_nonnull(h->conf_path);
    for (i = 0; i < h->nfake; i++) {
        ck_assert_msg(mg_test_wait_port(h->fake_port[i], 5000) == 0, "fakeai %s did not start",
                      h->fake_name[i]);
    }
    snprintf(bin, sizeof(bin), "%s/modelgate", mg_test_build_dir());
    argv[2] = (char *)h->conf_path;
    unlink(h->gw_log);
    h->gw_pid = mg_test_spawn(argv, h->gw_log);
    ck_assert_msg(mg_test_wait_port(h->gw_port, 10000) == 0, "modelgate did not start");
}

void
mg_harness_stop(struct mg_harness *h, const char *what)
{
    int i, rc = mg_test_stop(h->gw_pid, 15000);

    for (i = 0; i < h->nfake; i++) {
        mg_test_stop(h->fake_pid[i], 5000);
    }
    if (h->conf_path != NULL) {
        unlink(h->conf_path);
    }
    if (rc != 0) {
        fprintf(stderr, "%s exited with %d (see %s)\n", what, rc, h->gw_log);
        exit(1);   /* makes the runner fail: the gateway must stop cleanly with 0 */
    }
}

const char *
mg_harness_url(struct mg_harness *h, const char *path)
{
    snprintf(h->url, sizeof(h->url), "http://127.0.0.1:%d%s", h->gw_port, path);
    return h->url;
}
