/*
 * mg_failover — same-backend retry and context-length decisions.
 */
#include <string.h>
#include <strings.h>

#include "mg_outcome.h"
#include "mg_conf_types.h"
#include "mg_failover.h"

/*
 * How providers say a request is too long for the model (matched case-insensitively anywhere in
 * a 400's body). Only wordings that cannot describe anything else: a content-policy 400 must
 * never be resent elsewhere.
 */
static const char *const context_words[] = {
    "context_length_exceeded",          /* OpenAI, Azure, Groq, Together: the error code */
    "maximum context length",           /* OpenAI, Azure, vLLM, Mistral: "This model's maximum
                                           context length is 8192 tokens" */
    "context length exceeded",
    "context window exceeded",
    "context_window_exceeded",
    "exceeds the context window",
    "exceed context limit",             /* Anthropic: "input length and max_tokens exceed
                                           context limit" */
    "prompt is too long",               /* Anthropic */
    "exceeds the available context size",   /* llama.cpp server */
    "exceed_context_size_error",        /* llama.cpp server: the error type */
    "context size has been exceeded",   /* llama.cpp, older */
    "input is too long for requested model",   /* Bedrock */
    "too many input tokens",            /* Bedrock */
    "maximum number of tokens",         /* "exceeds the model's maximum number of tokens" */
    "reduce the length of the messages",    /* OpenAI, older */
};

int
mg_failover_context_length(const char *body, size_t len)
{
    char low[4096];
    size_t i, n = len < sizeof(low) - 1 ? len : sizeof(low) - 1;

    for (i = 0; i < n; i++) {
        char c = body[i];
        low[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    low[n] = '\0';
    for (i = 0; i < MG_ARRAY_LEN(context_words); i++) {
        if (memmem(low, n, context_words[i], strlen(context_words[i])) != NULL) {
            return 1;
        }
    }
    return 0;
}

/* A connection closed or reset before commit (not one that could not be made at all). */
static int
closed_or_reset(CURLcode rc)
{
    return rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
           rc == CURLE_PARTIAL_FILE || rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM;
}

int64_t
mg_failover_retry_delay(const struct mg_rule *rule, const struct mg_failure *f, uint64_t *rng)
{
    long s = f->status;

    if (!rule->retry_same) {
        return -1;
    }
    if (f->outcome == MG_OUTCOME_FAIL_STATUS) {
        if (s == 500 || s == 502 || s == 504) {
            return 200 + (int64_t)(mg_rand_next(rng) % 301);
        }
        if ((s == 429 || s == 503 || s == 529) && f->retry_after_s >= 0 &&
            f->retry_after_s * 1000 <= rule->retry_after_max_ms &&
            f->retry_after_s * 1000 <= f->total_ms) {
            return f->retry_after_s * 1000;
        }
        return -1;
    }
    /* a stream that ended before any event is a failure like a 502 (the contract's words) */
    if ((f->outcome == MG_OUTCOME_FAIL_ERROR && closed_or_reset(f->rc)) ||
        f->outcome == MG_OUTCOME_FAIL_EMPTY) {
        return 200 + (int64_t)(mg_rand_next(rng) % 301);
    }
    return -1;
}
