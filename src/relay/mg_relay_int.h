/*
 * mg_relay_int — what the files of the relay share. Not a public header.
 */
#ifndef MG_RELAY_INT_H
#define MG_RELAY_INT_H

#include <stddef.h>

/*
 * The message of the backend's error event p[0..n) into msg[0..len) (NUL-terminated, cut to
 * fit): error.message, or message, or a word of ours. Returns its length.
 */
size_t mg_relay_event_error(const char *p, size_t n, char *msg, size_t len);

#endif
