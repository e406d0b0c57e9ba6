/*
 * Unit tests: the AWS event-stream decoder (frames split anywhere, every error) and encoder,
 * checked against frames published by AWS.
 */
#include <string.h>

#include "mg_evstream.h"
#include "mg_test.h"

/*
 * Frames from awslabs/aws-c-event-stream, tests/message_deserializer_test.c (copied verbatim):
 * an empty message, a payload without headers, one string header and a payload.
 */
static const unsigned char aws_empty[] = {
    0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff,
};
static const unsigned char aws_payload[] = {
    0x00, 0x00, 0x00, 0x1D, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x52, 0x8c, 0x5a, 0x7b, 0x27, 0x66,
    0x6f, 0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0xc3, 0x65, 0x39, 0x36,
};
static const unsigned char aws_one_header[] = {
    0x00, 0x00, 0x00, 0x3D, 0x00, 0x00, 0x00, 0x20, 0x07, 0xFD, 0x83, 0x96, 0x0C,
    'c',  'o',  'n',  't',  'e',  'n',  't',  '-',  't',  'y',  'p',  'e',  0x07,
    0x00, 0x10, 'a',  'p',  'p',  'l',  'i',  'c',  'a',  't',  'i',  'o',  'n',
    '/',  'j',  's',  'o',  'n',  0x7b, 0x27, 0x66, 0x6f, 0x6f, 0x27, 0x3a, 0x27,
    0x62, 0x61, 0x72, 0x27, 0x7d, 0x8D, 0x9C, 0x08, 0xB1,
};

/*
 * aws-sdk-go-v2, aws/protocol/eventstream/testdata/decoded/positive/all_headers (read in the
 * IBM/ibm-cos-sdk-go-v2 copy, whose binary encoded/ twin is mangled): total_length 204,
 * headers_length 175, prelude_crc 263087306, message_crc -1415188212, and the ten headers and
 * payload below. The bytes were laid out from that description; the two CRCs they carry are
 * the published ones, so a wrong CRC or header layout on our side cannot pass.
 */
#define ALL_HEADERS_PRELUDE_CRC 263087306u
#define ALL_HEADERS_MESSAGE_CRC 2879779084u     /* -1415188212 as unsigned */
static const unsigned char go_all_headers[] = {
    0x00, 0x00, 0x00, 0xcc, 0x00, 0x00, 0x00, 0xaf, 0x0f, 0xae, 0x64, 0xca,
    0x0a, 0x65, 0x76, 0x65, 0x6e, 0x74, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x04,
    0x00, 0x00, 0xa0, 0x0c, 0x0c, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74,
    0x2d, 0x74, 0x79, 0x70, 0x65, 0x07, 0x00, 0x10, 0x61, 0x70, 0x70, 0x6c,
    0x69, 0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x6a, 0x73, 0x6f, 0x6e,
    0x0a, 0x62, 0x6f, 0x6f, 0x6c, 0x20, 0x66, 0x61, 0x6c, 0x73, 0x65, 0x01,
    0x09, 0x62, 0x6f, 0x6f, 0x6c, 0x20, 0x74, 0x72, 0x75, 0x65, 0x00, 0x04,
    0x62, 0x79, 0x74, 0x65, 0x02, 0xcf, 0x08, 0x62, 0x79, 0x74, 0x65, 0x20,
    0x62, 0x75, 0x66, 0x06, 0x00, 0x14, 0x49, 0x27, 0x6d, 0x20, 0x61, 0x20,
    0x6c, 0x69, 0x74, 0x74, 0x6c, 0x65, 0x20, 0x74, 0x65, 0x61, 0x70, 0x6f,
    0x74, 0x21, 0x09, 0x74, 0x69, 0x6d, 0x65, 0x73, 0x74, 0x61, 0x6d, 0x70,
    0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x84, 0x5f, 0xed, 0x05, 0x69, 0x6e,
    0x74, 0x31, 0x36, 0x03, 0x00, 0x2a, 0x05, 0x69, 0x6e, 0x74, 0x36, 0x34,
    0x05, 0x00, 0x00, 0x00, 0x00, 0x02, 0x87, 0x57, 0xb2, 0x04, 0x75, 0x75,
    0x69, 0x64, 0x09, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
    0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x7b, 0x27, 0x66, 0x6f, 0x6f,
    0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0xab, 0xa5, 0xf1, 0x0c,
};

