/*
 * mg_harness — the processes of an integration suite: build/fakeai instances on loopback and one
 * build/modelgate in front of them, started in a suite's unchecked fixture and stopped at its end.
 * Logs go to the working directory (never a shared /tmp name: suites of other checkouts may run
 * at the same time).
 */
#ifndef MG_HARNESS_H
#define MG_HARNESS_H

#include <sys/types.h>

#define MG_HARNESS_FAKES 12

struct mg_harness {
    int         nfake;
    int         fake_port[MG_HARNESS_FAKES];
    pid_t       fake_pid[MG_HARNESS_FAKES];
    const char *fake_name[MG_HARNESS_FAKES];
    int         gw_port;                    /* chosen by mg_harness_init, for the config */
    pid_t       gw_pid;
    char        gw_log[64];
    char        fake_log[64];
    const char *conf_path;
    char        url[256];
};

/* No process yet; the gateway's port is chosen. gw_log and fake_log name the logs. */
void mg_harness_init(struct mg_harness *h, const char *gw_log, const char *fake_log);

/*
 * Starts build/fakeai --port <free port> --name name [extra...] (extra NULL-terminated, or NULL)
 * and returns its index in fake_port/fake_pid. mg_harness_start waits for it.
 */
int mg_harness_fake(struct mg_harness *h, const char *name, char *const *extra);

/*
 * Writes conf to a temporary file (mg_test_write_temp's slot), waits for every fake, starts
 * build/modelgate -c conf with its log emptied first, and waits until it accepts on gw_port. A
 * process that does not come up fails the fixture.
 */
void mg_harness_start(struct mg_harness *h, int slot, const char *conf);

/*
 * Stops the gateway, then the fakes, and removes the config. A gateway that did not exit with 0
 * fails the run (exit 1), named by what: it must stop cleanly.
 */
void mg_harness_stop(struct mg_harness *h, const char *what);

/* "http://127.0.0.1:<gw_port><path>", in h (valid until the next call). */
const char *mg_harness_url(struct mg_harness *h, const char *path);

#endif
