/*
 * mg_test — helpers for the suites: see mg_test.h.
 */
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include <jansson.h>

#include "mg_test.h"

const char *
mg_test_build_dir(void)
{
    const char *b = getenv("MG_BUILD");
    return b && *b ? b : "build";
}

int
mg_test_scale(void)
{
    const char *s = getenv("MG_TIME_SCALE");
    long v = s ? strtol(s, NULL, 10) : 1;
    return v > 0 ? (int)v : 1;
}

int
mg_test_free_port(void)
{
    /* The kernel may hand the same free port out again right after it was closed: a port given
     * to one server that has not bound it yet must never go to a second one (they would share
     * it, and one would fail to listen). So no port is handed out twice in a run. */
    static int given[4096];
    static int ngiven;
    int tries, i, port = -1;

    for (tries = 0; tries < 100 && port < 0; tries++) {
        struct sockaddr_in a;
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
            getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
            if (fd >= 0) {
                close(fd);
            }
            return -1;
        }
        port = ntohs(a.sin_port);
        close(fd);
        for (i = 0; i < ngiven && given[i] != port; i++) {
        }
        if (i < ngiven) {
            port = -1;   /* handed out before: ask again */
        }
    }
    if (port > 0 && ngiven < (int)(sizeof(given) / sizeof(given[0]))) {
        given[ngiven++] = port;
    }
    return port;
}

pid_t
mg_test_spawn(char *const argv[], const char *logfile)
{
    const char *wrap = getenv("MG_WRAP");
    char *args[64], *copy = NULL, *save = NULL, *t;
    int n = 0, i;
    pid_t pid;

    /* MG_WRAP="valgrind -q --error-exitcode=99 ..." runs the gateway (not fakeai) under a tool */
    if (wrap != NULL && *wrap && strstr(argv[0], "modelgate") != NULL) {
        copy = strdup(wrap);
        for (t = strtok_r(copy, " ", &save); t && n < 48; t = strtok_r(NULL, " ", &save)) {
            args[n++] = t;
        }
    }
    for (i = 0; argv[i] && n < 63; i++) {
        args[n++] = argv[i];
    }
    args[n] = NULL;
    pid = fork();
    if (pid == 0) {
        const char *nofile = getenv("MG_TEST_NOFILE");
        if (nofile != NULL && strstr(argv[0], "modelgate") != NULL) {
            struct rlimit rl = {(rlim_t)atoi(nofile), (rlim_t)atoi(nofile)};
            setrlimit(RLIMIT_NOFILE, &rl);   /* soft and hard: the gateway cannot raise it */
        }
        if (logfile != NULL) {
            int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
            /* without it the child writes to the test's own output, after saying why */
            if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
                fprintf(stderr, "log %s: %s\n", logfile, strerror(errno));
            }
            if (fd >= 0) {
                close(fd);
            }
        }
        execvp(args[0], args);
        fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
        _exit(127);
    }
    free(copy);
    return pid;
}

static double
now_ms(void)
{
    return (double)mg_now_us() / 1000.0;
}

int
mg_test_wait_port(int port, int timeout_ms)
{
    double deadline = now_ms() + timeout_ms * mg_test_scale();
    struct sockaddr_in a;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    while (now_ms() < deadline) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
            close(fd);
            return 0;
        }
        if (fd >= 0) {
            close(fd);
        }
        usleep(10000);
    }
    return -1;
}