static const unsigned char uuid_1_16[16] = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
};

/* The same ten headers, to encode. */
static const struct mg_evstream_header all_headers[] = {
    { "event-type", 10, MG_EVSTREAM_T_INT, 40972, NULL, 0 },
    MG_EVSTREAM_STRING("content-type", "application/json"),
    { "bool false", 10, MG_EVSTREAM_T_FALSE, 0, NULL, 0 },
    { "bool true", 9, MG_EVSTREAM_T_TRUE, 0, NULL, 0 },
    { "byte", 4, MG_EVSTREAM_T_BYTE, -49, NULL, 0 },
    { "byte buf", 8, MG_EVSTREAM_T_BYTES, 0, (const unsigned char *)"I'm a little teapot!", 20 },
    { "timestamp", 9, MG_EVSTREAM_T_TIMESTAMP, 8675309, NULL, 0 },
    { "int16", 5, MG_EVSTREAM_T_SHORT, 42, NULL, 0 },
    { "int64", 5, MG_EVSTREAM_T_LONG, 42424242, NULL, 0 },
    { "uuid", 4, MG_EVSTREAM_T_UUID, 0, uuid_1_16, 16 },
};

static uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
set_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Rewrites both CRCs of the frame at p, so that only what a test broke on purpose is wrong. */
static void
seal(unsigned char *p)
{
    uint32_t total = be32(p);

    set_be32(p + 8, mg_evstream_crc32(0, p, 8));
    set_be32(p + total - 4, mg_evstream_crc32(0, p, total - 4));
}

/* What the callback saw: the frames, flattened to text a test can compare. */
struct seen {
    int           n;
    int           stop_after;       /* ask to stop after this many frames (0: never) */
    struct mg_buf log;              /* per frame: "event|content type|message type|payload\n" */
    size_t        nheaders[8];
};

static void
seen_init(struct seen *s)
{
    memset(s, 0, sizeof(*s));
    mg_buf_init(&s->log, 1 << 20);
}

static void
add_str(struct mg_buf *b, struct mg_evstream_str s)
{
    if (s.p == NULL) {
        ck_assert_int_eq(mg_buf_adds(b, "-"), MG_OK);
    } else {
        ck_assert_int_eq(mg_buf_add(b, s.p, s.len), MG_OK);
    }
}

static int
on_frame(void *arg, const struct mg_evstream_frame *f)
{
    struct seen *s = arg;

    if (s->n < 8) {
        s->nheaders[s->n] = f->nheaders;
    }
    s->n++;
    add_str(&s->log, f->event_type);
    ck_assert_int_eq(mg_buf_adds(&s->log, "|"), MG_OK);
    add_str(&s->log, f->content_type);
    ck_assert_int_eq(mg_buf_adds(&s->log, "|"), MG_OK);
    add_str(&s->log, f->message_type);
    ck_assert_int_eq(mg_buf_adds(&s->log, "|"), MG_OK);
    ck_assert_int_eq(mg_buf_add(&s->log, f->payload, f->payload_len), MG_OK);
    ck_assert_int_eq(mg_buf_adds(&s->log, "\n"), MG_OK);
    return s->stop_after > 0 && s->n >= s->stop_after;
}

START_TEST(crc32_check_value)
{
    /* the CRC-32 check value of every catalogue (and zlib.crc32(b"123456789")) */
    ck_assert_uint_eq(mg_evstream_crc32(0, "123456789", 9), 0xCBF43926u);
    ck_assert_uint_eq(mg_evstream_crc32(0, "", 0), 0);
    /* in pieces, as the running form promises */
    ck_assert_uint_eq(mg_evstream_crc32(mg_evstream_crc32(0, "1234", 4), "56789", 5),
                      0xCBF43926u);
}
END_TEST

