# ringlb - hand-written Makefile.
#
#   make            build build/ringlb and build/ringlb-replica
#   make run        three local replicas behind ringlb on port 5000
#   make test       unit and end-to-end tests
#   make clean
#
# Missing Debian packages are installed with apt-get when run as root;
# otherwise the exact command to run is printed.

CC        ?= cc
BUILD     := build
OBJ       := $(BUILD)/obj
PYTHON    := $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)

WARN      := -Wall -Wextra -Wstrict-prototypes -Wshadow -Wpointer-arith
CFLAGS    ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Iinclude $(PKG_CFLAGS) -MMD -MP
ALL_LDLIBS = $(PKG_LIBS) $(LDLIBS)
ifeq ($(CI),true)
ALL_CFLAGS += -Werror
endif

BUILD_PKGS := gcc make pkg-config libevent-dev libcurl4-openssl-dev libjansson-dev libxxhash-dev
TEST_PKGS  := python3 python3-pytest python3-pytest-timeout curl procps

LIB_SRCS  := src/log.c src/util.c src/ring.c src/replica.c src/respond.c \
             src/curlev.c src/admin_body.c src/headers.c
LB_SRCS   := src/config.c src/backend.c src/backend_static.c \
             src/backend_process.c src/pool.c src/health.c src/state.c \
             src/metrics.c src/admin.c src/proxy.c src/gate.c src/frontend.c \
             src/main.c
REP_SRCS  := src/replica/main.c
ANA_SRCS  := src/analyze/main.c src/analyze/ring_report.c src/analyze/load.c \
             src/analyze/experiments.c src/analyze/zipf.c

LIB_OBJS  := $(LIB_SRCS:%.c=$(OBJ)/%.o)
LB_OBJS   := $(LB_SRCS:%.c=$(OBJ)/%.o)
REP_OBJS  := $(REP_SRCS:%.c=$(OBJ)/%.o)
ANA_OBJS  := $(ANA_SRCS:%.c=$(OBJ)/%.o)
TEST_BINS := $(BUILD)/test_ring $(BUILD)/test_util

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all run test unit e2e clean deps test-deps experiments bench asan fuzz soak
.SECONDARY:
all: $(BUILD)/ringlb $(BUILD)/ringlb-replica $(BUILD)/ringlb-analyze

# --- Debian packages ------------------------------------------------------
# $(call ensure,PACKAGES): install what is missing, or say how to.
define ensure
	@command -v dpkg-query >/dev/null 2>&1 || exit 0; \
	missing=""; \
	for p in $(1); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian packages:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	else \
		echo "ringlb needs these Debian packages:$$missing"; \
		echo "install them with:  sudo apt-get install -y$$missing"; \
		exit 1; \
	fi
endef

$(BUILD)/.deps-build: Makefile
	@mkdir -p $(BUILD)
	$(call ensure,$(BUILD_PKGS))
	@touch $@

$(BUILD)/.deps-test: Makefile
	@mkdir -p $(BUILD)
	$(call ensure,$(TEST_PKGS))
	@touch $@

deps: $(BUILD)/.deps-build
test-deps: $(BUILD)/.deps-test

# Compiler and linker flags of the libraries, found once the packages are.
$(BUILD)/config.mk: $(BUILD)/.deps-build
	@pkg-config --exists libevent libcurl jansson libxxhash || \
		{ echo "pkg-config cannot find libevent, libcurl, jansson and libxxhash"; exit 1; }
	@echo "PKG_CFLAGS := $$(pkg-config --cflags libevent libcurl jansson libxxhash)" > $@
	@echo "PKG_LIBS := $$(pkg-config --libs libevent libcurl jansson libxxhash)" >> $@

ifeq ($(filter clean,$(MAKECMDGOALS)),)
include $(BUILD)/config.mk
endif

# --- build ----------------------------------------------------------------
$(OBJ)/%.o: %.c $(BUILD)/config.mk
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# The ring's loops over 2^21 arcs are written to vectorize.
$(OBJ)/src/ring.o: ALL_CFLAGS += -O3

$(BUILD)/ringlb: $(LB_OBJS) $(LIB_OBJS)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(ALL_LDLIBS)

