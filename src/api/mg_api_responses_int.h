/*
 * mg_api_responses_int — what the two files of the Responses API share (mg_api_responses.c: its
 * rules and its chat hub; mg_api_responses_native.c: native answers and the conversation a
 * request continues). Not a public header.
 */
#ifndef MG_API_RESPONSES_INT_H
#define MG_API_RESPONSES_INT_H

#include <stddef.h>

#include <jansson.h>

struct mg_buf;
struct mg_chatreq_err;
struct mg_hub_env;
struct mg_relay;
struct mg_resp_store;

/* The error event's fields after "type" (flat for openai-node, nested for openai-python). */
void mg_api_responses_error_fields(struct mg_buf *out, const char *why, size_t n);

/* The API's relay op: its own stage on a native answer (see mg_api_types.h). */
void mg_api_responses_relay(struct mg_relay *r, const struct mg_hub_env *env,
                            const char *backend);

/* A stored Response of key's, parsed: its history (the chain's items) or the Response; NULL. */
json_t *mg_api_responses_stored(struct mg_resp_store *store, const char *key, const char *id,
                                int history);

/* The item msg_mg<hex>_<n> / fc_mg<hex>_<n> of a stored Response of key's (a new reference). */
json_t *mg_api_responses_stored_item(struct mg_resp_store *store, const char *key,
                                     const char *id);

/* The API's previous op: the request's previous_response_id into id; 1 when it has one. */
int mg_api_responses_previous(const char *body, size_t len, char *id, size_t size);

/* The API's native_request op: a stored chain made the input of a native entry's request. */
int mg_api_responses_native_request(const struct mg_hub_env *env, const char *body, size_t len,
                                    struct mg_buf *out, struct mg_chatreq_err *e);

#endif
