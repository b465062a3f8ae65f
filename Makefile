# ringlb - hand-written Makefile.
#
#   make            build build/ringlb and build/ringlb-replica
#   make run        three local replicas behind ringlb on port 5000
#   make test       unit and end-to-end tests
#   make test-deps  what the tests need; newman for the Postman run, with
#                   npm or, offline, NEWMAN_TARBALL=/path/to/newman-6.2.2.tgz
#   make tsan       the threaded suites under ThreadSanitizer, 4 workers
#   make cost       instructions per proxied request, under callgrind
#   make bench      ringlb against nginx and HAProxy, at 1 and 2 workers
#   make rss        ringlb's memory, idle, at 1, 2 and 4 workers
#   make clean
#
#   make build      the Docker image ringlb:latest (docker/Dockerfile)
#   make up         ringlb and 3 replica containers (docker-compose.yml);
#                   also up-detached, stop, start, logs, rm, down, rebuild
#
# Missing Debian packages are installed with apt-get when run as root;
# otherwise the exact command to run is printed.

CC        ?= cc
BUILD     := build
OBJ       := $(BUILD)/obj
PYTHON    := $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)

WARN      := -Wall -Wextra -Wstrict-prototypes -Wshadow -Wpointer-arith
CFLAGS    ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -pthread $(WARN) $(CFLAGS) -Iinclude $(PKG_CFLAGS) -MMD -MP
ALL_LDLIBS = $(PKG_LIBS) $(LDLIBS) -pthread
ifeq ($(CI),true)
ALL_CFLAGS += -Werror
endif

BUILD_PKGS := gcc make pkg-config libevent-dev libcurl4-openssl-dev libjansson-dev libxxhash-dev
TEST_PKGS  := python3 python3-pytest python3-pytest-timeout curl procps strace
# for the dashboard's browser test and the Postman collection's run: wanted,
# not required (the tests that need them skip, saying why)
BROWSER_PKGS := chromium chromium-driver python3-selenium
NEWMAN     := newman@6.2.2
# Where no npm registry can be reached: a tarball of newman's node_modules
# tree (package.json, node_modules/) to unpack into NEWMAN_DIR instead.
NEWMAN_TARBALL ?=
# Where newman goes (tests/e2e/test_postman.py looks in build/newman).
NEWMAN_DIR ?= build/newman
NEWMAN_BIN := $(NEWMAN_DIR)/node_modules/.bin/newman

RING_SRCS := src/ring.c src/ring_table.c src/ring_vnode.c src/ring_classic.c
LIB_SRCS  := src/log.c src/util.c $(RING_SRCS) src/route.c src/replica.c src/respond.c \
             src/curlev.c src/admin_body.c src/headers.c
LB_SRCS   := src/config.c src/backend.c src/backend_static.c \
             src/backend_process.c src/backend_docker.c src/backend_swarm.c src/docker.c src/pool.c src/health.c src/state.c \
             src/metrics.c src/admin.c src/proxy.c src/gate.c src/frontend.c \
             src/status.c src/mbox.c src/ctl.c src/worker.c src/main.c
REP_SRCS  := src/replica/main.c
ANA_SRCS  := src/analyze/main.c src/analyze/ring_report.c src/analyze/load.c \
             src/analyze/experiments.c src/analyze/zipf.c

LIB_OBJS  := $(LIB_SRCS:%.c=$(OBJ)/%.o)
LB_OBJS   := $(LB_SRCS:%.c=$(OBJ)/%.o) $(OBJ)/gen/dashboard.o
REP_OBJS  := $(REP_SRCS:%.c=$(OBJ)/%.o) $(OBJ)/src/gate.o
ANA_OBJS  := $(ANA_SRCS:%.c=$(OBJ)/%.o)
TEST_BINS := $(BUILD)/test_ring $(BUILD)/test_util $(BUILD)/test_pool \
             $(BUILD)/test_mbox

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all run test unit e2e clean deps test-deps newman-deps dashboard-png experiments bench cost rss asan tsan fuzz soak
.SECONDARY:
all: $(BUILD)/ringlb $(BUILD)/ringlb-replica $(BUILD)/ringlb-analyze

# --- Debian packages ------------------------------------------------------
# $(call ensure,PACKAGES): install what is missing, or say how to.
# $(call ensure,PACKAGES,optional): the same, but going on without them.
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
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null && exit 0; \
		[ "$(2)" = optional ] && { echo "could not install$$missing; going on without"; exit 0; }; \
		exit 1; \
	else \
		echo "ringlb needs these Debian packages:$$missing"; \
		echo "install them with:  sudo apt-get install -y$$missing"; \
		[ "$(2)" = optional ] && { echo "(optional: the tests that need them are skipped)"; exit 0; }; \
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
	$(call ensure,$(BROWSER_PKGS),optional)
	@command -v npm >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm \
			>/dev/null 2>&1 || echo "could not install npm"; }
	@touch $@

