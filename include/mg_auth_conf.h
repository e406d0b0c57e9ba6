/*
 * mg_auth_conf — the `auth` block of the config file: client keys read, checked and hashed.
 *
 * A key's text lives only in the state as read, until the check has taken its digest; then it is
 * wiped. No message ever quotes a key's text: errors name the key by its name.
 */
#ifndef MG_AUTH_CONF_H
#define MG_AUTH_CONF_H

#include <stddef.h>

#include "mg_yaml.h"

struct mg_conf;

/* The block's state as read (opaque to the loader), empty. */
void *mg_auth_conf_create(void);

/* Setter of the `auth` block; dst is what mg_auth_conf_create() made. */
int mg_auth_conf_set(struct mg_yaml *y, yaml_node_t *node, void *dst);

/*
 * Phase three, called whether or not the file has the block (in: the state as read): names unique and well-formed, one key each, digests
 * unique, each key's limits; then conf->auth, keys and nkeys are set. Warnings (a short key) go
 * to y->warnings.
 */
void mg_auth_conf_check(struct mg_yaml *y, void *in, struct mg_conf *conf);

/* Frees the state as read, key texts wiped first. NULL is a no-op. */
void mg_auth_conf_free(void *in);

#endif