START_TEST(aws_frames)
{
    struct mg_evstream d;
    struct seen s;

    seen_init(&s);
    mg_evstream_init(&d, 0);
    ck_assert_int_eq(mg_evstream_feed(&d, aws_empty, sizeof(aws_empty), on_frame, &s), 0);
    ck_assert_int_eq(mg_evstream_feed(&d, aws_payload, sizeof(aws_payload), on_frame, &s), 0);
    ck_assert_int_eq(mg_evstream_feed(&d, aws_one_header, sizeof(aws_one_header), on_frame, &s),
                     0);
    ck_assert_int_eq(mg_evstream_finish(&d), 0);
    ck_assert_int_eq(s.n, 3);
    ck_assert_uint_eq(s.nheaders[0], 0);
    ck_assert_uint_eq(s.nheaders[1], 0);
    ck_assert_uint_eq(s.nheaders[2], 1);
    /* "content-type" without the colon is not the ":content-type" of Bedrock */
    ck_assert_str_eq(s.log.data, "-|-|-|\n-|-|-|{'foo':'bar'}\n-|-|-|{'foo':'bar'}\n");
    ck_assert_uint_eq(d.frames, 3);
    /* whole frames in one piece are checked where they lie: nothing was copied */
    ck_assert_ptr_null(d.frame);
    mg_evstream_deinit(&d);
    mg_buf_deinit(&s.log);
}
END_TEST

static const unsigned char *all_headers_payload = (const unsigned char *)"{'foo':'bar'}";

static int
check_all_headers(void *arg, const struct mg_evstream_frame *f)
{
    const struct mg_evstream_header *h;
    size_t i;

    (*(int *)arg)++;
    ck_assert_uint_eq(f->nheaders, 10);
    for (i = 0; i < 10; i++) {
        const struct mg_evstream_header *want = &all_headers[i];

        h = &f->headers[i];
        ck_assert_uint_eq(h->name_len, want->name_len);
        ck_assert(memcmp(h->name, want->name, h->name_len) == 0);
        ck_assert_int_eq(h->type, want->type);
        ck_assert_uint_eq(h->len, want->len);
        if (want->len > 0) {
            ck_assert(memcmp(h->bytes, want->bytes, want->len) == 0);
        }
        if (want->type != MG_EVSTREAM_T_TRUE && want->type != MG_EVSTREAM_T_FALSE) {
            ck_assert_int_eq(h->ival, want->ival);
        }
    }
    ck_assert_int_eq(f->headers[2].ival, 0);
    ck_assert_int_eq(f->headers[3].ival, 1);
    ck_assert_int_eq(f->headers[4].ival, -49);
    h = mg_evstream_find(f, "int64");
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(h->ival, 42424242);
    ck_assert_ptr_null(mg_evstream_find(f, "int6"));
    ck_assert_uint_eq(f->payload_len, 13);
    ck_assert(memcmp(f->payload, all_headers_payload, 13) == 0);
    return 0;
}

START_TEST(aws_sdk_all_headers)
{
    struct mg_evstream d;
    struct mg_buf b;
    int n = 0;

    /* the published CRCs are the ones in the frame, and ours agree with them */
    ck_assert_uint_eq(be32(go_all_headers + 8), ALL_HEADERS_PRELUDE_CRC);
    ck_assert_uint_eq(be32(go_all_headers + 200), ALL_HEADERS_MESSAGE_CRC);
    ck_assert_uint_eq(mg_evstream_crc32(0, go_all_headers, 8), ALL_HEADERS_PRELUDE_CRC);

    mg_evstream_init(&d, 0);
    ck_assert_int_eq(mg_evstream_feed(&d, go_all_headers, sizeof(go_all_headers),
                                      check_all_headers, &n), 0);
    ck_assert_int_eq(n, 1);
    mg_evstream_deinit(&d);

    /* the encoder lays out the same bytes */
    mg_buf_init(&b, 4096);
    ck_assert_int_eq(mg_evstream_encode(&b, all_headers, MG_ARRAY_LEN(all_headers),
                                        all_headers_payload, 13), MG_OK);
    ck_assert_uint_eq(b.len, sizeof(go_all_headers));
    ck_assert(memcmp(b.data, go_all_headers, b.len) == 0);

    /* and the other published frames too */
    mg_buf_reset(&b);
    ck_assert_int_eq(mg_evstream_encode(&b, NULL, 0, NULL, 0), MG_OK);
    ck_assert_uint_eq(b.len, sizeof(aws_empty));
    ck_assert(memcmp(b.data, aws_empty, b.len) == 0);
    mg_buf_reset(&b);
    ck_assert_int_eq(mg_evstream_encode(&b, &all_headers[1], 1, "{'foo':'bar'}", 13), MG_OK);
    /* aws_one_header names its header "content-type" too, same value */
    ck_assert_uint_eq(b.len, sizeof(aws_one_header));
    ck_assert(memcmp(b.data, aws_one_header, b.len) == 0);
    /* decoded/positive/int32_header: prelude_crc 1103373496, message_crc 921993376 */
    mg_buf_reset(&b);
    ck_assert_int_eq(mg_evstream_encode(&b, &all_headers[0], 1, "{'foo':'bar'}", 13), MG_OK);
    ck_assert_uint_eq(b.len, 45);
    ck_assert_uint_eq(be32((unsigned char *)b.data + 8), 1103373496u);
    ck_assert_uint_eq(be32((unsigned char *)b.data + 41), 921993376u);
    mg_buf_deinit(&b);
}
END_TEST