# newman, for the Postman collection's run.  Not behind the stamp above:
# looked for on every run, so that a tarball given later, or npm reaching
# its registry later, still installs it.  Its registry is asked first
# (10 s at most): offline, npm would spend minutes retrying.
newman-deps:
	@if [ -x "$(NEWMAN_BIN)" ]; then :; \
	elif [ -n "$(NEWMAN_TARBALL)" ]; then \
		echo "unpacking newman from $(NEWMAN_TARBALL) into $(NEWMAN_DIR)"; \
		if mkdir -p "$(NEWMAN_DIR)" && \
		    tar -xzf "$(NEWMAN_TARBALL)" -C "$(NEWMAN_DIR)" && \
		    [ -x "$(NEWMAN_BIN)" ]; then \
			echo "newman is $(NEWMAN_BIN)"; \
		else \
			echo "could not unpack newman from $(NEWMAN_TARBALL)" \
			    "(a tarball of its node_modules tree, such as" \
			    "newman-6.2.2.tgz); the Postman run is skipped"; \
		fi; \
	elif command -v npm >/dev/null 2>&1 && \
	    timeout 10 npm ping >/dev/null 2>&1; then \
		echo "installing $(NEWMAN) with npm into $(NEWMAN_DIR)"; \
		if timeout 300 npm install --silent --no-audit --no-fund \
		    --prefix "$(NEWMAN_DIR)" $(NEWMAN) >/dev/null 2>&1 && \
		    [ -x "$(NEWMAN_BIN)" ]; then \
			echo "newman is $(NEWMAN_BIN)"; \
		else \
			echo "npm could not install $(NEWMAN); the Postman run" \
			    "is skipped: give make test-deps" \
			    "NEWMAN_TARBALL=/path/to/newman-6.2.2.tgz"; \
		fi; \
	else \
		echo "newman is not installed and $$(command -v npm >/dev/null \
		    2>&1 && echo "npm cannot reach its registry" || \
		    echo "there is no npm"): the Postman run is skipped;" \
		    "install it with make test-deps" \
		    "NEWMAN_TARBALL=/path/to/newman-6.2.2.tgz (a tarball of" \
		    "its node_modules tree), or with npm reaching its registry"; \
	fi

deps: $(BUILD)/.deps-build
test-deps: $(BUILD)/.deps-test newman-deps

# Compiler and linker flags of the libraries, found once the packages are.
$(BUILD)/config.mk: $(BUILD)/.deps-build
	@pkg-config --exists libevent libcurl jansson libxxhash || \
		{ echo "pkg-config cannot find libevent, libcurl, jansson and libxxhash"; exit 1; }
	@echo "PKG_CFLAGS := $$(pkg-config --cflags libevent libcurl jansson libxxhash)" > $@
	@echo "PKG_LIBS := $$(pkg-config --libs libevent libcurl jansson libxxhash)" >> $@

# (Not for `clean`, nor for the Docker targets alone: they need neither
# the libraries nor a compiler on this machine.)
DOCKER_GOALS := build up up-detached down stop start rm logs rebuild
ifeq ($(filter clean,$(MAKECMDGOALS)),)
ifneq ($(MAKECMDGOALS),$(filter $(DOCKER_GOALS),$(MAKECMDGOALS)))
include $(BUILD)/config.mk
else ifeq ($(MAKECMDGOALS),)
include $(BUILD)/config.mk
endif
endif

# --- build ----------------------------------------------------------------
$(OBJ)/%.o: %.c $(BUILD)/config.mk
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# The dashboard page, compiled in as a byte array (od: no tool beyond
# coreutils).
$(BUILD)/gen/dashboard.c: src/dashboard.html
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	$(Q){ echo '/* generated by make from src/dashboard.html */'; \
	  echo '#include <stddef.h>'; \
	  echo 'const unsigned char dashboard_html[] = {'; \
	  od -An -v -tx1 $< | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; \
	  echo 'const size_t dashboard_html_len = sizeof(dashboard_html);'; \
	} > $@.tmp && mv $@.tmp $@

$(OBJ)/gen/dashboard.o: $(BUILD)/gen/dashboard.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# The ring's loops over 2^21 arcs are written to vectorize.
$(RING_SRCS:%.c=$(OBJ)/%.o): ALL_CFLAGS += -O3

