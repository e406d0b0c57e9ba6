/*
 * Fuzz target: the request head parser (mg_front_parse_head) on any bytes up to the first blank
 * line. What it accepts must hold the rules it promises: every name a token, every value free of
 * CR, LF and NUL, a path, HTTP/1.0 or 1.1, never Content-Length with chunked; what it refuses is
 * a 400 or a 431.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mg_front.h"
#include "mg_hdr.h"
#include "mg_req.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *end = NULL;
    struct mg_front_refusal why;
    struct mg_front_head info;
    struct mg_req req;
    size_t len, i;
    char *head;

    for (i = 0; i + 4 <= size; i++) {
        if (memcmp(data + i, "\r\n\r\n", 4) == 0) {
            end = data + i + 4;
            break;
        }
    }
    len = end != NULL ? (size_t)(end - data) : size + 4;
    head = malloc(len + 1);
    memcpy(head, data, end != NULL ? len : size);
    if (end == NULL) {
        memcpy(head + size, "\r\n\r\n", 4);
    }
    head[len] = '\0';
    memset(&req, 0, sizeof(req));
    if (mg_front_parse_head(head, len, &req, &info, &why) == 0) {
        FZ_CHECK(req.minor == 0 || req.minor == 1);
        FZ_CHECK(req.path != NULL && (req.path[0] == '/' || req.path[0] == '*'));
        FZ_CHECK(mg_hdr_target_ok(req.path, strlen(req.path)));
        FZ_CHECK(req.method_name != NULL && mg_hdr_name_ok(req.method_name,
                                                            strlen(req.method_name)));
        FZ_CHECK(!(info.chunked && info.content_length >= 0));
        FZ_CHECK(req.headers.n <= MG_FRONT_FIELDS_MAX);
        for (i = 0; i < req.headers.n; i++) {
            const struct mg_field *f = &req.headers.v[i];
            FZ_CHECK(f->name >= head && f->value >= head && f->value < head + len);
            FZ_CHECK(strlen(f->name) == f->name_len && strlen(f->value) == f->value_len);
            FZ_CHECK(mg_hdr_name_ok(f->name, f->name_len));
            FZ_CHECK(mg_hdr_value_ok(f->value, f->value_len));
        }
        FZ_CHECK(!req.has_request_id ||
                 mg_hdr_request_id_ok(req.request_id, strlen(req.request_id)));
    } else {
        FZ_CHECK(why.status == 400 || why.status == 431);
        FZ_CHECK(why.code != NULL && why.message != NULL);
    }
    mg_headers_clear(&req.headers);
    free(head);
    return 0;
}
