# patronsync: one Makefile for every binary, the tests, the demo and the bench.
# `make` builds into build/; `make SANITIZE=1` builds with ASan+UBSan into build-asan/;
# BUILD=DIR puts a build elsewhere (parallel work trees of objects).

PKGS := libzmq libprotobuf-c hiredis sqlite3 libsodium libpcre2-8
CC ?= cc
SANITIZE ?= 0
ifeq ($(SANITIZE),1)
  B := $(or $(BUILD),build-asan)
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  OPT := -O1 -g
else
  B := $(or $(BUILD),build)
  SANFLAGS :=
  OPT := -O2 -g
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
        -Wno-unused-parameter -Wvla -Wpointer-arith
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SANFLAGS) \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -Ilib -isystem $(B)/proto -Ischeduler
LDLIBS_ALL := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcsv -lpthread -lm

PROTO_SRC := proto/patronsync.proto
PROTO_C := $(B)/proto/patronsync.pb-c.c
PROTO_O := $(B)/proto/patronsync.pb-c.o

LIB_SRC := $(wildcard lib/*.c)
LIB_O := $(patsubst %.c,$(B)/%.o,$(LIB_SRC)) $(PROTO_O)

# Each binary: its folder's main.c plus the folder's other modules.
define module_objs
$(patsubst %.c,$(B)/%.o,$(filter-out $(1)/main.c,$(wildcard $(1)/*.c)))
endef
SCHED_O := $(call module_objs,scheduler)
BROKER_O := $(call module_objs,broker)
WORKER_O := $(call module_objs,worker)
CLI_O := $(call module_objs,cli)
MODS_O := $(SCHED_O) $(BROKER_O) $(WORKER_O) $(CLI_O)

BINS := $(B)/patron-scheduler $(B)/patron-broker $(B)/patron-worker $(B)/patronctl
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
TOOL_BINS := $(patsubst tests/tools/%.c,$(B)/tools/%,$(wildcard tests/tools/*.c))
# LD_PRELOAD shims of the tests (tests/shim/): never linked into the programs
SHIMS := $(patsubst tests/shim/%.c,$(B)/tools/lib%.so,$(wildcard tests/shim/*.c))

.SECONDARY:
.PHONY: all deps build unit test test-plain demo bench chaos fuzz clean compose-check
all: $(BINS) $(UNIT_BINS) $(TOOL_BINS) $(SHIMS)

build: all

# Debian packages the build, the tests and the demo need (idempotent, quiet when present).
DEB_PKGS := build-essential pkg-config libzmq3-dev libprotobuf-c-dev protobuf-c-compiler \
            libhiredis-dev libsqlite3-dev libcsv-dev libsodium-dev libpcre2-dev redis-server sqlite3 \
            python3 tzdata clang
deps:
	@./tools/install-deps $(DEB_PKGS)

$(B)/proto/%.pb-c.c $(B)/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(B)/proto
	@echo "  PROTOC $<"
	@protoc-c --proto_path=proto --c_out=$(B)/proto $<

$(B)/proto/%.pb-c.o: $(B)/proto/%.pb-c.c
	@$(CC) -std=c11 $(OPT) $(SANFLAGS) $(shell pkg-config --cflags libprotobuf-c) -c $< -o $@

$(B)/%.o: %.c $(PROTO_C) $(wildcard lib/*.h) $(wildcard */*.h)
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS_ALL) -c $< -o $@

$(B)/libps.a: $(LIB_O)
	@rm -f $@
	@ar rcs $@ $^

$(B)/libmods.a: $(MODS_O)
	@mkdir -p $(B)
	@rm -f $@
	@ar rcs $@ $(MODS_O)

$(B)/patron-scheduler: $(B)/scheduler/main.o $(SCHED_O) $(B)/libps.a
	@echo "  LD $@"
	@$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS_ALL)
$(B)/patron-broker: $(B)/broker/main.o $(BROKER_O) $(B)/libps.a
	@echo "  LD $@"
	@$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS_ALL)
$(B)/patron-worker: $(B)/worker/main.o $(WORKER_O) $(B)/libps.a
	@echo "  LD $@"
	@$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS_ALL)
$(B)/patronctl: $(B)/cli/main.o $(CLI_O) $(B)/libps.a
	@echo "  LD $@"
	@$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(B)/tests/%: tests/unit/%.c tests/unit/t.h $(B)/libmods.a $(B)/libps.a
	@mkdir -p $(B)/tests
	@echo "  LD $@"
	@$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -o $@ $< $(B)/libmods.a $(B)/libps.a $(LDLIBS_ALL)

$(B)/tools/%: tests/tools/%.c $(B)/libps.a
	@mkdir -p $(B)/tools
	@echo "  LD $@"
	@$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -o $@ $< $(B)/libps.a $(LDLIBS_ALL)

# Uninstrumented even in the sanitized build: a preloaded library comes
# before the sanitizer's runtime (the tests set verify_asan_link_order=0).
$(B)/tools/lib%.so: tests/shim/%.c
	@mkdir -p $(B)/tools
	@echo "  SO $@"
	@$(CC) -std=gnu11 -O1 -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

# Unit tests only (fast, used while developing).
unit: deps
	@$(MAKE) --no-print-directory all
	@./tests/run --unit-only --build $(B)

# The whole suite, on the plain build and on the ASan/UBSan build.
test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SANITIZE=1 all
	@./tests/run --build build --build-asan build-asan

test-plain: deps
	@$(MAKE) --no-print-directory all
	@./tests/run --build build

demo: deps
	@$(MAKE) --no-print-directory all
	@./tools/demo

bench: deps
	@$(MAKE) --no-print-directory all
	@./bench/run

chaos: deps
	@$(MAKE) --no-print-directory SANITIZE=1 all
	@CHAOS=1 ./tests/run --build build-asan --only chaos

# The csvscan libFuzzer target (tests/fuzz/) for a bounded time: the broker's
# record bounds and the workers' libcsv parse must agree on any input.
FUZZ_SECONDS ?= 60
fuzz:
	@./tests/fuzz/run.sh $(FUZZ_SECONDS)

# docker-compose.yml checked by docker-compose itself (`config -q`: parsed
# and validated; nothing is run, no Docker daemon needed). Debian's
# docker-compose is installed through the same idempotent setup as the
# rest; where it cannot be (not root, no apt) and no `docker compose`
# plugin is there either, the check says plainly that it skipped.
compose-check:
	@if ./tools/install-deps docker-compose && command -v docker-compose >/dev/null 2>&1; then \
	    docker-compose config -q && \
	    echo "compose-check: docker-compose.yml is valid (docker-compose $$(docker-compose version --short))"; \
	elif docker compose version >/dev/null 2>&1; then \
	    docker compose config -q && echo "compose-check: docker-compose.yml is valid (docker compose)"; \
	else \
	    echo "compose-check: SKIPPED: docker-compose is not installed and could not be installed (see above);" \
	         "docker-compose.yml was not checked"; \
	fi

clean:
	rm -rf build build-asan
