# modelgate — build, run, test.
#
# `make run` and `make check` work on a bare Debian 12: the `deps` step installs the -dev packages
# the build needs when pkg-config cannot find them.

CC       ?= cc
BUILD    ?= build
PC_PKGS  := libevent libevent_openssl libcurl jansson yaml-0.1 openssl hiredis
PC_TEST  := check
DEB_PKGS := pkg-config libevent-dev libhiredis-dev redis-server libcurl4-openssl-dev libjansson-dev libyaml-dev libssl-dev check ca-certificates \
            curl openssl libmimalloc-dev gcc libc6-dev
CONF     ?= conf/modelgate.yaml
PREFIX   ?= /usr/local
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR  ?= $(PREFIX)/lib/systemd/system

# Recursive (=) on purpose: pkg-config must run after `deps` installed the packages.
PC_CFLAGS = $(shell pkg-config --cflags $(PC_PKGS))
PC_LIBS   = $(shell pkg-config --libs $(PC_PKGS))
CK_CFLAGS = $(shell pkg-config --cflags $(PC_TEST))
CK_LIBS   = $(shell pkg-config --libs $(PC_TEST))

# build/modelgate allocates with mimalloc (docs/benchmarks.md "Allocator": measured fewer
# instructions and more requests a second than glibc's malloc). Sanitizer builds keep glibc's,
# which ASan watches; valgrind is told about mimalloc (MG_VALGRIND below).
MALLOC_LIBS = $(if $(SAN),,-lmimalloc)

OPT      ?= -O2 -g
SAN      ?=
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wno-format-truncation \
            -Iinclude $(OPT) $(SAN)
LDFLAGS  += $(SAN) -pthread

# Every module in its folder of src/ (docs/architecture.md has the map); main.c stays at the top.
LIB_SRC  := $(sort $(wildcard src/*/*.c))
LIB_OBJ  := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
SUITES   := util conf json router balancer models usage stats proxy wire sigv4 evstream translate health limit hdr auth providers integration failover front h1 lifecycle
SUITES   += runtime
SUITES   += messages
SUITES   += fakeai
SUITES   += responses
SUITES   += resp_store
SUITES   += multipart
SUITES   += hub
SUITES   += cors
SUITES   += tls
SUITES   += resume
SUITES   += trace
SUITES   += status
SUITES   += checks
SUITES   += shared
SUITES   += cred
SUITES   += cloudcred
SUITES   += spend
TEST_OBJ := $(SUITES:%=$(BUILD)/obj/test/check_%.o) $(BUILD)/obj/test/check_main.o \
            $(BUILD)/obj/test/mg_test.o $(BUILD)/obj/test/mg_harness.o
HDRS     := $(wildcard include/*.h src/*/*.h)

.PHONY: all deps run check browser unit integration asan valgrind clean install deb deb-check bench bench-tools \
        bench-json fuzz fuzz-deps fuzz-bins fuzz-replay node-sdk
all: deps $(BUILD)/modelgate $(BUILD)/fakeai $(BUILD)/check_modelgate

deps:
	@pkg-config --exists $(PC_PKGS) $(PC_TEST) 2>/dev/null && command -v curl >/dev/null && command -v redis-server >/dev/null && \
	  [ -e "$$($(CC) -print-file-name=libmimalloc.so)" ] || { \
	  echo "modelgate: installing Debian packages: $(DEB_PKGS)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PKGS); }

$(BUILD)/obj/%.o: src/%.c $(HDRS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PC_CFLAGS) -c -o $@ $<

$(BUILD)/obj/test/%.o: test/%.c $(HDRS) test/mg_test.h test/mg_harness.h test/fakeai_cloud.h | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PC_CFLAGS) $(CK_CFLAGS) -c -o $@ $<

$(BUILD)/libmodelgate.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/modelgate: $(BUILD)/obj/main.o $(BUILD)/libmodelgate.a
	$(CC) $(LDFLAGS) -o $@ $^ $(MALLOC_LIBS) $(PC_LIBS)

$(BUILD)/fakeai: $(BUILD)/obj/test/fakeai.o $(BUILD)/obj/test/fakeai_providers.o \
                 $(BUILD)/obj/test/fakeai_cloud.o $(BUILD)/libmodelgate.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PC_LIBS)

$(BUILD)/check_modelgate: $(TEST_OBJ) $(BUILD)/libmodelgate.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PC_LIBS) $(CK_LIBS)

run: all
	@sh test/run.sh $(CONF)

# Unit suites first (fast), then the integration suite that starts build/modelgate and build/fakeai.
# CK_RUN_SUITE=conf (or any suite name) runs one suite.
check: all fuzz-replay node-sdk browser
	MG_BUILD=$(BUILD) $(BUILD)/check_modelgate

