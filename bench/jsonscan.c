/*
 * jsonscan — the request-body scan (mg_json_scan_request) alone, on bodies built here, so that
 * its cost per KiB can be read under callgrind without a gateway, a backend or a network:
 *
 *   jsonscan BODY [ITERATIONS]      BODY: chat1k | chat64k | members:N
 *
 * chat1k is a typical chat request (~1 KiB: system and user turns, sampling parameters,
 * stream_options); chat64k the same with many turns (tool calls, content parts, escapes, UTF-8)
 * up to ~64 KiB; members:N a top-level object of N members (the worst case of the top-level name
 * checks). It prints the body's size, the scan's answer and the wall time a scan;
 * bench/jsonscan-ir runs it under callgrind and prints instructions per KiB.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_json.h"
#include "mg_util.h"

static const char *const turns[] = {
    "{\"role\":\"user\",\"content\":\"Can you summarise the attached meeting notes? Keep it "
    "short: three bullet points at most, and name who owns each action item.\"}",
    "{\"role\":\"assistant\",\"content\":\"Sure. Here is the summary:\\n- Budget for Q3 is "
    "approved (owner: Ren\\u00e9e).\\n- The caf\xc3\xa9 vendor contract is renewed until "
    "March.\\n- Hiring: two backend engineers, interviews start next week (owner: Tom\\u00e1s)."
    "\"}",
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What does the chart in this "
    "image say about the \\\"north\\\" region?\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
    "\"https://example.com/charts/q2-sales.png\",\"detail\":\"low\"}}]}",
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_8Fq2\",\"type\":"
    "\"function\",\"function\":{\"name\":\"get_sales\",\"arguments\":\"{\\\"region\\\":\\\"north"
    "\\\",\\\"quarter\\\":2}\"}}]}",
    "{\"role\":\"tool\",\"tool_call_id\":\"call_8Fq2\",\"content\":\"{\\\"region\\\":"
    "\\\"north\\\",\\\"revenue\\\":1284000.5,\\\"growth\\\":-0.031,\\\"units\\\":[120,98,143]}\"}",
};

static const char head[] =
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a "
    "helpful assistant for the finance team. Answer in plain English, cite the figures you use, "
    "and say so when you are not sure.\"}";

static const char tail[] =
    "],\"temperature\":0.7,\"top_p\":1,\"max_tokens\":512,\"stream\":true,\"stream_options\":"
    "{\"include_usage\":true},\"user\":\"user-1234\",\"tools\":[{\"type\":\"function\","
    "\"function\":{\"name\":\"get_sales\",\"parameters\":{\"type\":\"object\",\"properties\":"
    "{\"region\":{\"type\":\"string\"},\"quarter\":{\"type\":\"integer\"}}}}}]}";

/* A chat body of at least target bytes (head, turns in rotation, tail). */
static void
chat_body(struct mg_buf *b, size_t target)
{
    size_t i = 0;

    if (mg_buf_adds(b, head) != MG_OK) {
        abort();
    }
    while (b->len + sizeof(tail) < target) {
        if (mg_buf_adds(b, ",") != MG_OK || mg_buf_adds(b, turns[i++ % 5]) != MG_OK) {
            abort();
        }
    }
    if (mg_buf_adds(b, tail) != MG_OK) {
        abort();
    }
}

/* {"model":"m","k0":0,"k1":1,...} with n members after model. */
static void
members_body(struct mg_buf *b, size_t n)
{
    size_t i;

    if (mg_buf_adds(b, "{\"model\":\"m\"") != MG_OK) {
        abort();
    }
    for (i = 0; i < n; i++) {
        if (mg_buf_printf(b, ",\"k%zu\":%zu", i, i) != MG_OK) {
            abort();
        }
    }
    if (mg_buf_adds(b, "}") != MG_OK) {
        abort();
    }
}

int
main(int argc, char **argv)
{
    struct mg_json_req r;
    struct mg_buf body;
    struct timespec t0, t1;
    char model[512];
    long iters = argc > 2 ? strtol(argv[2], NULL, 10) : 1000, i;
    int rc = 0;
    double ns;

    if (argc < 2 || iters < 1) {
        fprintf(stderr, "usage: jsonscan chat1k|chat64k|members:N [iterations]\n");
        return 2;
    }
    mg_buf_init(&body, (size_t)1 << 30);
    if (strcmp(argv[1], "chat1k") == 0) {
        chat_body(&body, 1024);
    } else if (strcmp(argv[1], "chat64k") == 0) {
        chat_body(&body, 64 * 1024);
    } else if (strncmp(argv[1], "members:", 8) == 0) {
        members_body(&body, (size_t)strtoul(argv[1] + 8, NULL, 10));
    } else {
        fprintf(stderr, "jsonscan: unknown body %s\n", argv[1]);
        return 2;
    }
    if (clock_gettime(CLOCK_MONOTONIC, &t0) != 0) {
        return 1;
    }
    for (i = 0; i < iters; i++) {
        rc = mg_json_scan_request(body.data, body.len, model, sizeof(model), &r);
    }
    if (clock_gettime(CLOCK_MONOTONIC, &t1) != 0) {
        return 1;
    }
    ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
         (double)iters;
    printf("body %s: %zu bytes, scan answer %d, %.0f ns a scan (%.1f ns/KiB), %ld scans\n",
           argv[1], body.len, rc, ns, ns * 1024.0 / (double)body.len, iters);
    mg_buf_deinit(&body);
    return 0;
}
