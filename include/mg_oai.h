/*
 * mg_oai — what the translating backends (anthropic, bedrock) write back to OpenAI clients:
 * chat.completion answers, chat.completion.chunk stream events, the error shapes, and the state a
 * translated stream shares with the relay (commit point, finish, usage, error).
 *
 * Chunks are written by hand into the caller's capped buffer (no JSON tree per chunk): the part
 * every chunk shares ("data: {id, object, created, model, choices:") is built once per stream.
 */
#ifndef MG_OAI_H
#define MG_OAI_H

#include <stddef.h>
#include <stdint.h>

#include "mg_usage.h"
#include "mg_util.h"

/*
 * Returned by a stream translator when the stream cannot go on: the backend sent an error event
 * (or exception), or an event that cannot be read. The reason is in mg_oai_stream.error. Before
 * commit (state->output == 0) that is a failed attempt; after it, the relay appends
 * mg_oai_error_event() and ends the response without [DONE].
 */
#define MG_OAI_ESTREAM -30

#define MG_OAI_MAX_BLOCKS 4096   /* content blocks of one streamed message */

/* Token counts as the providers report them; -1 when not reported. */
struct mg_oai_usage {
    int64_t input;         /* input tokens not read from or written to the cache */
    int64_t output;
    int64_t cache_read;
    int64_t cache_write;
    int64_t reasoning;     /* of output: thinking tokens (Gemini's thoughtsTokenCount) */
};

/*
 * A translated stream as the relay sees it. The translators update it; the relay only reads the
 * flags and calls mg_oai_stream_end(). Embedded in each translator's stream object.
 */
struct mg_oai_stream {
    struct mg_buf       head;          /* `data: {"id":…,"created":…,"model":…,"choices":` */
    char               *model;         /* the client's model name */
    char               *fallback_id;   /* used when the provider gives the stream no id */
    int64_t             created;
    int                 include_usage; /* the client asked for stream_options.include_usage */
    int                 started;       /* the role chunk has been written */
    int                 output;        /* a chunk that carries output has been written: commit */
    int                 finished;      /* the finish_reason chunk has been written */
    int                 done;          /* data: [DONE] has been written */
    int                 failed;        /* an error (event or unreadable one) ended the stream */
    int                 tools;         /* tool calls started so far: the next one's index */
    int                *tool_of;       /* provider's content block index -> tool call, or -1 */
    size_t              nblocks;
    struct mg_oai_usage usage;         /* the last value of each field wins */
    char                error[256];    /* why it failed: the backend's message, or ours */
};

/* Sets the usage counts to "not reported". */
void mg_oai_usage_init(struct mg_oai_usage *u);
/* prompt_tokens (input with cache reads and writes) and completion_tokens, for accounting. */
void mg_oai_usage_totals(const struct mg_oai_usage *u, struct mg_usage *out);

/*
 * Sets up a stream for the client's model name, created = now, and whether the client asked for
 * a usage chunk. fallback_id (may be NULL: "chatcmpl-modelgate") is the id when the provider
 * gives none. Free with mg_oai_stream_deinit().
 */
void mg_oai_stream_init(struct mg_oai_stream *st, const char *model, int64_t now,
                        int include_usage, const char *fallback_id);
/* Frees what the stream holds. */
void mg_oai_stream_deinit(struct mg_oai_stream *st);
/* Records why the stream failed (msg, n bytes, truncated to fit); returns MG_OAI_ESTREAM. */
int mg_oai_stream_fail(struct mg_oai_stream *st, const char *msg, size_t n);

/*
 * Writes the role chunk (first chunk, delta.role "assistant") with the given stream id (NULL or
 * empty: the fallback id). Every writer below starts the stream this way when it was not yet.
 */
int mg_oai_stream_start(struct mg_oai_stream *st, const char *id, size_t id_len,
                        struct mg_buf *out);
/* A delta.content chunk; nothing for empty text. */
int mg_oai_stream_content(struct mg_oai_stream *st, const char *text, size_t n,
                          struct mg_buf *out);
/*
 * A tool call's start, for the provider's content block number block (which counts text blocks
 * too): {index: st->tools, id, type, function:{name, arguments:""}}, then tools++. Blocks past
 * MG_OAI_MAX_BLOCKS fail the stream (MG_OAI_ESTREAM).
 */
int mg_oai_stream_tool_start(struct mg_oai_stream *st, int64_t block, const char *id,
                             size_t id_len, const char *name, size_t name_len, struct mg_buf *out);
/*
 * An argument fragment for the tool call started in content block block; nothing for an empty
 * fragment; MG_OAI_ESTREAM when no tool call started in that block.
 */
int mg_oai_stream_tool_args(struct mg_oai_stream *st, int64_t block, const char *frag, size_t n,
                            struct mg_buf *out);
/* The last chunk of choice 0, with finish_reason ("stop", "length", "tool_calls", …). */
int mg_oai_stream_finish(struct mg_oai_stream *st, const char *reason, struct mg_buf *out);
/*
 * Ends a stream whose finish was written: the usage chunk (empty choices) when the client asked
 * for it, then data: [DONE]. Also what the relay calls for a stream cut after its finish.
 * Nothing when already done; MG_ERR (nothing written) when the finish was not written.
 */
int mg_oai_stream_end(struct mg_oai_stream *st, struct mg_buf *out);

/*
 * The event that ends a chat stream broken after commit (never followed by [DONE]):
 * data: {"error":{"message":msg,"type":"upstream_error","param":null,
 *                  "code":"upstream_stream_error"}}
 */
int mg_oai_error_event(const char *msg, size_t n, struct mg_buf *out);

/* OpenAI's error body {"error":{"message","type","param":null,"code":null}}. */
int mg_oai_error_body(const char *type, const char *msg, size_t n, struct mg_buf *out);

/* The usage object of an answer or chunk: prompt, completion, total and cached tokens,
 * prompt_tokens_details.cache_creation_tokens when the backend reported cache writes, and
 * completion_tokens_details.reasoning_tokens when it reported reasoning tokens. */
int mg_oai_usage_json(const struct mg_oai_usage *u, struct mg_buf *out);

/* One tool call of an answer (arguments: the tool input, as JSON text). */
struct mg_oai_tool_call {
    const char *id;
    const char *name;
    char       *arguments;
};

/* A whole chat.completion answer with one choice. */
struct mg_oai_answer {
    const char                    *id;
    int64_t                        created;
    const char                    *model;        /* the client's model name */
    const char                    *content;      /* text blocks joined; NULL when there is none */
    size_t                         content_len;
    const struct mg_oai_tool_call *calls;
    size_t                         ncalls;
    const char                    *finish_reason;
    struct mg_oai_usage            usage;
};

/* Writes a chat.completion JSON answer. */
int mg_oai_answer_write(const struct mg_oai_answer *a, struct mg_buf *out);

/*
 * A chat answer kept as the structure it was written from (its own copies), for a client API's
 * hub that would otherwise read the text just written again (docs/benchmarks.md, issue 21).
 */
struct mg_oai_kept {
    int                      have;
    char                    *content;        /* NULL when the answer has no text */
    size_t                   content_len;
    struct mg_oai_tool_call *calls;          /* id, name and arguments owned */
    size_t                   ncalls;
    char                     finish_reason[32];
    struct mg_oai_usage      usage;
};

/* Keeps a copy of a in k (what k held before is freed). */
void mg_oai_kept_set(struct mg_oai_kept *k, const struct mg_oai_answer *a);
/* Frees what k holds; k is then empty. */
void mg_oai_kept_deinit(struct mg_oai_kept *k);

#endif
