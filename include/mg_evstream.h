/*
 * mg_evstream — AWS event-stream frames (`application/vnd.amazon.eventstream`), as Bedrock's
 * ConverseStream sends them: an incremental decoder, and an encoder for the fake provider.
 *
 * A frame: total length (4 bytes, big-endian), headers length (4), CRC32 of those 8 bytes (4),
 * the headers, the payload, CRC32 of everything before it (4). CRC32 is the IEEE one (zlib's).
 * A header: name length (1), name, value type (1), value (see MG_EVSTREAM_T_*; bytes and strings
 * carry a 2-byte length first; integers and timestamps are big-endian, timestamps in ms).
 *
 * The decoder takes bytes as they arrive, split anywhere, and holds at most one frame. It trusts
 * no length before the prelude CRC has checked out, refuses a frame longer than its cap before
 * allocating anything for it, and checks the message CRC before a frame is handed on. Its errors
 * are sticky: after one, every call returns it again.
 */
#ifndef MG_EVSTREAM_H
#define MG_EVSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "mg_util.h"

#define MG_EVSTREAM_PRELUDE_LEN  12
#define MG_EVSTREAM_MIN_FRAME    16                  /* prelude and message CRC, nothing else */
#define MG_EVSTREAM_MAX_FRAME    (16u * 1024 * 1024) /* the default cap (AWS's own limit) */
#define MG_EVSTREAM_MAX_HEADERS  32                  /* per frame; more is a header error */

/* Header value types, as on the wire. */
#define MG_EVSTREAM_T_TRUE       0
#define MG_EVSTREAM_T_FALSE      1
#define MG_EVSTREAM_T_BYTE       2
#define MG_EVSTREAM_T_SHORT      3
#define MG_EVSTREAM_T_INT        4
#define MG_EVSTREAM_T_LONG       5
#define MG_EVSTREAM_T_BYTES      6
#define MG_EVSTREAM_T_STRING     7
#define MG_EVSTREAM_T_TIMESTAMP  8
#define MG_EVSTREAM_T_UUID       9

/* Decoder errors (negative, distinct from MG_ERR and MG_ETOOBIG). */
#define MG_EVSTREAM_EPRELUDE_CRC -20    /* the prelude's CRC does not match: lengths untrusted */
#define MG_EVSTREAM_EMESSAGE_CRC -21    /* the frame's CRC does not match */
#define MG_EVSTREAM_ETOOBIG      -22    /* a frame longer than the decoder's cap */
#define MG_EVSTREAM_ELENGTH      -23    /* lengths that cannot be (total < 16, headers too long) */
#define MG_EVSTREAM_EHEADERS     -24    /* a header that does not parse, or too many */
#define MG_EVSTREAM_ETRUNCATED   -25    /* the input ended inside a frame */
#define MG_EVSTREAM_ESTOPPED     -26    /* the frame callback asked to stop */

/*
 * One header. Decoded, name and bytes point into the frame (valid during the callback only) and
 * name is not NUL-terminated. ival holds TRUE/FALSE (1/0), BYTE, SHORT, INT, LONG and TIMESTAMP
 * (sign-extended); bytes/len hold BYTES, STRING and UUID (16 bytes).
 */
struct mg_evstream_header {
    const char          *name;
    size_t               name_len;
    int                  type;
    int64_t              ival;
    const unsigned char *bytes;
    size_t               len;
};

/* A string header value inside a frame; p is NULL when the frame has no such string header. */
struct mg_evstream_str {
    const char *p;
    size_t      len;
};

/* A whole, checked frame, as handed to the callback. Everything points into the decoder. */
struct mg_evstream_frame {
    const struct mg_evstream_header *headers;
    size_t                           nheaders;
    const unsigned char             *payload;
    size_t                           payload_len;
    struct mg_evstream_str           message_type;   /* ":message-type": event, exception */
    struct mg_evstream_str           event_type;     /* ":event-type": contentBlockDelta, ... */
    struct mg_evstream_str           exception_type; /* ":exception-type": throttlingException */
    struct mg_evstream_str           content_type;   /* ":content-type": application/json */
};

/* Called for each frame. Return 0 to go on; anything else stops the decoder (ESTOPPED). */
typedef int (*mg_evstream_frame_fn)(void *arg, const struct mg_evstream_frame *f);

/* The decoder. Embedded; its fields are its own (read `frames` and `alloc` if you like). */
struct mg_evstream {
    size_t                    max_frame;    /* the cap on a frame's total length */
    unsigned char             prelude[MG_EVSTREAM_PRELUDE_LEN];
    size_t                    have;         /* bytes of the current frame received so far */
    size_t                    total;        /* its length once its prelude checked out, or 0 */
    unsigned char            *frame;        /* room for a frame that arrives in pieces */
    size_t                    alloc;
    int                       err;          /* 0, or the sticky error */
    uint64_t                  frames;       /* frames handed on */
    struct mg_evstream_header headers[MG_EVSTREAM_MAX_HEADERS];
};

/* Sets up a decoder refusing frames over max_frame bytes (0: MG_EVSTREAM_MAX_FRAME). */
void mg_evstream_init(struct mg_evstream *d, size_t max_frame);
/* Frees what the decoder holds. Not from inside its own callback. */
void mg_evstream_deinit(struct mg_evstream *d);
/*
 * Feeds n bytes; calls fn for each frame they complete. Returns 0, or the (sticky) error. Frames
 * before the error in the same call have been handed on.
 */
int mg_evstream_feed(struct mg_evstream *d, const void *p, size_t n, mg_evstream_frame_fn fn,
                     void *arg);
/* The input has ended: 0 when it ended between frames, else the sticky error or ETRUNCATED. */
int mg_evstream_finish(struct mg_evstream *d);
/* A short English text for an MG_EVSTREAM_E* code (or 0). */
const char *mg_evstream_strerror(int err);

/* 1 when s is present and equal to the C string lit. */
int mg_evstream_str_eq(struct mg_evstream_str s, const char *lit);
/* The first header of f named name, or NULL. */
const struct mg_evstream_header *mg_evstream_find(const struct mg_evstream_frame *f,
                                                  const char *name);

/*
 * Appends one frame to out. name_len 1..255; BYTES and STRING up to 65535 bytes; UUID takes
 * 16 bytes from bytes. MG_OK, MG_ERR (a header that cannot be encoded) or MG_ETOOBIG (out's
 * cap); on error out is left as it was.
 */
int mg_evstream_encode(struct mg_buf *out, const struct mg_evstream_header *headers,
                       size_t nheaders, const void *payload, size_t payload_len);

/* A STRING header from two string literals, to encode: MG_EVSTREAM_STRING(":event-type", "x"). */
#define MG_EVSTREAM_STRING(name, value) \
    { (name), sizeof(name) - 1, MG_EVSTREAM_T_STRING, 0, (const unsigned char *)(value), \
      sizeof(value) - 1 }

/* CRC-32 (IEEE 802.3, as zlib's crc32()): pass 0 to start, the previous result to go on. */
uint32_t mg_evstream_crc32(uint32_t crc, const void *p, size_t n);

#endif