/* Three frames as ConverseStream sends them. */
static void
bedrock_stream(struct mg_buf *b)
{
    static const struct mg_evstream_header start[] = {
        MG_EVSTREAM_STRING(":event-type", "messageStart"),
        MG_EVSTREAM_STRING(":content-type", "application/json"),
        MG_EVSTREAM_STRING(":message-type", "event"),
    };
    static const struct mg_evstream_header delta[] = {
        MG_EVSTREAM_STRING(":event-type", "contentBlockDelta"),
        MG_EVSTREAM_STRING(":content-type", "application/json"),
        MG_EVSTREAM_STRING(":message-type", "event"),
    };
    static const struct mg_evstream_header exc[] = {
        MG_EVSTREAM_STRING(":exception-type", "throttlingException"),
        MG_EVSTREAM_STRING(":content-type", "application/json"),
        MG_EVSTREAM_STRING(":message-type", "exception"),
    };
    const char *p1 = "{\"p\":\"abcd\",\"role\":\"assistant\"}";
    const char *p2 = "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hello\"},\"p\":\"abcdefgh\"}";
    const char *p3 = "{\"message\":\"Too many requests, please wait before trying again.\"}";

    mg_buf_init(b, 4096);
    ck_assert_int_eq(mg_evstream_encode(b, start, 3, p1, strlen(p1)), MG_OK);
    ck_assert_int_eq(mg_evstream_encode(b, delta, 3, p2, strlen(p2)), MG_OK);
    ck_assert_int_eq(mg_evstream_encode(b, exc, 3, p3, strlen(p3)), MG_OK);
}

static const char *bedrock_log =
    "messageStart|application/json|event|{\"p\":\"abcd\",\"role\":\"assistant\"}\n"
    "contentBlockDelta|application/json|event|"
    "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hello\"},\"p\":\"abcdefgh\"}\n"
    "-|application/json|exception|"
    "{\"message\":\"Too many requests, please wait before trying again.\"}\n";

START_TEST(split_anywhere)
{
    struct mg_evstream d;
    struct mg_buf b;
    struct seen s;
    size_t cut, i;
    uint64_t rng = 42;

    bedrock_stream(&b);
    /* two pieces, cut at every offset */
    for (cut = 0; cut <= b.len; cut++) {
        seen_init(&s);
        mg_evstream_init(&d, 0);
        ck_assert_int_eq(mg_evstream_feed(&d, b.data, cut, on_frame, &s), 0);
        ck_assert_int_eq(mg_evstream_feed(&d, b.data + cut, b.len - cut, on_frame, &s), 0);
        ck_assert_int_eq(mg_evstream_finish(&d), 0);
        ck_assert_msg(strcmp(s.log.data, bedrock_log) == 0, "cut at %zu:\n%s", cut, s.log.data);
        mg_evstream_deinit(&d);
        mg_buf_deinit(&s.log);
    }
    /* byte by byte */
    seen_init(&s);
    mg_evstream_init(&d, 0);
    for (i = 0; i < b.len; i++) {
        int before = s.n;

        ck_assert_int_eq(mg_evstream_feed(&d, b.data + i, 1, on_frame, &s), 0);
        /* a frame comes out exactly when its last byte is in, and nothing is held then */
        ck_assert_int_eq(s.n != before, d.have == 0);
    }
    ck_assert_int_eq(s.n, 3);
    ck_assert_int_eq(mg_evstream_finish(&d), 0);
    ck_assert_str_eq(s.log.data, bedrock_log);
    mg_evstream_deinit(&d);
    mg_buf_deinit(&s.log);
    /* pieces of random sizes */
    for (i = 0; i < 200; i++) {
        size_t off = 0;

        seen_init(&s);
        mg_evstream_init(&d, 0);
        while (off < b.len) {
            size_t n = (size_t)(mg_rand_next(&rng) % 40);

            n = n < b.len - off ? n : b.len - off;
            ck_assert_int_eq(mg_evstream_feed(&d, b.data + off, n, on_frame, &s), 0);
            off += n;
        }
        ck_assert_int_eq(mg_evstream_finish(&d), 0);
        ck_assert_str_eq(s.log.data, bedrock_log);
        mg_evstream_deinit(&d);
        mg_buf_deinit(&s.log);
    }
    mg_buf_deinit(&b);
}
END_TEST