# Debian's chromium, for the status page's test in a real browser (headless). Installed when
# missing; without it (offline) that test says SKIPPED, never fails.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "modelgate: installing Debian's chromium for the status page test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	    >/dev/null 2>&1 || echo "modelgate: chromium not installed; its test will be skipped"; }

# The official OpenAI and Anthropic Node SDKs (test/node, pinned by its package-lock.json), for
# the tests that run them against the gateway. Installed with npm ci when either is missing;
# without npm (or offline) those tests say SKIPPED, never fail.
node-sdk:
	@if [ -e test/node/node_modules/openai/package.json ] && \
	    [ -e test/node/node_modules/@anthropic-ai/sdk/package.json ]; then exit 0; fi; \
	if ! command -v npm >/dev/null 2>&1; then \
	  echo "modelgate: installing Debian's nodejs and npm for the Node SDK tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm) \
	    >/dev/null 2>&1 || true; fi; \
	if command -v npm >/dev/null 2>&1; then \
	  (cd test/node && npm ci --no-audit --no-fund --silent >/dev/null 2>&1) || \
	  echo "modelgate: npm ci of the Node SDKs failed; their tests will be skipped"; \
	else echo "modelgate: npm not found; the Node SDK tests will be skipped"; fi

asan: node-sdk browser
	$(MAKE) BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all fuzz-replay
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    MG_BUILD=build/asan MG_TIME_SCALE=3 build/asan/check_modelgate

# Fuzzing (libFuzzer). `make fuzz` builds each target of test/fuzz/ with clang, ASan and UBSan,
# and runs it FUZZ_SECONDS on a scratch copy of its corpus, build/fuzz/corpus/<t>, so that test/
# stays as it is. To keep what a run found:
#   build/fuzz/bin/<t> -merge=1 test/fuzz/corpus/<t> build/fuzz/corpus/<t>
# `make check` replays every corpus file through every target, built with $(CC) and replay.c.
FUZZ_TARGETS := json sse usage conf hdr head chunked multipart
FUZZ_SECONDS ?= 60
FUZZ_DEB     := clang libclang-rt-dev
FUZZ_OPT     := -O1 -g -fno-omit-frame-pointer -Wno-unknown-warning-option
FUZZ_SAN     := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_DEP     := test/fuzz/fuzz.h $(BUILD)/libmodelgate.a

$(BUILD)/fuzz-replay/%: test/fuzz/fuzz_%.c test/fuzz/replay.c $(FUZZ_DEP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PC_CFLAGS) $(LDFLAGS) -o $@ $< test/fuzz/replay.c \
	    $(BUILD)/libmodelgate.a $(PC_LIBS)

