/*
 * Fuzz target: the config loader (mg_conf_parse) on any text. It must never crash or leak (the
 * snapshot is freed with mg_conf_unref; ASan's leak check runs after each input), it returns a
 * snapshot exactly when it reports no error, and its first error names the file, line and column
 * ("fuzz.yaml:LINE:COL: ..."), as SPEC "Configuration" asks of every config error.
 */
#include <string.h>

#include "fuzz.h"
#include "mg_conf.h"

#define PATH "fuzz.yaml"

/* "PATH:<digits>:<digits>: " at the start of p. */
static int
located(const char *p)
{
    int k;

    if (strncmp(p, PATH ":", sizeof(PATH)) != 0) {
        return 0;
    }
    p += sizeof(PATH);
    for (k = 0; k < 2; k++) {
        if (*p < '0' || *p > '9') {
            return 0;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
        if (*p++ != ':') {
            return 0;
        }
    }
    return *p == ' ';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int env_set;
    struct mg_buf errors;
    struct mg_conf *conf;

    if (!env_set) {
        /* the variables the bundled configs and the corpus name, so they load all the way */
        setenv("OPENAI_API_KEY", "sk-fuzz-openai-0123456789", 0);
        setenv("ANTHROPIC_API_KEY", "sk-ant-fuzz-0123456789", 0);
        setenv("AZURE_OPENAI_API_KEY", "azure-fuzz-0123456789", 0);
        setenv("TEAM_A_KEY", "team-a-fuzz-0123456789", 0);
        setenv("MG_FUZZ", "x", 0);
        env_set = 1;
    }
    mg_buf_init(&errors, 1024 * 1024);
    conf = mg_conf_parse(PATH, (const char *)data, size, &errors);
    if (conf != NULL) {
        FZ_CHECK(errors.len == 0);
        FZ_CHECK(mg_conf_ref(conf) == conf);
        mg_conf_unref(conf);
        FZ_CHECK(conf->nbackends > 0 || conf->nrules == 0);
        mg_conf_unref(conf);
    } else {
        FZ_CHECK(errors.len > 0);
        if (!located(errors.data)) {
            fprintf(stderr, "error without file:line:col: %s\n", errors.data);
        }
        FZ_CHECK(located(errors.data));
    }
    mg_buf_deinit(&errors);
    return 0;
}