START_TEST(bad_prelude_crc)
{
    struct mg_evstream d;
    struct mg_buf b;
    struct seen s;
    size_t i;

    bedrock_stream(&b);
    /* a damaged length in the second frame: the first still comes out, nothing after */
    for (i = 0; i < 12; i++) {
        size_t second = be32((unsigned char *)b.data);

        b.data[second + i] ^= 0x10;
        seen_init(&s);
        mg_evstream_init(&d, 0);
        ck_assert_int_eq(mg_evstream_feed(&d, b.data, b.len, on_frame, &s),
                         MG_EVSTREAM_EPRELUDE_CRC);
        ck_assert_int_eq(s.n, 1);
        /* sticky, whatever comes next */
        ck_assert_int_eq(mg_evstream_feed(&d, aws_empty, sizeof(aws_empty), on_frame, &s),
                         MG_EVSTREAM_EPRELUDE_CRC);
        ck_assert_int_eq(mg_evstream_finish(&d), MG_EVSTREAM_EPRELUDE_CRC);
        ck_assert_int_eq(s.n, 1);
        mg_evstream_deinit(&d);
        mg_buf_deinit(&s.log);
        b.data[second + i] ^= 0x10;
    }
    /* the same, when the prelude arrives a byte at a time */
    b.data[2] ^= 0x01;
    seen_init(&s);
    mg_evstream_init(&d, 0);
    for (i = 0; i < 11; i++) {
        ck_assert_int_eq(mg_evstream_feed(&d, b.data + i, 1, on_frame, &s), 0);
    }
    ck_assert_int_eq(mg_evstream_feed(&d, b.data + 11, 1, on_frame, &s),
                     MG_EVSTREAM_EPRELUDE_CRC);
    ck_assert_ptr_null(d.frame);
    ck_assert_int_eq(s.n, 0);
    ck_assert_str_ne(mg_evstream_strerror(MG_EVSTREAM_EPRELUDE_CRC),
                     mg_evstream_strerror(MG_EVSTREAM_EMESSAGE_CRC));
    mg_evstream_deinit(&d);
    mg_buf_deinit(&s.log);
    mg_buf_deinit(&b);
}
END_TEST

START_TEST(bad_message_crc)
{
    struct mg_evstream d;
    struct mg_buf b;
    struct seen s;
    size_t first, i;

    bedrock_stream(&b);
    first = be32((unsigned char *)b.data);
    /* every byte after the prelude of the first frame, in place and split */
    for (i = 12; i < first; i++) {
        b.data[i] ^= 0x40;
        seen_init(&s);
        mg_evstream_init(&d, 0);
        ck_assert_int_eq(mg_evstream_feed(&d, b.data, b.len, on_frame, &s),
                         MG_EVSTREAM_EMESSAGE_CRC);
        ck_assert_int_eq(s.n, 0);
        mg_evstream_deinit(&d);
        mg_evstream_init(&d, 0);
        ck_assert_int_eq(mg_evstream_feed(&d, b.data, i, on_frame, &s), 0);
        ck_assert_int_eq(mg_evstream_feed(&d, b.data + i, b.len - i, on_frame, &s),
                         MG_EVSTREAM_EMESSAGE_CRC);
        ck_assert_int_eq(mg_evstream_finish(&d), MG_EVSTREAM_EMESSAGE_CRC);
        ck_assert_int_eq(s.n, 0);
        mg_evstream_deinit(&d);
        mg_buf_deinit(&s.log);
        b.data[i] ^= 0x40;
    }
    mg_buf_deinit(&b);
}
END_TEST

