/*
 * mg_chatreq — reads an OpenAI chat completions request for the translating backends.
 *
 * Anthropic Messages and Bedrock Converse take the same conversation in nearly the same shape
 * (system text apart, turns of {role, content:[blocks]} that alternate), and differ in the blocks.
 * So the walk over the messages is done once, here: it checks the request, joins the system and
 * developer texts, merges consecutive turns of one role (tool results are user turns), and asks
 * the schema's block builders (mg_chatreq_ops) for each block. The other parameters are checked
 * and handed over as plain values.
 */
#ifndef MG_CHATREQ_H
#define MG_CHATREQ_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_chatreq_json.h"
#include "mg_util.h"

#define MG_CHATREQ_EINVAL       -31  /* the request is wrong: 400 invalid_request_error */
#define MG_CHATREQ_EUNSUPPORTED -32  /* fine, but not for this schema: 400 unsupported_parameter */

/* Why a request was refused. */
struct mg_chatreq_err {
    char message[256];
    char param[96];       /* the parameter at fault ("n", "messages[2].content[0]"), or "" */
    const char *code;     /* a client API's own error code ("item_not_found"), or NULL */
};

/* An image part of a message. */
struct mg_chatreq_image {
    const char *where;       /* the part's place, "messages[1].content[0]", for error messages */
    const char *url;         /* image_url.url as the client sent it */
    int         is_data;     /* 1 for a base64 data: URL */
    const char *media_type;  /* data: only: "image/png", … (not NUL-terminated) */
    size_t      media_len;
    const char *data;        /* data: only: the base64 text */
    size_t      data_len;
};

/*
 * A schema's block builders. Each returns a new JSON block (a reference the caller owns). image
 * may refuse: it returns NULL and fills e (and *rc with MG_CHATREQ_EINVAL or _EUNSUPPORTED).
 */
struct mg_chatreq_ops {
    json_t *(*text)(const char *s, size_t n);
    json_t *(*image)(const struct mg_chatreq_image *img, struct mg_chatreq_err *e, int *rc);
    /* id, name: JSON strings; input: the parsed arguments (an object) */
    json_t *(*tool_use)(json_t *id, json_t *name, json_t *input);
    /* id: a JSON string; text: the tool message's text as a JSON string */
    json_t *(*tool_result)(json_t *id, json_t *text);
};

/* tool_choice, normalized. */
#define MG_CHATREQ_CHOICE_UNSET    0
#define MG_CHATREQ_CHOICE_AUTO     1
#define MG_CHATREQ_CHOICE_REQUIRED 2
#define MG_CHATREQ_CHOICE_NONE     3
#define MG_CHATREQ_CHOICE_TOOL     4   /* {type:function, function:{name}}: tool_name */

/* One function tool. */
struct mg_chatreq_tool {
    json_t *name;          /* string */
    json_t *description;   /* string, or NULL */
    json_t *parameters;    /* object, or NULL */
};

/* A request as read. json_t members are borrowed from root unless said otherwise. */
struct mg_chatreq {
    json_t                 *root;          /* the parsed body (owned) */
    json_t                 *system;        /* system + developer texts joined (owned), or NULL */
    json_t                 *messages;      /* [{role, content:[blocks]}] (owned) */
    int64_t                 max_tokens;    /* max_completion_tokens, max_tokens, or the default */
    json_t                 *temperature;   /* number, or NULL */
    json_t                 *top_p;         /* number, or NULL */
    json_t                 *stop;          /* array of strings (owned), or NULL */
    struct mg_chatreq_tool *tools;         /* ntools entries (owned array) */
    size_t                  ntools;
    int                     tool_choice;   /* MG_CHATREQ_CHOICE_* */
    json_t                 *tool_name;     /* string, for MG_CHATREQ_CHOICE_TOOL */
    int                     parallel_off;  /* parallel_tool_calls: false */
    json_t                 *user;          /* string, or NULL */
    int                     stream;        /* "stream": true */
};

/*
 * Reads body[0..len) with the schema's block builders; default_max_tokens is the backend's.
 * MG_OK (free r with mg_chatreq_deinit), or MG_CHATREQ_EINVAL / MG_CHATREQ_EUNSUPPORTED with e
 * filled (r is then empty). n > 1 is MG_CHATREQ_EUNSUPPORTED for param "n".
 */
/*
 * The same as mg_chatreq_parse() from the body already read (parsed, not NULL: a reference is
 * taken; it is not changed), for a chat request the gateway built itself.
 */
int mg_chatreq_parse_json(struct mg_chatreq *r, json_t *parsed, int64_t default_max_tokens,
                          const struct mg_chatreq_ops *ops, struct mg_chatreq_err *e);
int mg_chatreq_parse(struct mg_chatreq *r, const char *body, size_t len,
                     int64_t default_max_tokens, const struct mg_chatreq_ops *ops,
                     struct mg_chatreq_err *e);

/* Frees what r holds; r is then empty (a second call does nothing). */
void mg_chatreq_deinit(struct mg_chatreq *r);

/* Fills e (message and param; printf-style message) and returns rc. */
int mg_chatreq_fail(struct mg_chatreq_err *e, int rc, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * An answer's tool call as OpenAI's: id and name (borrowed from the answer, which must outlive
 * them) and the input object as a JSON string (allocated, "{}" without one; the caller frees).
 * MG_ERR when id or name is missing, else MG_OK or what writing the arguments returned.
 */
int mg_chatreq_tool_call(const json_t *id, const json_t *name, const json_t *input, size_t cap,
                         const char **out_id, const char **out_name, char **out_arguments);

#endif
