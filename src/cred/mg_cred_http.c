/*
 * mg_cred_http — what credential fetchers share: one blocking HTTP transfer (a libcurl easy
 * handle of its own, on the refresher's thread, never a worker's multi handle), the timestamp
 * parser, a small file reader.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "mg_cred.h"

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_MAX        (64 * 1024)

/* curl's progress callback: non-zero aborts the transfer (its refresher is stopping). */
static int
on_progress(void *arg, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
    return mg_cred_stopping();
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    struct mg_buf *out = arg;

    return mg_buf_add(out, p, size * n) == MG_OK ? size * n : 0;   /* 0: over the cap, stop */
}

int
mg_cred_http_do(const struct mg_cred_http *rq, long *status, struct mg_buf *out,
                char *err, size_t errlen)
{
    struct curl_slist *hl = NULL, *t;
    char cerr[CURL_ERROR_SIZE] = "";
    CURL *h;
    CURLcode rc;
    size_t i;

    mg_buf_init(out, rq->max ? rq->max : DEFAULT_MAX);
    *status = 0;
    h = curl_easy_init();
    if (h == NULL) {
        snprintf(err, errlen, "no curl handle");
        return MG_ERR;
    }
    for (i = 0; rq->headers != NULL && rq->headers[i] != NULL; i++) {
        t = curl_slist_append(hl, rq->headers[i]);
        if (t == NULL) {
            curl_slist_free_all(hl);
            curl_easy_cleanup(h);
            snprintf(err, errlen, "out of memory");
            return MG_ERR;
        }
        hl = t;
    }
    curl_easy_setopt(h, CURLOPT_URL, rq->url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    if (rq->body != NULL || strcmp(rq->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body != NULL ? rq->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(rq->timeout_ms ? rq->timeout_ms
                                                                  : DEFAULT_TIMEOUT_MS));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);   /* a thread of its own: no SIGALRM */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    if (rq->no_proxy) {
        curl_easy_setopt(h, CURLOPT_PROXY, "");
    }
    rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    } else {
        snprintf(err, errlen, "%s %s: %s", rq->method, rq->url,
                 rc == CURLE_WRITE_ERROR ? "answer too large"
                 : rc == CURLE_ABORTED_BY_CALLBACK ? "stopped"
                                         : cerr[0] ? cerr : curl_easy_strerror(rc));
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return rc == CURLE_OK ? MG_OK : MG_ERR;
}

/* n digits at *p into *v; advances. */
static int
digits(const char **p, int n, int *v)
{
    *v = 0;
    while (n-- > 0) {
        if (!isdigit((unsigned char)**p)) {
            return MG_ERR;
        }
        *v = *v * 10 + (**p - '0');
        (*p)++;
    }
    return MG_OK;
}

int
mg_cred_parse_time(const char *s, int64_t *ms)
{
    struct tm tm;
    int y, mo, d, h, mi, se, frac = 0, scale = 1000;
    time_t t;

    if (s == NULL || digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) || *s++ != '-' ||
        digits(&s, 2, &d) || (*s != 'T' && *s != 't' && *s != ' ') || !*s++ ||
        digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi) || *s++ != ':' ||
        digits(&s, 2, &se)) {
        return MG_ERR;
    }
    if (*s == '.') {
        for (s++; isdigit((unsigned char)*s); s++) {
            if (scale > 1) {
                scale /= 10;
                frac += (*s - '0') * scale;
            }
        }
    }
    if (!((*s == 'Z' || *s == 'z') && s[1] == '\0') && strcmp(s, "+00:00") != 0) {
        return MG_ERR;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) {
        return MG_ERR;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    t = timegm(&tm);
    if (t == (time_t)-1) {
        return MG_ERR;
    }
    *ms = (int64_t)t * 1000 + frac;
    return MG_OK;
}

char *
mg_cred_read_file(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    char *data;
    size_t n;

    if (f == NULL) {
        return NULL;
    }
    data = mg_malloc(max + 1);
    n = fread(data, 1, max + 1, f);
    if (ferror(f) || n > max) {
        fclose(f);
        free(data);
        return NULL;
    }
    fclose(f);
    while (n > 0 && isspace((unsigned char)data[n - 1])) {
        n--;
    }
    data[n] = '\0';
    return data;
}

void
mg_cred_form_add(struct mg_buf *b, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p;

    if (b->len > 0) {
        mg_buf_adds(b, "&");
    }
    mg_buf_adds(b, name);
    mg_buf_adds(b, "=");
    for (p = (const unsigned char *)value; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            mg_buf_add(b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            mg_buf_add(b, e, 3);
        }
    }
}

/* A JSON number, or a string of digits, as an integer; -1 when it is neither. */
static int64_t
json_seconds(const json_t *v)
{
    const char *s = json_string_value(v);
    char *end;
    long long n;

    if (json_is_integer(v)) {
        return (int64_t)json_integer_value(v);
    }
    if (json_is_real(v)) {
        return (int64_t)json_real_value(v);
    }
    if (s == NULL || !isdigit((unsigned char)s[0])) {
        return -1;
    }
    n = strtoll(s, &end, 10);
    return *end == '\0' ? (int64_t)n : -1;
}

int
mg_cred_bearer_json(const char *text, int64_t now_ms, struct mg_cred **out, char *err,
                    size_t errlen)
{
    json_t *j = json_loads(text, 0, NULL);
    const char *tok = json_string_value(json_object_get(j, "access_token"));
    const char *e = json_string_value(json_object_get(j, "error"));
    const char *ed = json_string_value(json_object_get(j, "error_description"));
    int64_t in = json_seconds(json_object_get(j, "expires_in"));
    int64_t on = json_seconds(json_object_get(j, "expires_on"));
    int rc = MG_ERR;

    if (!json_is_object(j)) {
        snprintf(err, errlen, "the token answer is not a JSON object");
    } else if (e != NULL) {   /* OAuth's error and its description: no secret in either */
        snprintf(err, errlen, "%.64s%s%.160s", e, ed ? ": " : "", ed ? ed : "");
    } else if (tok == NULL || tok[0] == '\0') {
        snprintf(err, errlen, "the token answer has no access_token");
    } else if (in <= 0 && on <= 0) {
        snprintf(err, errlen, "the token answer has no expires_in or expires_on");
    } else {
        *out = mg_cred_bearer(tok, in > 0 ? now_ms + in * 1000 : on * 1000);
        rc = MG_OK;
    }
    json_decref(j);
    return rc;
}
