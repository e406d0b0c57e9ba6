/*
 * modelgate — argv and exit codes only; the work is in mg_server.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mg_conf.h"
#include "mg_server.h"

#include "mg_version.h"

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: modelgate [-t] [-c FILE]\n"
            "  -c FILE  config file (default conf/modelgate.yaml)\n"
            "  -t       check the config file and exit: 0 when valid, 1 with errors on stderr\n"
            "  -V       print the version and exit\n"
            "  -h       print this help and exit\n");
}

int
main(int argc, char **argv)
{
    const char *path = "conf/modelgate.yaml";
    struct mg_conf *conf;
    struct mg_buf errors;
    int opt, test = 0, rc;

    while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 't': test = 1; break;
        case 'V': printf("modelgate %s\n", MG_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    mg_buf_init(&errors, 1024 * 1024);
    conf = mg_conf_load(path, NULL, &errors);   /* the first load: no name seen before */
    if (conf == NULL) {
        fputs(errors.data ? errors.data : "", stderr);
        mg_buf_deinit(&errors);
        return 1;
    }
    mg_buf_deinit(&errors);
    if (test) {
        printf("%s: ok\n", path);
        mg_conf_unref(conf);
        return 0;
    }
    rc = mg_server_run(conf);
    mg_conf_unref(conf);
    return rc;
}
