/*
 * fuzz — what every libFuzzer target in test/fuzz/ shares. Each target is built twice: with
 * clang -fsanitize=fuzzer by `make fuzz`, and with $(CC) and replay.c by `make check`, which runs
 * it over its corpus (test/fuzz/corpus/<target>/) so that an input that once crashed stays fixed.
 */
#ifndef MG_FUZZ_H
#define MG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The entry point libFuzzer (or replay.c) calls with each input; returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test: when it does not hold, say which and abort (a crash). */
#define FZ_CHECK(cond)                                                                     \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

#endif