fuzz-replay: $(FUZZ_TARGETS:%=$(BUILD)/fuzz-replay/%)
	@for t in $(FUZZ_TARGETS); do \
	    $(BUILD)/fuzz-replay/$$t test/fuzz/corpus/$$t/* || exit 1; done

# clang alone does not link -fsanitize=fuzzer: the runtime is in libclang-rt-dev.
fuzz-deps: deps
	@echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' | \
	  clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null || { \
	  echo "modelgate: installing Debian packages: $(FUZZ_DEB)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(FUZZ_DEB); }

$(BUILD)/bin/%: test/fuzz/fuzz_%.c $(FUZZ_DEP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PC_CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $< \
	    $(BUILD)/libmodelgate.a $(PC_LIBS)

fuzz-bins: $(FUZZ_TARGETS:%=$(BUILD)/bin/%)

fuzz: fuzz-deps
	$(MAKE) CC=clang BUILD=build/fuzz OPT="$(FUZZ_OPT)" SAN="$(FUZZ_SAN)" fuzz-bins
	@mkdir -p build/fuzz/artifacts
	@failed=; for t in $(FUZZ_TARGETS); do \
	    rm -rf build/fuzz/corpus/$$t && mkdir -p build/fuzz/corpus/$$t && \
	    cp test/fuzz/corpus/$$t/* build/fuzz/corpus/$$t/ && \
	    echo "fuzz: $$t for $(FUZZ_SECONDS) s" && \
	    build/fuzz/bin/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=build/fuzz/artifacts/$$t- build/fuzz/corpus/$$t || \
	        failed="$$failed $$t"; \
	done; test -z "$$failed" || { \
	    echo "fuzz: crashed:$$failed (inputs in build/fuzz/artifacts/)"; exit 1; }

# The benchmark against nginx (bench/run installs nginx and wrk when missing). Not part of check.
BENCH_BIN := $(BUILD)/streamload $(BUILD)/idleconns $(BUILD)/nreq $(BUILD)/soak $(BUILD)/floor
bench-tools: all $(BENCH_BIN)

$(BUILD)/%: bench/%.c | deps
	$(CC) $(CFLAGS) $(PC_CFLAGS) $(LDFLAGS) -o $@ $< $(BENCH_MALLOC) $(PC_LIBS)

# The floor gets the allocator modelgate has: the comparison is of what each does, not of mallocs.
$(BUILD)/floor: BENCH_MALLOC = $(MALLOC_LIBS)

bench: bench-tools
	bench/run

# The request-body scan alone under callgrind: instructions per KiB of a ~1 KiB and a ~64 KiB chat
# body (bench/jsonscan.c, bench/jsonscan-ir). Needs valgrind; not part of bench or check.
$(BUILD)/jsonscan: bench/jsonscan.c $(BUILD)/libmodelgate.a
	$(CC) $(CFLAGS) $(PC_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmodelgate.a $(PC_LIBS)

bench-json: $(BUILD)/jsonscan
	bench/jsonscan-ir $(BUILD)

# The unit suites under memcheck, and the gateway of the integration suites too (any error or
# leak makes it exit 99, which the suites check). Slow: a few minutes.
MG_VALGRIND := valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
               --soname-synonyms=somalloc=libmimalloc.so*
valgrind: all
	for s in util conf json router balancer models usage stats proxy wire sigv4 evstream translate health limit hdr; do \
	    CK_FORK=no CK_RUN_SUITE=$$s $(MG_VALGRIND) $(BUILD)/check_modelgate || exit 1; done
	MG_TIME_SCALE=10 MG_WRAP="$(MG_VALGRIND)" $(BUILD)/check_modelgate

PREFIX ?= /usr/local
# An existing /etc/modelgate/modelgate.yaml is the operator's: an upgrade never overwrites it.
# make install [PREFIX=/usr/local] [SYSCONFDIR=...] [DESTDIR=...]: the binary, modelgate(8), an
# example config (never over one that exists) and modelgate.service (docs/operations.md).
install: $(BUILD)/modelgate
	install -D -m 0755 $(BUILD)/modelgate $(DESTDIR)$(PREFIX)/bin/modelgate
	install -D -m 0644 docs/modelgate.8 $(DESTDIR)$(PREFIX)/share/man/man8/modelgate.8
	[ -e $(DESTDIR)$(SYSCONFDIR)/modelgate/modelgate.yaml ] || \
	    install -D -m 0644 conf/modelgate.yaml $(DESTDIR)$(SYSCONFDIR)/modelgate/modelgate.yaml
	mkdir -p $(DESTDIR)$(UNITDIR)
	sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    conf/modelgate.service.in > $(DESTDIR)$(UNITDIR)/modelgate.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/modelgate.service

# make deb: build/modelgate_<version>_<arch>.deb (dpkg-deb): /usr, the config a conffile in
# /etc/modelgate, the modelgate system user made by its postinst, which also checks the config.
DEB_VERSION = $(shell sed -n 's/^#define MG_VERSION "\(.*\)"/\1/p' src/main.c)
deb: $(BUILD)/modelgate
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/DEBIAN
	$(MAKE) --no-print-directory install PREFIX=/usr DESTDIR=$(CURDIR)/$(BUILD)/deb
	sh conf/deb/control.sh "$(or $(DEB_VERSION),0.0.0)" "$$(dpkg --print-architecture)" $(BUILD)/modelgate \
	    > $(BUILD)/deb/DEBIAN/control
	echo /etc/modelgate/modelgate.yaml > $(BUILD)/deb/DEBIAN/conffiles
	install -m 0755 conf/deb/postinst conf/deb/postrm $(BUILD)/deb/DEBIAN/
	dpkg-deb --root-owner-group --build $(BUILD)/deb $(BUILD)/modelgate.deb

# make deb-check (as root, on a Debian machine you may change): the package installed with apt,
# its user, its checked config, its unit (systemd-analyze verify) and man page, then purged and
# gone. Not part of make check: it installs on the machine it runs on, systemd and man-db too
# when the tools it checks with are missing (a minimal Debian 12 has neither).
DEBCHECK_DEB := systemd man-db
deb-check: deb
	@command -v systemd-analyze >/dev/null && command -v man >/dev/null || { \
	  echo "modelgate: installing Debian packages: $(DEBCHECK_DEB)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBCHECK_DEB); }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ./$(BUILD)/modelgate.deb >/dev/null
	id modelgate >/dev/null
	modelgate -t -c /etc/modelgate/modelgate.yaml
	systemd-analyze verify --man=no /usr/lib/systemd/system/modelgate.service
	man -w modelgate >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq modelgate >/dev/null
	! id modelgate 2>/dev/null && [ ! -e /usr/bin/modelgate ] && [ ! -e /etc/modelgate ]
	@echo "deb-check: installed, verified and purged cleanly"

clean:
	rm -rf build