START_TEST(oversized_and_bad_lengths)
{
    unsigned char pre[16];
    struct mg_evstream d;
    struct mg_buf b;
    struct seen s;

    seen_init(&s);
    /* 1 GiB announced with a good prelude CRC: refused from the 12 bytes, nothing allocated */
    set_be32(pre, 1u << 30);
    set_be32(pre + 4, 0);
    set_be32(pre + 8, mg_evstream_crc32(0, pre, 8));
    mg_evstream_init(&d, 0);
    ck_assert_int_eq(mg_evstream_feed(&d, pre, 12, on_frame, &s), MG_EVSTREAM_ETOOBIG);
    ck_assert_ptr_null(d.frame);
    ck_assert_uint_eq(d.alloc, 0);
    mg_evstream_deinit(&d);
    /* the same in pieces */
    mg_evstream_init(&d, 0);
    ck_assert_int_eq(mg_evstream_feed(&d, pre, 5, on_frame, &s), 0);
    ck_assert_int_eq(mg_evstream_feed(&d, pre + 5, 7, on_frame, &s), MG_EVSTREAM_ETOOBIG);
    ck_assert_ptr_null(d.frame);
    mg_evstream_deinit(&d);

    /* a cap of the caller's: a frame of exactly the cap passes, one byte more does not */
    mg_buf_init(&b, 1024);
    ck_assert_int_eq(mg_evstream_encode(&b, NULL, 0, "0123456789", 10), MG_OK);
    mg_evstream_init(&d, 26);
    ck_assert_int_eq(mg_evstream_feed(&d, b.data, b.len, on_frame, &s), 0);
    mg_evstream_deinit(&d);
    mg_evstream_init(&d, 25);
    ck_assert_int_eq(mg_evstream_feed(&d, b.data, b.len, on_frame, &s), MG_EVSTREAM_ETOOBIG);
    mg_evstream_deinit(&d);
    ck_assert_int_eq(s.n, 1);

    /* lengths that cannot be, behind a good CRC */
    set_be32(pre, 15);
    set_be32(pre + 4, 0);
    set_be32(pre + 8, mg_evstream_crc32(0, pre, 8));
    mg_evstream_init(&d, 0);
    ck_assert_int_eq(mg_evstream_feed(&d, pre, 12, on_frame, &s), MG_EVSTREAM_ELENGTH);
    mg_evstream_deinit(&d);
    set_be32(pre, 20);
    set_be32(pre + 4, 5);       /* 16 + 5 > 20 */
    set_be32(pre + 8, mg_evstream_crc32(0, pre, 8));
    mg_evstream_init(&d, 0);
    ck_assert_int_eq(mg_evstream_feed(&d, pre, 12, on_frame, &s), MG_EVSTREAM_ELENGTH);
    mg_evstream_deinit(&d);
    ck_assert_int_eq(s.n, 1);
    mg_buf_deinit(&b);
    mg_buf_deinit(&s.log);
}
END_TEST

/* Feeds one frame whose headers are broken (CRCs resealed) and expects EHEADERS. */
static void
expect_bad_headers(const unsigned char *hdrs, size_t hlen)
{
    unsigned char f[512];
    struct mg_evstream d;
    struct seen s;
    size_t total = 16 + hlen + 2;

    ck_assert_uint_le(total, sizeof(f));
    set_be32(f, (uint32_t)total);
    set_be32(f + 4, (uint32_t)hlen);
    memcpy(f + 12, hdrs, hlen);
    memcpy(f + 12 + hlen, "{}", 2);
    seal(f);
    seen_init(&s);
    mg_evstream_init(&d, 0);
    ck_assert_int_eq(mg_evstream_feed(&d, f, total, on_frame, &s), MG_EVSTREAM_EHEADERS);
    ck_assert_int_eq(mg_evstream_finish(&d), MG_EVSTREAM_EHEADERS);
    ck_assert_int_eq(s.n, 0);
    mg_evstream_deinit(&d);
    mg_buf_deinit(&s.log);
}

