/*
 * mg_failover — the proxy's next step after a failed attempt, as pure decisions: whether the same
 * backend gets one more try (and after how long), and whether a 400 is a context-length error
 * that another backend or model may still serve.
 */
#ifndef MG_FAILOVER_H
#define MG_FAILOVER_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

struct mg_rule;

/* What a failed attempt left, as the retry decision reads it. */
struct mg_failure {
    int      outcome;          /* enum mg_outcome */
    long     status;           /* the answer's status, 0 when none */
    int64_t  retry_after_s;    /* its Retry-After, -1 when none */
    CURLcode rc;               /* how the transfer ended */
    int64_t  total_ms;         /* the backend's total timeout */
};

/*
 * Milliseconds to wait before the one same-backend retry of this failure, or -1 for none:
 * 500/502/504 and a connection closed or reset before commit after a random 200-500 ms pause;
 * 429/503/529 after their Retry-After when it is at most the rule's retry_after_max and at most
 * total. Timeouts, error events and every other failure: none. retry_same: false: none.
 */
int64_t mg_failover_retry_delay(const struct mg_rule *rule, const struct mg_failure *f,
                                uint64_t *rng);

/*
 * 1 when a 400 answer's body says the context length (or the model's maximum number of tokens)
 * was exceeded, in the words of OpenAI, Azure, Anthropic, Bedrock, vLLM, llama.cpp, Ollama and
 * the other OpenAI-compatible servers (one table in mg_failover.c).
 */
int mg_failover_context_length(const char *body, size_t len);

#endif
