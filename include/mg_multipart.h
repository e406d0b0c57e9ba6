/*
 * mg_multipart — the `model` of a multipart/form-data request body (SPEC "Endpoints": audio
 * transcriptions and translations, image edits and variations), read to route the request, and
 * rewritten, byte for byte otherwise, for an entry's `model` override.
 *
 * Pure: bytes in, an offset out. The reader is strict where a lenient parser could read another
 * `model` than the gateway (the backend must never route on a different value): the boundary
 * follows RFC 2046 (1-70 bchars, a token or a quoted string, not ending in a space); every part
 * (RFC 7578) has CRLF-ended headers without folding and one `Content-Disposition: form-data` with
 * a `name`; the delimiter "--boundary" appears only at the start of a line ending in CRLF and then
 * only as a delimiter (followed by optional spaces and CRLF, or by "--" for the last one), never
 * after a bare LF; the close delimiter is there. Exactly one part is named `model`, spelled
 * exactly so, without `filename` or `Content-Transfer-Encoding` (any other spelling of `model`,
 * `Model` or `name*=`, is an error); its value is non-empty, without CR, LF or NUL.
 */
#ifndef MG_MULTIPART_H
#define MG_MULTIPART_H

#include <stddef.h>

#include "mg_util.h"

/* The most parts a body may have (each costs a header parse): more is an error. */
#define MG_MULTIPART_PARTS_MAX 1000

/* The most header bytes of one part (its lines and the blank line). */
#define MG_MULTIPART_HEADERS_MAX 8192

/* The longest model value (bytes). */
#define MG_MULTIPART_MODEL_MAX 512

/* Where the model's value is in the body. */
struct mg_multipart_part {
    size_t off;     /* its first byte */
    size_t len;     /* its length (>= 1) */
};

/*
 * Finds the one `model` part of body[0..len) sent with content_type (the request's
 * Content-Type, `multipart/form-data; boundary=…`). MG_OK with model set; MG_ERR with *why a
 * short reason (a static string, for a 400 invalid_multipart message) when the type, the boundary
 * or the body is malformed or the body does not hold exactly one plain `model` part.
 */
int mg_multipart_model(const char *content_type, const char *body, size_t len,
                       struct mg_multipart_part *model, const char **why);

/*
 * Appends body[0..len) to out with the model's value (as mg_multipart_model() found it) replaced
 * by new_model. MG_OK; MG_ERR when model does not lie within the body or new_model is empty or
 * holds CR, LF or NUL (nothing appended); MG_ETOOBIG when out's cap would be passed (out may then
 * hold part of the body: reset it).
 */
int mg_multipart_rewrite(const char *body, size_t len, const struct mg_multipart_part *model,
                         const char *new_model, struct mg_buf *out);

#endif