START_TEST(bad_headers)
{
    static const unsigned char unknown_type[] = { 1, 'a', 10 };
    static const unsigned char empty_name[] = { 0, 0 };
    static const unsigned char name_past_end[] = { 9, 'a', 'b' };
    static const unsigned char no_type[] = { 1, 'a' };
    static const unsigned char string_past_end[] = { 1, 'a', 7, 0, 5, 'x', 'y' };
    static const unsigned char string_no_len[] = { 1, 'a', 7, 0 };
    static const unsigned char short_int[] = { 1, 'a', 4, 0, 0, 1 };
    static const unsigned char short_uuid[] = { 1, 'a', 9, 1, 2, 3 };
    unsigned char many[MG_EVSTREAM_MAX_HEADERS * 3 + 3];
    struct mg_evstream d;
    struct mg_buf b;
    struct seen s;
    size_t i;

    expect_bad_headers(unknown_type, sizeof(unknown_type));
    expect_bad_headers(empty_name, sizeof(empty_name));
    expect_bad_headers(name_past_end, sizeof(name_past_end));
    expect_bad_headers(no_type, sizeof(no_type));
    expect_bad_headers(string_past_end, sizeof(string_past_end));
    expect_bad_headers(string_no_len, sizeof(string_no_len));
    expect_bad_headers(short_int, sizeof(short_int));
    expect_bad_headers(short_uuid, sizeof(short_uuid));
    /* one header more than the decoder holds (each: name "a", type true) */
    for (i = 0; i < MG_EVSTREAM_MAX_HEADERS + 1; i++) {
        many[3 * i] = 1;
        many[3 * i + 1] = 'a';
        many[3 * i + 2] = MG_EVSTREAM_T_TRUE;
    }
    expect_bad_headers(many, sizeof(many));
    /* and exactly as many is fine */
    mg_buf_init(&b, 1024);
    set_be32(many, 0);
    {
        unsigned char f[16 + MG_EVSTREAM_MAX_HEADERS * 3];

        set_be32(f, sizeof(f));
        set_be32(f + 4, MG_EVSTREAM_MAX_HEADERS * 3);
        for (i = 0; i < MG_EVSTREAM_MAX_HEADERS; i++) {
            f[12 + 3 * i] = 1;
            f[12 + 3 * i + 1] = 'a';
            f[12 + 3 * i + 2] = MG_EVSTREAM_T_FALSE;
        }
        seal(f);
        seen_init(&s);
        mg_evstream_init(&d, 0);
        ck_assert_int_eq(mg_evstream_feed(&d, f, sizeof(f), on_frame, &s), 0);
        ck_assert_uint_eq(s.nheaders[0], MG_EVSTREAM_MAX_HEADERS);
        mg_evstream_deinit(&d);
        mg_buf_deinit(&s.log);
    }
    mg_buf_deinit(&b);
}
END_TEST

START_TEST(truncated)
{
    struct mg_evstream d;
    struct mg_buf b;
    struct seen s;
    size_t first;

    bedrock_stream(&b);
    first = be32((unsigned char *)b.data);
    /* the first frame and part of the second */
    seen_init(&s);
    mg_evstream_init(&d, 0);
    ck_assert_int_eq(mg_evstream_feed(&d, b.data, first + 20, on_frame, &s), 0);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(mg_evstream_finish(&d), MG_EVSTREAM_ETRUNCATED);
    ck_assert_int_eq(mg_evstream_feed(&d, b.data + first + 20, b.len - first - 20, on_frame, &s),
                     MG_EVSTREAM_ETRUNCATED);
    ck_assert_int_eq(s.n, 1);
    mg_evstream_deinit(&d);
    /* part of a prelude */
    mg_evstream_init(&d, 0);
    ck_assert_int_eq(mg_evstream_feed(&d, b.data, 5, on_frame, &s), 0);
    ck_assert_int_eq(mg_evstream_finish(&d), MG_EVSTREAM_ETRUNCATED);
    mg_evstream_deinit(&d);
    /* nothing at all is a clean end */
    mg_evstream_init(&d, 0);
    ck_assert_int_eq(mg_evstream_feed(&d, "", 0, on_frame, &s), 0);
    ck_assert_int_eq(mg_evstream_finish(&d), 0);
    mg_evstream_deinit(&d);
    mg_buf_deinit(&s.log);
    mg_buf_deinit(&b);
}
END_TEST