$(BUILD)/ringlb-replica: $(REP_OBJS) $(LIB_OBJS)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(ALL_LDLIBS)

$(BUILD)/ringlb-analyze: $(ANA_OBJS) $(LIB_OBJS)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(ALL_LDLIBS) -lm

$(BUILD)/test_%: $(OBJ)/tests/unit/test_%.o $(LIB_OBJS)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(ALL_LDLIBS) -lm

# --- run ------------------------------------------------------------------
# ringlb on port $(PORT) with 3 replica processes it starts itself;
# Ctrl-C stops it and them.  Extra options: make run ARGS="--replicas 5".
PORT ?= 5000
run: all
	$(BUILD)/ringlb --listen 0.0.0.0:$(PORT) $(ARGS)

# --- tests ----------------------------------------------------------------
test: all $(TEST_BINS) $(BUILD)/.deps-test
	@sh tests/run.sh $(BUILD) $(PYTHON)

unit: $(TEST_BINS)
	@for t in $(TEST_BINS); do $$t || exit 1; done

e2e: all $(BUILD)/.deps-test
	$(PYTHON) -m pytest -q tests/e2e

# The whole suite on a build with AddressSanitizer and UndefinedBehavior-
# Sanitizer (in build/asan); any report fails it.
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=undefined
asan: $(BUILD)/.deps-test
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan CFLAGS="$(ASAN_FLAGS)" \
		all $(BUILD)/asan/test_ring $(BUILD)/asan/test_util
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		RINGLB_TEST_SANITIZED=1 sh tests/run.sh $(BUILD)/asan $(PYTHON)

# libFuzzer targets (clang), each run for FUZZ_SECONDS; the corpus grows
# in build/fuzz/corpus-NAME.  Any crash or broken invariant fails it.
FUZZ_TARGETS := ring query admin headers
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   := -std=c11 -D_GNU_SOURCE -g -O1 -Iinclude \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRCS    := src/ring.c src/util.c src/admin_body.c src/headers.c

# The ring's invariants do not depend on its size: 2^12 arcs fuzz faster.
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_SRCS) $(BUILD)/.deps-fuzz $(BUILD)/config.mk
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)clang $(FUZZ_FLAGS) -DRING_TABLE_BITS=12 $(PKG_CFLAGS) -o $@ $< \
		$(FUZZ_SRCS) $(PKG_LIBS)

$(BUILD)/.deps-fuzz: Makefile
	@mkdir -p $(BUILD)
	$(call ensure,clang libclang-rt-14-dev)
	@touch $@

fuzz: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(BUILD)/fuzz/corpus-$$t; \
		echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
		dict=""; [ -f tests/fuzz/$$t.dict ] && dict="-dict=tests/fuzz/$$t.dict"; \
		seeds=""; [ -d tests/fuzz/seeds/$$t ] && seeds="tests/fuzz/seeds/$$t"; \
		$(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) $$dict \
			-print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/ \
			$(BUILD)/fuzz/corpus-$$t $$seeds 2>$(BUILD)/fuzz/fuzz_$$t.log || \
			{ tail -40 $(BUILD)/fuzz/fuzz_$$t.log; exit 1; }; \
		grep -E "stat::number_of_executed_units|stat::average_exec_per_sec" \
			$(BUILD)/fuzz/fuzz_$$t.log | tr '\n' ' '; echo; \
	done

# ringlb against nginx and HAProxy on the same backends (not a test: no
# timing is asserted).  ROUNDS, DURATION and CONNS tune it.
bench: all
	$(call ensure,nginx-light haproxy wrk)
	@bash tests/bench/bench.sh $(BUILD)

# Load and faults together for SOAK_SECONDS (60): no failed request, and
# descriptors and memory back where they started.
soak: all
	$(call ensure,wrk curl)
	@bash tests/bench/soak.sh $(BUILD)

# The classic assignment's analysis (A-1 to A-4) against real ringlb
# instances on loopback; charts and data into docs/.
experiments: all
	$(call ensure,gnuplot-nox)
	$(BUILD)/ringlb-analyze experiments --out docs/experiments

clean:
	rm -rf $(BUILD)

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)
