/*
 * mg_aws_cred — AWS credentials for `bedrock` backends, as a credential source (mg_cred):
 * the default chain, and STS AssumeRole on top of it.
 *
 * The chain, in order; the first source that is configured answers (a configured source that
 * fails is the fetch's error; the next sources are not tried, as AWS's SDKs do):
 *   1. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN;
 *   2. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (AWS_ROLE_SESSION_NAME) -> STS
 *      AssumeRoleWithWebIdentity (unsigned);
 *   3. the shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and AWS_CONFIG_FILE
 *      (~/.aws/config), profile AWS_PROFILE (default "default"): static keys, or a role_arn
 *      assumed with its source_profile's static keys or its credential_source;
 *   4. container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on 169.254.170.2) or
 *      _FULL_URI (https, or http to a loopback or the ECS/EKS agent address), with
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or _TOKEN as its Authorization;
 *   5. EC2 instance metadata, IMDSv2: PUT a session token, GET the role name, GET its
 *      credentials (AWS_EC2_METADATA_SERVICE_ENDPOINT; AWS_EC2_METADATA_DISABLED=true skips it).
 * STS is https://sts.{region}.amazonaws.com unless AWS_ENDPOINT_URL_STS says otherwise.
 */
#ifndef MG_AWS_CRED_H
#define MG_AWS_CRED_H

#include <stddef.h>

#include "mg_cred.h"

/* A bedrock backend's credential config: the source's argument (owned by it once handed over). */
struct mg_aws_cred_conf {
    char *region;        /* the backend's: STS's region and the SigV4 scope of AssumeRole */
    char *role_arn;      /* aws_role_arn, or NULL */
    char *key_id;        /* static keys under the role (aws_access_key_id...), or NULL: */
    char *secret;        /*   the default chain */
    char *token;
};

/* The source: arg is a struct mg_aws_cred_conf (freed by its free). */
extern const struct mg_cred_source_ops mg_aws_cred_ops;

/* A new conf with copies of the strings (any may be NULL). */
struct mg_aws_cred_conf *mg_aws_cred_conf_create(const char *region, const char *role_arn,
                                                 const char *key_id, const char *secret,
                                                 const char *token);

/* The default chain, once (blocking). MG_OK with *out, or MG_ERR with why in err. */
int mg_aws_chain(const char *region, struct mg_cred **out, char *err, size_t errlen);

/*
 * STS: the credentials of an AssumeRole or AssumeRoleWithWebIdentity answer (its XML), or its
 * error's code and message in err. MG_OK or MG_ERR. Pure.
 */
int mg_aws_sts_parse(const char *xml, long status, struct mg_cred **out, char *err,
                     size_t errlen);

/* STS AssumeRole of role_arn, signed with base (blocking). MG_OK with *out, or MG_ERR. */
int mg_aws_assume_role(const char *region, const char *role_arn, const struct mg_cred *base,
                       struct mg_cred **out, char *err, size_t errlen);
/* The same with a session name of the caller's. */
int mg_aws_assume_role_as(const char *region, const char *role_arn, const char *session,
                          const struct mg_cred *base, struct mg_cred **out, char *err,
                          size_t errlen);

/* STS AssumeRoleWithWebIdentity (blocking, unsigned). */
int mg_aws_assume_web_identity(const char *region, const char *role_arn, const char *session,
                               const char *token, struct mg_cred **out, char *err,
                               size_t errlen);

/*
 * An AWS credentials JSON document (container endpoint, instance metadata): AccessKeyId,
 * SecretAccessKey, Token, Expiration. MG_OK or MG_ERR. Pure.
 */
int mg_aws_cred_json(const char *text, struct mg_cred **out, char *err, size_t errlen);

/* What the shared files say of one profile; every field NULL or a string of its own. */
struct mg_aws_profile {
    char *key_id, *secret, *token;       /* static keys */
    char *role_arn;                      /* a role profile: assumed with STS AssumeRole */
    char *source_profile;                /*   with this profile's static keys, */
    char *credential_source;             /*   or Environment / Ec2InstanceMetadata / EcsContainer */
    char *session;                       /* role_session_name */
    char *region;                        /* STS's region for the role */
};

/*
 * One profile from the text of a shared credentials file (section "[name]") or a config file
 * (config = 1: "[profile name]", "[default]"): fills the fields of out that are still NULL. Pure.
 */
void mg_aws_ini_profile(const char *text, const char *profile, int config,
                        struct mg_aws_profile *out);
/* Frees the fields (secrets wiped) and empties it. */
void mg_aws_profile_deinit(struct mg_aws_profile *p);

/* "https://host:port/prefix" -> host (with its port, as sent in Host) and the path after it. */
int mg_aws_split_url(const char *url, char *host, size_t hostlen, const char **path);

#endif
