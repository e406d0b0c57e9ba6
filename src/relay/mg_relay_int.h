/*
 * mg_relay_int — what the files of the relay share. Not a public header.
 */
#ifndef MG_RELAY_INT_H
#define MG_RELAY_INT_H

#include <stddef.h>

#include "mg_relay.h"

/*
 * The backend's error event p[0..n) breaks the answer (mg_relay_fail) with its message:
 * error.message, or message, or a word of ours.
 */
void mg_relay_fail_from_event(struct mg_relay *r, const char *p, size_t n);

#endif