int
mg_test_stop(pid_t pid, int timeout_ms)
{
    double deadline = now_ms() + timeout_ms * mg_test_scale();
    int status;

    if (pid <= 0) {
        return -1;
    }
    kill(pid, SIGTERM);
    while (now_ms() < deadline) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        usleep(5000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static size_t
on_header(char *d, size_t s, size_t n, void *arg)
{
    struct mg_test_resp *r = arg;
    mg_buf_add(&r->headers, d, s * n);
    return s * n;
}

struct body_ctx {
    struct mg_test_resp *r;
    double               t0;
};

static size_t
on_body(char *d, size_t s, size_t n, void *arg)
{
    struct body_ctx *c = arg;
    if (c->r->body.len == 0) {
        c->r->t_first_ms = now_ms() - c->t0;
    }
    mg_buf_add(&c->r->body, d, s * n);
    return s * n;
}

void
mg_test_setopt_ok(int rc, const char *opt)
{
    if (rc != 0) {
        fprintf(stderr, "curl_easy_setopt %s: %s\n", opt, curl_easy_strerror((CURLcode)rc));
        abort();
    }
}

int
mg_test_http(const char *method, const char *url, const char *body, size_t body_len,
             const char *const *headers, struct mg_test_resp *r)
{
    struct curl_slist *h = NULL;
    struct body_ctx c;
    CURL *e = curl_easy_init();
    int rc;

    memset(r, 0, sizeof(*r));
    mg_buf_init(&r->headers, 1 << 20);
    mg_buf_init(&r->body, 256u << 20);
    c.r = r;
    c.t0 = now_ms();
    for (; headers && *headers; headers++) {
        h = curl_slist_append(h, *headers);
    }
    h = curl_slist_append(h, "Expect:");
    MG_TEST_SETOPT(e, CURLOPT_URL, url);
    MG_TEST_SETOPT(e, CURLOPT_CUSTOMREQUEST, method);
    MG_TEST_SETOPT(e, CURLOPT_PATH_AS_IS, 1L);   /* send paths as written, dots included */
    if (body != NULL) {
        MG_TEST_SETOPT(e, CURLOPT_POSTFIELDS, body);
        MG_TEST_SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    MG_TEST_SETOPT(e, CURLOPT_HTTPHEADER, h);
    MG_TEST_SETOPT(e, CURLOPT_HEADERFUNCTION, on_header);
    MG_TEST_SETOPT(e, CURLOPT_HEADERDATA, r);
    MG_TEST_SETOPT(e, CURLOPT_WRITEFUNCTION, on_body);
    MG_TEST_SETOPT(e, CURLOPT_WRITEDATA, &c);
    MG_TEST_SETOPT(e, CURLOPT_TIMEOUT_MS, 30000L * mg_test_scale());
    MG_TEST_SETOPT(e, CURLOPT_NOSIGNAL, 1L);
    rc = (int)curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    r->curl_rc = rc;
    r->t_total_ms = now_ms() - c.t0;
    if (r->body.data == NULL) {
        mg_buf_add(&r->body, "", 0);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return rc;
}

void
mg_test_resp_free(struct mg_test_resp *r)
{
    mg_buf_deinit(&r->headers);
    mg_buf_deinit(&r->body);
}

const char *
mg_test_header(const struct mg_test_resp *r, const char *name, char *buf, size_t len)
{
    const char *p = r->headers.data;
    size_t n = strlen(name);

    while (p != NULL && *p) {
        const char *eol = strchr(p, '\n');
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            size_t vl;
            while (*v == ' ') {
                v++;
            }
            vl = (size_t)((eol ? eol : v + strlen(v)) - v);
            while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' ')) {
                vl--;
            }
            if (vl >= len) {
                vl = len - 1;
            }
            memcpy(buf, v, vl);
            buf[vl] = '\0';
            return buf;
        }
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

double
mg_test_metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    const char *p = text;

    while (p != NULL && *p) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            return strtod(p + n + 1, NULL);
        }
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return -1;
}

const char *
mg_test_write_temp(int slot, const char *text)
{
    static char paths[8][64];
    int fd;

    snprintf(paths[slot], sizeof(paths[slot]), "/tmp/mgtest-XXXXXX");
    fd = mkstemp(paths[slot]);
    if (fd < 0) {
        return NULL;
    }
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        close(fd);
        return NULL;
    }
    close(fd);
    return paths[slot];
}

const char *
mg_test_hdr(const struct mg_test_resp *r, const char *name)
{
    static char buf[4][1024];
    static int slot;

    slot = (slot + 1) % 4;
    return mg_test_header(r, name, buf[slot], sizeof(buf[slot]));
}

json_t *
mg_test_body_json(const struct mg_test_resp *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, &e);

    ck_assert_msg(j != NULL, "body is not JSON (%s): %s", e.text, r->body.data);
    return j;
}

void
mg_test_assert_error(const struct mg_test_resp *r, long status, const char *code)
{
    json_t *j, *err;
    char ct[256];

    ck_assert_msg(r->status == status, "status %ld, want %ld: %s", r->status, status,
                  r->body.data);
    ck_assert_str_eq(mg_test_header(r, "content-type", ct, sizeof(ct)), "application/json");
    j = mg_test_body_json(r);
    err = json_object_get(j, "error");
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(json_string_value(json_object_get(err, "code")), code);
    ck_assert(json_is_string(json_object_get(err, "message")));
    ck_assert(json_is_string(json_object_get(err, "type")));
    ck_assert_ptr_nonnull(json_object_get(err, "param"));
    json_decref(j);
}

long
mg_test_fake_stat(int port, const char *key)
{
    struct mg_test_resp r;
    char url[128];
    json_t *j;
    long v;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_fake/stats", port);
    mg_test_http("GET", url, NULL, 0, NULL, &r);
    j = mg_test_body_json(&r);
    v = (long)json_integer_value(json_object_get(j, key));
    json_decref(j);
    mg_test_resp_free(&r);
    return v;
}

int
mg_test_raw(int port, const char *req, size_t len, int timeout_ms, struct mg_buf *out)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), closed = 0;
    int64_t deadline = mg_now_ms() + (int64_t)timeout_ms * mg_test_scale();
    char buf[16384];

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    if (len > 0 && send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    while (mg_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&p, 1, 20) <= 0) {
            continue;
        }
        n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            closed = 1;
            break;
        }
        mg_buf_add(out, buf, (size_t)n);
    }
    close(fd);
    return closed;
}

#define SKIPPED_FILE "mgtest-skipped.txt"   /* in the run's directory (the runner's cwd) */

void
mg_test_skip(const char *fmt, ...)
{
    va_list ap;
    FILE *f;

    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    f = fopen(SKIPPED_FILE, "a");   /* tests run in forked children: a file outlives them */
    if (f != NULL) {
        va_start(ap, fmt);
        vfprintf(f, fmt, ap);
        va_end(ap);
        fputc('\n', f);
        fclose(f);
    }
}

void
mg_test_print_skipped(void)
{
    char line[1024];
    FILE *f = fopen(SKIPPED_FILE, "r");

    if (f == NULL) {
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        printf("SKIPPED: %s", line);
    }
    fclose(f);
}

char *
mg_test_slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *s;
    long len;

    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    s = malloc(len > 0 ? (size_t)len + 1 : 1);
    len = len > 0 ? (long)fread(s, 1, (size_t)len, f) : 0;
    s[len] = '\0';
    fclose(f);
    *n = (size_t)len;
    return s;
}
