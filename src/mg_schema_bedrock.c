/*
 * mg_schema_bedrock — Amazon Bedrock Converse (placeholder until wired).
 */
#include <string.h>

#include "mg_conf.h"
#include "mg_relay.h"
#include "mg_schema.h"

static int
bedrock_serves(const char *upath)
{
    return strcmp(upath, "/chat/completions") == 0;
}

static int
bedrock_build(const struct mg_client_req *rq, const struct mg_backend *b,
              const struct mg_rule_backend *e, struct mg_upreq *up)
{
    return MG_ERR;
}

const struct mg_schema mg_schema_bedrock = {
    .name = "bedrock",
    .serves = bedrock_serves,
    .build = bedrock_build,
    .classify = mg_schema_classify_status,
    .relay = mg_schema_openai_relay,
    .error_body = mg_schema_pass_error,
};