$(BUILD)/ringlb: $(LB_OBJS) $(LIB_OBJS)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

$(BUILD)/ringlb-replica: $(REP_OBJS) $(LIB_OBJS)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

$(BUILD)/ringlb-analyze: $(ANA_OBJS) $(LIB_OBJS)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(ALL_LDLIBS) -lm

# The pool's state machine with a fake backend and fake heartbeats, which
# test_pool.c defines in place of backend.c and health.c.
$(BUILD)/test_pool: $(OBJ)/tests/unit/test_pool.o $(OBJ)/src/pool.o \
    $(OBJ)/src/state.o $(LIB_OBJS)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(ALL_LDLIBS) -lm

$(BUILD)/test_mbox: $(OBJ)/tests/unit/test_mbox.o $(OBJ)/src/mbox.o $(LIB_OBJS)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

$(BUILD)/test_%: $(OBJ)/tests/unit/test_%.o $(LIB_OBJS)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(ALL_LDLIBS) -lm

# --- run ------------------------------------------------------------------
# ringlb on port $(PORT) with 3 replica processes it starts itself;
# Ctrl-C stops it and them.  Extra options: make run ARGS="--replicas 5".
PORT ?= 5000
run: all
	$(BUILD)/ringlb --listen 0.0.0.0:$(PORT) $(ARGS)

# --- tests ----------------------------------------------------------------
test: all $(TEST_BINS) $(BUILD)/.deps-test newman-deps
	@sh tests/run.sh $(BUILD) $(PYTHON)

unit: $(TEST_BINS)
	@for t in $(TEST_BINS); do $$t || exit 1; done

e2e: all $(BUILD)/.deps-test newman-deps
	$(PYTHON) -m pytest -q tests/e2e

# docs/dashboard.png, the README's picture: ringlb with 3 replicas and some
# traffic, in headless Chromium (tests/e2e/dashboard_png.py).
dashboard-png: all
	$(PYTHON) tests/e2e/dashboard_png.py --build $(BUILD) --out docs/dashboard.png

# The whole suite on a build with AddressSanitizer and UndefinedBehavior-
# Sanitizer (in build/asan); any report fails it.
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=undefined
asan: $(BUILD)/.deps-test newman-deps
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan CFLAGS="$(ASAN_FLAGS)" \
		all $(BUILD)/asan/test_ring $(BUILD)/asan/test_util \
		$(BUILD)/asan/test_pool $(BUILD)/asan/test_mbox
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		RINGLB_TEST_SANITIZED=1 sh tests/run.sh $(BUILD)/asan $(PYTHON)

# The suites that exercise threads, on a build with ThreadSanitizer (in
# build/tsan) at 4 workers: forwarding, the admin API, replicas failing,
# start and stop, and membership churn under load.  Reports go to files,
# so that one from any process, even one killed by a test, fails it.
TSAN_FLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=thread
TSAN_SUITES := tests/e2e/test_forwarding.py tests/e2e/test_admin.py \
               tests/e2e/test_failures.py tests/e2e/test_lifecycle.py \
               tests/e2e/test_workers.py
tsan: $(BUILD)/.deps-test
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/tsan CFLAGS="$(TSAN_FLAGS)" \
		all $(BUILD)/tsan/test_mbox
	@rm -rf $(BUILD)/tsan/reports && mkdir -p $(BUILD)/tsan/reports
	@rc=0; TSAN_OPTIONS="log_path=$(abspath $(BUILD))/tsan/reports/tsan" \
		$(BUILD)/tsan/test_mbox || rc=1; TSAN_OPTIONS="log_path=$(abspath $(BUILD))/tsan/reports/tsan \
		second_deadlock_stack=1 suppressions=$(abspath tests/tsan.supp)" \
		RINGLB_WORKERS=4 RINGLB_TEST_SANITIZED=1 \
		RINGLB_BUILD="$(abspath $(BUILD))/tsan" $(PYTHON) -m pytest -q \
		-p no:cacheprovider --timeout=300 $(TSAN_SUITES) || rc=1; \
	if ls $(BUILD)/tsan/reports/tsan* >/dev/null 2>&1; then \
		cat $(BUILD)/tsan/reports/tsan*; \
		echo "ThreadSanitizer: $$(cat $(BUILD)/tsan/reports/tsan* | \
			grep -c '^WARNING: ThreadSanitizer') reports"; exit 1; \
	fi; \
	echo "ThreadSanitizer: 0 reports"; exit $$rc

