/*
 * replay — runs a fuzz target over files without libFuzzer: `make check` builds each target with
 * this main() and the normal compiler and feeds it every file of the target's corpus.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

#define REPLAY_MAX (64u * 1024 * 1024)   /* corpus files are small; refuse anything absurd */

static const char *current;   /* the file being replayed, named when it crashes */

static void
on_crash(int sig)
{
    static const char msg[] = "replay: crashed on ";

    if (current != NULL) {
        (void)!write(2, msg, sizeof(msg) - 1);
        (void)!write(2, current, strlen(current));
        (void)!write(2, "\n", 1);
    }
    raise(sig);   /* SA_RESETHAND: the default action now */
}

/* Names the file on a crash; leaves alone the handlers a sanitizer set (they report more). */
static void
catch_crashes(void)
{
    static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
    struct sigaction sa, old;
    size_t i;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_crash;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
            (void)sigaction(sigs[i], &sa, NULL);
        }
    }
}

/* Reads path into a buffer of exactly its size (so ASan sees a read past the end). */
static uint8_t *
read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;

    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || (unsigned long)n > REPLAY_MAX ||
        fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "replay: %s: cannot size it (or over %u bytes)\n", path, REPLAY_MAX);
        fclose(f);
        return NULL;
    }
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "replay: %s: read failed\n", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

int
main(int argc, char **argv)
{
    int i, failed = 0;

    catch_crashes();
    for (i = 1; i < argc; i++) {
        size_t size = 0;
        uint8_t *data = read_file(argv[i], &size);

        if (data == NULL) {
            failed++;
            continue;
        }
        current = argv[i];
        LLVMFuzzerTestOneInput(data, size);
        free(data);
    }
    fprintf(stderr, "replay: %s: %d file(s), %d unreadable\n", argv[0], argc - 1, failed);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