START_TEST(callback_stops)
{
    struct mg_evstream d;
    struct mg_buf b;
    struct seen s;

    bedrock_stream(&b);
    seen_init(&s);
    s.stop_after = 2;
    mg_evstream_init(&d, 0);
    ck_assert_int_eq(mg_evstream_feed(&d, b.data, b.len, on_frame, &s), MG_EVSTREAM_ESTOPPED);
    ck_assert_int_eq(s.n, 2);
    ck_assert_int_eq(mg_evstream_feed(&d, b.data, b.len, on_frame, &s), MG_EVSTREAM_ESTOPPED);
    ck_assert_int_eq(s.n, 2);
    mg_evstream_deinit(&d);
    mg_buf_deinit(&s.log);
    mg_buf_deinit(&b);
}
END_TEST

START_TEST(big_frame_memory)
{
    static char payload[200 * 1024];
    struct mg_evstream d;
    struct mg_buf b;
    struct seen s;

    memset(payload, 'x', sizeof(payload));
    mg_buf_init(&b, 1 << 20);
    ck_assert_int_eq(mg_evstream_encode(&b, NULL, 0, payload, sizeof(payload)), MG_OK);
    seen_init(&s);
    mg_evstream_init(&d, 0);
    ck_assert_int_eq(mg_evstream_feed(&d, b.data, 1000, on_frame, &s), 0);
    /* room for exactly this frame, once its prelude checked out */
    ck_assert_uint_eq(d.alloc, b.len);
    ck_assert_int_eq(mg_evstream_feed(&d, b.data + 1000, b.len - 1000, on_frame, &s), 0);
    ck_assert_int_eq(s.n, 1);
    /* and given back once it is out */
    ck_assert_ptr_null(d.frame);
    ck_assert_uint_eq(d.alloc, 0);
    mg_evstream_deinit(&d);
    mg_buf_deinit(&s.log);
    mg_buf_deinit(&b);
}
END_TEST

START_TEST(encode_errors)
{
    static const unsigned char big[65536];
    struct mg_evstream_header h = { "n", 1, MG_EVSTREAM_T_STRING, 0, big, 65535 };
    char longname[256];
    struct mg_buf b;

    memset(longname, 'n', sizeof(longname));
    mg_buf_init(&b, 1 << 20);
    ck_assert_int_eq(mg_evstream_encode(&b, &h, 1, NULL, 0), MG_OK);
    ck_assert_uint_eq(b.len, 16 + 1 + 1 + 1 + 2 + 65535);
    mg_buf_reset(&b);
    h.len = 65536;
    ck_assert_int_eq(mg_evstream_encode(&b, &h, 1, NULL, 0), MG_ERR);
    h.len = 1;
    h.type = 10;
    ck_assert_int_eq(mg_evstream_encode(&b, &h, 1, NULL, 0), MG_ERR);
    h.type = MG_EVSTREAM_T_TRUE;
    h.name_len = 0;
    ck_assert_int_eq(mg_evstream_encode(&b, &h, 1, NULL, 0), MG_ERR);
    h.name = longname;
    h.name_len = 255;
    ck_assert_int_eq(mg_evstream_encode(&b, &h, 1, NULL, 0), MG_OK);
    mg_buf_reset(&b);
    h.name_len = 256;
    ck_assert_int_eq(mg_evstream_encode(&b, &h, 1, NULL, 0), MG_ERR);
    ck_assert_uint_eq(b.len, 0);
    mg_buf_deinit(&b);
    /* the buffer's cap: nothing appended */
    mg_buf_init(&b, 30);
    ck_assert_int_eq(mg_evstream_encode(&b, NULL, 0, "0123456789", 10), MG_OK);
    ck_assert_int_eq(mg_evstream_encode(&b, NULL, 0, "0123456789", 10), MG_ETOOBIG);
    ck_assert_uint_eq(b.len, 26);
    mg_buf_deinit(&b);
}
END_TEST

Suite *
evstream_suite(void)
{
    Suite *s = suite_create("evstream");
    TCase *t = tcase_create("decode");

    tcase_add_test(t, crc32_check_value);
    tcase_add_test(t, aws_frames);
    tcase_add_test(t, aws_sdk_all_headers);
    tcase_add_test(t, split_anywhere);
    tcase_add_test(t, bad_prelude_crc);
    tcase_add_test(t, bad_message_crc);
    tcase_add_test(t, oversized_and_bad_lengths);
    tcase_add_test(t, bad_headers);
    tcase_add_test(t, truncated);
    tcase_add_test(t, callback_stops);
    tcase_add_test(t, big_frame_memory);
    tcase_add_test(t, encode_errors);
    suite_add_tcase(s, t);
    return s;
}