# libFuzzer targets (clang), each run for FUZZ_SECONDS; the corpus grows
# in build/fuzz/corpus-NAME.  Any crash or broken invariant fails it.
FUZZ_TARGETS := ring query admin headers gate
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   := -std=c11 -D_GNU_SOURCE -g -O1 -Iinclude \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRCS    := $(RING_SRCS) src/util.c src/admin_body.c src/headers.c \
                src/gate.c src/respond.c src/log.c

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
# timing is asserted), at each worker count of WORKERS ("1 2").  ROUNDS,
# DURATION, CONNS, WORKERS and WRK_THREADS tune it.
bench: all
	$(call ensure,nginx-light haproxy wrk)
	@bash tests/bench/bench.sh $(BUILD)

# Instructions per proxied request, counted by valgrind's callgrind
# (stable on a busy machine, unlike time), with where they go; measured
# twice, and the two figures compared.  COST_REQUESTS, COST_RUNS tune it.
cost: all
	$(call ensure,valgrind curl)
	@bash tests/bench/cost.sh $(BUILD)

# ringlb's VmRSS and RssAnon, idle after some requests, at each worker count
# of RSS_WORKERS ("1 2 4"), and the anonymous memory a worker adds.
rss: all
	@bash tests/bench/rss.sh $(BUILD)

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

# --- Docker ---------------------------------------------------------------
# The classic targets around docker-compose.yml, with `docker compose` if
# it is there, else `docker-compose`.  Each of these may be set on the
# command line or in the environment, so that a second copy can run
# beside the first (make up COMPOSE_PROJECT_NAME=t RINGLB_PORT=5001
# RINGLB_NETWORK=t-net RINGLB_DOCKER_OWNER=t RINGLB_DOCKER_PREFIX=t-):
RINGLB_IMAGE        ?= ringlb:latest
RINGLB_PORT         ?= 5000
RINGLB_NETWORK      ?= net1
RINGLB_DOCKER_OWNER ?= ringlb
COMPOSE_PROJECT_NAME ?=
# The project docker-compose uses: the one given, else .env's (ringlb,
# whatever the checkout's folder is called).
PROJECT = $(or $(COMPOSE_PROJECT_NAME),$(shell sed -n \
	's/^COMPOSE_PROJECT_NAME=//p' .env 2>/dev/null),ringlb)
# The base image: Debian's own, found or pulled; where no registry is
# reachable, one made here by docker/mkbase.sh (RINGLB_BASE_IMAGE chooses).
DEBIAN_IMAGE := debian:bookworm-slim
LOCAL_BASE   := ringlb/debian:bookworm

# Looked for once, and only by the targets that use it.
COMPOSE_CMD = $(eval COMPOSE_CMD := $$(shell \
	if docker compose version >/dev/null 2>&1; then echo docker compose; \
	elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose; fi))$(COMPOSE_CMD)
COMPOSE = RINGLB_IMAGE='$(RINGLB_IMAGE)' RINGLB_PORT='$(RINGLB_PORT)' \
	RINGLB_NETWORK='$(RINGLB_NETWORK)' RINGLB_DOCKER_OWNER='$(RINGLB_DOCKER_OWNER)' \
	$(COMPOSE_CMD) $(if $(COMPOSE_PROJECT_NAME),-p '$(COMPOSE_PROJECT_NAME)')

.PHONY: build up up-detached down stop start rm logs rebuild docker-check docker-image

docker-check:
	@command -v docker >/dev/null 2>&1 || { \
		echo "these targets need Docker, which is not installed here;"; \
		echo "on Debian install it with:  sudo apt-get install -y docker.io docker-compose"; \
		exit 1; }
	@timeout 30 docker info >/dev/null 2>&1 || { \
		echo "the Docker daemon does not answer ($${DOCKER_HOST:-unix:///var/run/docker.sock}):"; \
		echo "start it (sudo systemctl start docker), or run make as a member of the group docker"; \
		exit 1; }
	@[ -n "$(COMPOSE_CMD)" ] || { \
		echo "neither 'docker compose' nor 'docker-compose' is installed;"; \
		echo "on Debian install it with:  sudo apt-get install -y docker-compose"; \
		exit 1; }

