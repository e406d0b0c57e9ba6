/*
 * fakeai_cloud — fakeai's cloud credential endpoints (test/fakeai_cloud.c says which), and the
 * credentials its Bedrock and Azure accept.
 */
#ifndef FAKEAI_CLOUD_H
#define FAKEAI_CLOUD_H

#include <stddef.h>

#include <event2/http.h>
#include <jansson.h>

/* --cred-ttl S, --cred-delay-ms N, --cred-fail-after N and --aws-cred AKID:SECRET: 0, or -1
 * when not one of them. */
int fake_cloud_option(const char *name, const char *arg);
/* Answers a credential endpoint's request (on base's loop, late with --cred-delay-ms): 1 when
 * it took it. */
struct event_base;
int fake_cloud_handle(struct event_base *base, struct evhttp_request *req);
/* The secret of an access key the fake accepts with that session token, or NULL with why. */
const char *fake_cloud_aws_secret(const char *akid, const char *token, const char **why);
/*
 * Checks the request's SigV4 signature (service, 5 minutes of skew, the signature recomputed
 * over what arrived with the secret of its key id). 0, or -1 with AWS's error type and message.
 */
int fake_sigv4_verify(struct evhttp_request *req, const char *body, size_t len,
                      const char *service, const char **type, const char **msg);
/* 1 when auth is "Bearer T" for a token the fake issued and that has not expired. */
int fake_cloud_bearer_ok(const char *auth);
/* Adds the credential counters to /_fake/stats. */
void fake_cloud_stats(json_t *j);

#endif
