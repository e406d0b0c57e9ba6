/*
 * mg_json_edit — the body edits: a string quoted as JSON, and the one-splice rewrite of a
 * request body (model override, include_usage) from what mg_json_scan_request recorded.
 */
#include <string.h>

#include "mg_json.h"

int
mg_json_quote(struct mg_buf *out, const char *str, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, run = 0;
    int rc = mg_buf_add(out, "\"", 1);

    for (i = 0; i < len && rc == MG_OK; i++) {
        unsigned char c = (unsigned char)str[i];
        char esc[7];
        size_t n = 2;

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        rc = mg_buf_add(out, str + run, i - run);
        run = i + 1;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (rc == MG_OK) {
            rc = mg_buf_add(out, esc, n);
        }
    }
    if (rc == MG_OK) {
        rc = mg_buf_add(out, str + run, len - run);
    }
    return rc == MG_OK ? mg_buf_add(out, "\"", 1) : rc;
}

int
mg_json_rewrite(const char *body, size_t len, const struct mg_json_req *req, const char *model,
                int add_usage, struct mg_buf *out)
{
    /* at most two edits, which never overlap: applied in the order they appear in the body */
    struct { size_t at, del; const char *ins; int quote; } e[2];
    size_t n = 0, pos = 0, i;
    int rc = MG_OK;

    if (model != NULL) {
        e[n].at = req->model_start;
        e[n].del = req->model_end - req->model_start;
        e[n].ins = model;
        e[n++].quote = 1;
    }
    if (add_usage && !req->include_usage && req->usage_ins != NULL) {
        e[n].at = req->usage_at;
        e[n].del = req->usage_del;
        e[n].ins = req->usage_ins;
        e[n++].quote = 0;
    }
    if (n == 2 && e[1].at < e[0].at) {
        e[0] = e[1];
        e[1].at = req->model_start;
        e[1].del = req->model_end - req->model_start;
        e[1].ins = model;
        e[1].quote = 1;
    }
    for (i = 0; i < n && rc == MG_OK; i++) {
        rc = mg_buf_add(out, body + pos, e[i].at - pos);
        if (rc == MG_OK) {
            rc = e[i].quote ? mg_json_quote(out, e[i].ins, strlen(e[i].ins))
                            : mg_buf_adds(out, e[i].ins);
        }
        pos = e[i].at + e[i].del;
    }
    return rc == MG_OK ? mg_buf_add(out, body + pos, len - pos) : rc;
}

