/*
 * mg_server — the process: worker threads (one event loop, one listener with SO_REUSEPORT and
 * one curl multi each), the config snapshot each worker serves, the runtime they share (state that
 * outlives snapshots, mg_runtime), signals and shutdown.
 */
#ifndef MG_SERVER_H
#define MG_SERVER_H

#include "mg_conf_types.h"

/* Reads conf (one reference taken), opens the listeners, runs until SIGTERM/SIGINT. Exit code. */
int mg_server_run(struct mg_conf *conf);

#endif
