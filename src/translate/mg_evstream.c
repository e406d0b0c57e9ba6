/*
 * mg_evstream — the AWS event-stream decoder and encoder.
 *
 * A frame that arrives whole inside one read is checked and handed on where it lies; only a frame
 * split across reads is copied, into one buffer sized for it after its prelude checked out.
 */
#include <stdlib.h>
#include <string.h>

#include "mg_evstream.h"

/* A big buffer is given back once its frame is done: a stream of small deltas keeps no more. */
#define KEEP_ALLOC (64 * 1024)

/* CRC-32, reflected polynomial 0xEDB88320, table for one byte at a time. */
static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu,
    0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
    0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
    0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
    0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
    0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
    0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
    0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
    0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
    0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u, 0x01db7106u,
    0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
    0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du,
    0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
    0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
    0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u,
    0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
    0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau,
    0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
    0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
    0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u,
    0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
    0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
    0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
    0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
    0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u,
    0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
    0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u,
    0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
    0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
    0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
    0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
    0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u,
    0x616bffd3u, 0x166ccf45u, 0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
    0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
    0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
    0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u, 0xcdd70693u,
    0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

uint32_t
mg_evstream_crc32(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i;

    crc = ~crc;
    for (i = 0; i < n; i++) {
        crc = crc_table[(crc ^ b[i]) & 0xff] ^ (crc >> 8);
    }
    return ~crc;
}

static uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
put_be(unsigned char *p, uint64_t v, int n)
{
    int i;

    for (i = n - 1; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

/* The n-byte big-endian two's-complement integer at p. */
static int64_t
get_signed(const unsigned char *p, int n)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    if (n < 8 && (v & ((uint64_t)1 << (8 * n - 1))) != 0) {
        return (int64_t)v - ((int64_t)1 << (8 * n));
    }
    if (v > (uint64_t)INT64_MAX) {
        return -(int64_t)(~v) - 1;
    }
    return (int64_t)v;
}

/* Size of a fixed-size value of type t, or -1 for variable (BYTES, STRING) and unknown types. */
static int
fixed_size(int t)
{
    switch (t) {
    case MG_EVSTREAM_T_TRUE:
    case MG_EVSTREAM_T_FALSE:
        return 0;
    case MG_EVSTREAM_T_BYTE:
        return 1;
    case MG_EVSTREAM_T_SHORT:
        return 2;
    case MG_EVSTREAM_T_INT:
        return 4;
    case MG_EVSTREAM_T_LONG:
    case MG_EVSTREAM_T_TIMESTAMP:
        return 8;
    case MG_EVSTREAM_T_UUID:
        return 16;
    default:
        return -1;
    }
}

void
mg_evstream_init(struct mg_evstream *d, size_t max_frame)
{
    memset(d, 0, sizeof(*d));
    d->max_frame = max_frame > 0 ? max_frame : MG_EVSTREAM_MAX_FRAME;
    if (d->max_frame > UINT32_MAX) {
        d->max_frame = UINT32_MAX;
    }
}

void
mg_evstream_deinit(struct mg_evstream *d)
{
    free(d->frame);
    d->frame = NULL;
    d->alloc = 0;
    d->have = 0;
    d->total = 0;
}

const char *
mg_evstream_strerror(int err)
{
    switch (err) {
    case 0:
        return "no error";
    case MG_EVSTREAM_EPRELUDE_CRC:
        return "event-stream prelude CRC mismatch";
    case MG_EVSTREAM_EMESSAGE_CRC:
        return "event-stream message CRC mismatch";
    case MG_EVSTREAM_ETOOBIG:
        return "event-stream frame too large";
    case MG_EVSTREAM_ELENGTH:
        return "event-stream frame lengths invalid";
    case MG_EVSTREAM_EHEADERS:
        return "event-stream headers invalid";
    case MG_EVSTREAM_ETRUNCATED:
        return "event-stream truncated inside a frame";
    case MG_EVSTREAM_ESTOPPED:
        return "event-stream decoding stopped";
    default:
        return "event-stream error";
    }
}

int
mg_evstream_str_eq(struct mg_evstream_str s, const char *lit)
{
    size_t n = strlen(lit);

    return s.p != NULL && s.len == n && memcmp(s.p, lit, n) == 0;
}

const struct mg_evstream_header *
mg_evstream_find(const struct mg_evstream_frame *f, const char *name)
{
    size_t i, n = strlen(name);

    for (i = 0; i < f->nheaders; i++) {
        if (f->headers[i].name_len == n && memcmp(f->headers[i].name, name, n) == 0) {
            return &f->headers[i];
        }
    }
    return NULL;
}

/* Parses h[0..n) into d->headers. */
static int
parse_headers(struct mg_evstream *d, const unsigned char *h, size_t n, size_t *count)
{
    size_t pos = 0, nh = 0;

    while (pos < n) {
        struct mg_evstream_header *x;
        size_t nlen;
        int size;

        if (nh == MG_EVSTREAM_MAX_HEADERS) {
            return MG_EVSTREAM_EHEADERS;
        }
        x = &d->headers[nh];
        memset(x, 0, sizeof(*x));
        nlen = h[pos++];
        /* the name, and the type byte after it */
        if (nlen == 0 || n - pos < nlen + 1) {
            return MG_EVSTREAM_EHEADERS;
        }
        x->name = (const char *)h + pos;
        x->name_len = nlen;
        pos += nlen;
        x->type = h[pos++];
        if (x->type == MG_EVSTREAM_T_BYTES || x->type == MG_EVSTREAM_T_STRING) {
            if (n - pos < 2) {
                return MG_EVSTREAM_EHEADERS;
            }
            x->len = (size_t)h[pos] << 8 | h[pos + 1];
            pos += 2;
            if (n - pos < x->len) {
                return MG_EVSTREAM_EHEADERS;
            }
            x->bytes = h + pos;
            pos += x->len;
        } else if ((size = fixed_size(x->type)) < 0 || n - pos < (size_t)size) {
            return MG_EVSTREAM_EHEADERS;
        } else if (x->type == MG_EVSTREAM_T_UUID) {
            x->bytes = h + pos;
            x->len = 16;
            pos += 16;
        } else if (size == 0) {
            x->ival = x->type == MG_EVSTREAM_T_TRUE;
        } else {
            x->ival = get_signed(h + pos, size);
            pos += (size_t)size;
        }
        nh++;
    }
    *count = nh;
    return MG_OK;
}

static void
well_known(struct mg_evstream_frame *f, const struct mg_evstream_header *h)
{
    static const struct {
        const char *name;
        size_t      off;
    } names[] = {
        { ":message-type", offsetof(struct mg_evstream_frame, message_type) },
        { ":event-type", offsetof(struct mg_evstream_frame, event_type) },
        { ":exception-type", offsetof(struct mg_evstream_frame, exception_type) },
        { ":content-type", offsetof(struct mg_evstream_frame, content_type) },
    };
    size_t i;

    if (h->type != MG_EVSTREAM_T_STRING) {
        return;
    }
    for (i = 0; i < MG_ARRAY_LEN(names); i++) {
        struct mg_evstream_str *s = (struct mg_evstream_str *)((char *)f + names[i].off);

        if (s->p == NULL && h->name_len == strlen(names[i].name) &&
            memcmp(h->name, names[i].name, h->name_len) == 0) {
            s->p = (const char *)h->bytes;
            s->len = h->len;
        }
    }
}

/* Checks a prelude; on success d->total is the frame's length. */
static int
read_prelude(struct mg_evstream *d, const unsigned char *p)
{
    uint32_t total = be32(p), hlen = be32(p + 4);

    if (mg_evstream_crc32(0, p, 8) != be32(p + 8)) {
        return MG_EVSTREAM_EPRELUDE_CRC;
    }
    if (total < MG_EVSTREAM_MIN_FRAME || hlen > total - MG_EVSTREAM_MIN_FRAME) {
        return MG_EVSTREAM_ELENGTH;
    }
    if (total > d->max_frame) {
        return MG_EVSTREAM_ETOOBIG;
    }
    d->total = total;
    return MG_OK;
}

/* Checks the whole frame p[0..d->total) and hands it on. */
static int
deliver(struct mg_evstream *d, const unsigned char *p, mg_evstream_frame_fn fn, void *arg)
{
    struct mg_evstream_frame f;
    size_t total = d->total, hlen = be32(p + 4), i;
    int rc;

    if (mg_evstream_crc32(0, p, total - 4) != be32(p + total - 4)) {
        return MG_EVSTREAM_EMESSAGE_CRC;
    }
    memset(&f, 0, sizeof(f));
    if ((rc = parse_headers(d, p + MG_EVSTREAM_PRELUDE_LEN, hlen, &f.nheaders)) != MG_OK) {
        return rc;
    }
    f.headers = d->headers;
    for (i = 0; i < f.nheaders; i++) {
        well_known(&f, &d->headers[i]);
    }
    f.payload = p + MG_EVSTREAM_PRELUDE_LEN + hlen;
    f.payload_len = total - MG_EVSTREAM_MIN_FRAME - hlen;
    d->frames++;
    return fn(arg, &f) == 0 ? MG_OK : MG_EVSTREAM_ESTOPPED;
}

/* Room for the current frame (its length is checked against the cap already). */
static void
reserve(struct mg_evstream *d)
{
    if (d->alloc < d->total) {
        free(d->frame);
        d->frame = mg_malloc(d->total);
        d->alloc = d->total;
    }
}

static int
fail(struct mg_evstream *d, int err)
{
    d->err = err;
    return err;
}

int
mg_evstream_feed(struct mg_evstream *d, const void *data, size_t n, mg_evstream_frame_fn fn,
                 void *arg)
{
    const unsigned char *p = data;
    size_t take;
    int rc;

    if (d->err != 0) {
        return d->err;
    }
    while (n > 0) {
        if (d->total == 0 && d->have == 0 && n >= MG_EVSTREAM_PRELUDE_LEN) {
            /* a frame starts here: check it in place when it is all here */
            if ((rc = read_prelude(d, p)) != MG_OK) {
                return fail(d, rc);
            }
            if (n >= d->total) {
                take = d->total;
                rc = deliver(d, p, fn, arg);
                d->total = 0;
                if (rc != MG_OK) {
                    return fail(d, rc);
                }
                p += take;
                n -= take;
                continue;
            }
            reserve(d);
            memcpy(d->frame, p, n);
            d->have = n;
            return MG_OK;
        }
        if (d->total == 0) {
            /* the prelude arrives in pieces: gather it before believing any length */
            take = MG_EVSTREAM_PRELUDE_LEN - d->have;
            take = take < n ? take : n;
            memcpy(d->prelude + d->have, p, take);
            d->have += take;
            p += take;
            n -= take;
            if (d->have < MG_EVSTREAM_PRELUDE_LEN) {
                return MG_OK;
            }
            if ((rc = read_prelude(d, d->prelude)) != MG_OK) {
                return fail(d, rc);
            }
            reserve(d);
            memcpy(d->frame, d->prelude, MG_EVSTREAM_PRELUDE_LEN);
            continue;
        }
        take = d->total - d->have;
        take = take < n ? take : n;
        memcpy(d->frame + d->have, p, take);
        d->have += take;
        p += take;
        n -= take;
        if (d->have == d->total) {
            rc = deliver(d, d->frame, fn, arg);
            d->have = 0;
            d->total = 0;
            if (d->alloc > KEEP_ALLOC) {
                free(d->frame);
                d->frame = NULL;
                d->alloc = 0;
            }
            if (rc != MG_OK) {
                return fail(d, rc);
            }
        }
    }
    return MG_OK;
}

int
mg_evstream_finish(struct mg_evstream *d)
{
    if (d->err != 0) {
        return d->err;
    }
    if (d->have > 0) {
        return fail(d, MG_EVSTREAM_ETRUNCATED);
    }
    return MG_OK;
}

int
mg_evstream_encode(struct mg_buf *out, const struct mg_evstream_header *headers,
                   size_t nheaders, const void *payload, size_t payload_len)
{
    unsigned char tmp[MG_EVSTREAM_PRELUDE_LEN];
    size_t hlen = 0, start = out->len, i;
    uint64_t total;
    int size;

    for (i = 0; i < nheaders; i++) {
        const struct mg_evstream_header *h = &headers[i];

        if (h->name_len == 0 || h->name_len > 255) {
            return MG_ERR;
        }
        hlen += 2 + h->name_len;
        if (h->type == MG_EVSTREAM_T_BYTES || h->type == MG_EVSTREAM_T_STRING) {
            if (h->len > 65535 || (h->len > 0 && h->bytes == NULL)) {
                return MG_ERR;
            }
            hlen += 2 + h->len;
        } else if ((size = fixed_size(h->type)) < 0 ||
                   (h->type == MG_EVSTREAM_T_UUID && h->bytes == NULL)) {
            return MG_ERR;
        } else {
            hlen += (size_t)size;
        }
    }
    total = (uint64_t)MG_EVSTREAM_MIN_FRAME + hlen + payload_len;
    if (total > UINT32_MAX || (payload_len > 0 && payload == NULL)) {
        return MG_ERR;
    }
    if (out->len > out->cap || out->cap - out->len < total) {
        return MG_ETOOBIG;
    }
    /* the room is there: none of the appends below can fail */
    put_be(tmp, total, 4);
    put_be(tmp + 4, hlen, 4);
    put_be(tmp + 8, mg_evstream_crc32(0, tmp, 8), 4);
    mg_buf_add(out, tmp, MG_EVSTREAM_PRELUDE_LEN);
    for (i = 0; i < nheaders; i++) {
        const struct mg_evstream_header *h = &headers[i];

        tmp[0] = (unsigned char)h->name_len;
        mg_buf_add(out, tmp, 1);
        mg_buf_add(out, h->name, h->name_len);
        tmp[0] = (unsigned char)h->type;
        mg_buf_add(out, tmp, 1);
        if (h->type == MG_EVSTREAM_T_BYTES || h->type == MG_EVSTREAM_T_STRING) {
            put_be(tmp, h->len, 2);
            mg_buf_add(out, tmp, 2);
            mg_buf_add(out, h->bytes, h->len);
        } else if (h->type == MG_EVSTREAM_T_UUID) {
            mg_buf_add(out, h->bytes, 16);
        } else if ((size = fixed_size(h->type)) > 0) {
            put_be(tmp, (uint64_t)h->ival, size);
            mg_buf_add(out, tmp, (size_t)size);
        }
    }
    mg_buf_add(out, payload, payload_len);
    put_be(tmp, mg_evstream_crc32(0, out->data + start, out->len - start), 4);
    mg_buf_add(out, tmp, 4);
    return MG_OK;
}