# The image, on Debian's bookworm-slim if it is here or can be pulled, else
# on a base made with debootstrap.
build: docker-check
	@base="$(RINGLB_BASE_IMAGE)"; \
	if [ -z "$$base" ]; then \
		if docker image inspect $(DEBIAN_IMAGE) >/dev/null 2>&1; then \
			base=$(DEBIAN_IMAGE); \
		elif docker image inspect $(LOCAL_BASE) >/dev/null 2>&1; then \
			base=$(LOCAL_BASE); \
		elif echo "pulling $(DEBIAN_IMAGE)" && \
			timeout 600 docker pull $(DEBIAN_IMAGE); then \
			base=$(DEBIAN_IMAGE); \
		else \
			echo "$(DEBIAN_IMAGE) can be neither found nor pulled"; \
			if ! command -v debootstrap >/dev/null 2>&1 && \
				[ "$$(id -u)" = 0 ]; then \
				echo "installing Debian packages: debootstrap"; \
				DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
					--no-install-recommends debootstrap >/dev/null || \
				{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
					apt-get install -y -qq --no-install-recommends \
					debootstrap >/dev/null; }; \
			fi; \
			sh docker/mkbase.sh $(LOCAL_BASE) || exit 1; \
			base=$(LOCAL_BASE); \
		fi; \
	fi; \
	echo "building $(RINGLB_IMAGE) on $$base"; \
	RINGLB_BASE_IMAGE="$$base" RINGLB_RUNTIME_IMAGE="$${RINGLB_RUNTIME_IMAGE:-$$base}" \
		$(COMPOSE) build ringlb || exit 1; \
	docker image prune -f \
		--filter label=org.opencontainers.image.title=ringlb >/dev/null

docker-image: docker-check
	@docker image inspect $(RINGLB_IMAGE) >/dev/null 2>&1 || \
		$(MAKE) --no-print-directory build

up: docker-image
	$(COMPOSE) up

up-detached: docker-image
	$(COMPOSE) up -d

# ringlb, on SIGTERM, stops and removes its replica containers; its own
# container stays, with its state file, so that `make start` (or
# docker-compose start, or make up-detached) brings the same replica set
# back, in new containers.
stop: docker-check
	$(COMPOSE) stop

start: docker-check
	$(COMPOSE) start

# ringlb's log and its replicas', each line labelled, until Ctrl-C.
logs: docker-check
	@sh docker/logs.sh '$(RINGLB_DOCKER_OWNER)' env $(COMPOSE) logs -f \
		$$([ -t 1 ] || echo --no-color)

# Containers labelled with the owner that a ringlb could not remove
# (killed, or stopped past its grace): removed by label.
define docker_leftover_containers
	ids=$$(docker ps -aq --filter 'label=ringlb.owner=$(RINGLB_DOCKER_OWNER)'); \
	if [ -n "$$ids" ]; then \
		echo "removing $$(echo $$ids | wc -w) replica container(s) labelled ringlb.owner=$(RINGLB_DOCKER_OWNER) that ringlb did not remove itself"; \
		docker rm -f $$ids >/dev/null || exit 1; \
	fi
endef

# The network, if compose left it (it was not compose's to remove).
define docker_leftover_network
	owner=$$(docker network inspect -f '{{index .Labels "ringlb.owner"}}' \
		'$(RINGLB_NETWORK)' 2>/dev/null); \
	if [ "$$owner" = '$(RINGLB_DOCKER_OWNER)' ]; then \
		echo "removing the network $(RINGLB_NETWORK)"; \
		docker network rm '$(RINGLB_NETWORK)' >/dev/null || exit 1; \
	fi
endef

# ringlb first (it removes its replicas on SIGTERM), then what it left
# (if it was killed), so that the network has no endpoint left when
# compose removes it; with nothing there, nothing is done.
down: docker-check
	@if [ -z "$$(docker ps -aq --filter 'label=com.docker.compose.project=$(PROJECT)')" ] && \
		[ -z "$$(docker ps -aq --filter 'label=ringlb.owner=$(RINGLB_DOCKER_OWNER)')" ] && \
		! docker network inspect '$(RINGLB_NETWORK)' >/dev/null 2>&1; then \
		echo "nothing to take down: no container of project $(PROJECT) or labelled ringlb.owner=$(RINGLB_DOCKER_OWNER), no network $(RINGLB_NETWORK)"; \
		exit 0; \
	fi; \
	$(COMPOSE) stop || exit 1; \
	$(docker_leftover_containers); \
	$(COMPOSE) down --remove-orphans || exit 1; \
	$(docker_leftover_network)

rm: docker-check
	@$(COMPOSE) rm -f -s || exit 1; \
	$(docker_leftover_containers)

# ringlb on Docker Swarm (docker/stack.yml): two balancers on 127.0.0.1:5000
# and :5001 over three replica services; see docker/swarm.sh.
.PHONY: swarm-up swarm-down
swarm-up: docker-image
	@sh docker/swarm.sh up

swarm-down: docker-check
	@sh docker/swarm.sh down

rebuild: docker-check
	@$(MAKE) --no-print-directory down
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory up-detached

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)
