# dipstorage - one GNU Makefile for the program, its tests, fuzzers and benchmarks.
#
#   make            build ./dipstorage and the tools
#   make test       install missing Debian packages, build with -Werror, run every test
#   make asan       the same tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make demo       the main job: a local storage network fed generated NetFlow, queried
#   make fuzz       build the libFuzzer targets (clang) and run each for FUZZ_SECONDS
#                   (or FUZZ_RUNS inputs; FUZZ_TARGETS picks some)
#   make bench-store, bench-collect, ...   benchmarks (tools/bench/)

CC ?= cc
PKGS := libxml-2.0 libxslt libexslt openssl zlib libisal libuv cunit
BUILD ?= build
OPT ?= -O2 -g
WARN := -Wall -Wextra -Werror -Wno-unused-parameter
CPPFLAGS += -D_GNU_SOURCE -MMD -MP -Isrc -I.
CFLAGS += $(OPT) $(WARN) -std=c11 -pthread $(SANITIZE) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread
LDFLAGS += $(SANITIZE)

# Modules are picked up by folder: adding a .c file needs no Makefile change.
LIB_DIRS := src/common src/flow src/store src/net src/route src/collect src/access src/cluster src/timeseries xpath
LIB_SRC := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
CLI_SRC := $(wildcard src/cli/*.c)
FLOWGEN_SRC := $(wildcard tools/flowgen/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_SUITES := $(patsubst tests/unit/test_%.c,%,$(UNIT_SRC))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
FLOWGEN_OBJ := $(FLOWGEN_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/%.o) $(BUILD)/tests/run_tests.o
LIB := $(BUILD)/libdip.a
# The default build puts the programs at the top; other builds (asan, fuzz)
# keep theirs inside their build folder, so they never replace ./dipstorage.
PROG := $(if $(filter build,$(BUILD)),dipstorage,$(BUILD)/dipstorage)
FLOWGEN := $(if $(filter build,$(BUILD)),tools/flowgen/flowgen,$(BUILD)/flowgen)

.PHONY: all test asan deps demo fuzz clean bench bench-store bench-xpath bench-collect bench-collect-rate bench-cluster bench-front-kill
all: $(PROG) $(FLOWGEN)

deps:
	@sh tools/deps

$(PROG): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(FLOWGEN): $(FLOWGEN_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(FLOWGEN_OBJ) $(LIB) $(LDLIBS)

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# The unit test runner registers one CUnit suite per tests/unit/test_<module>.c
# (each defines `int dip_suite_<module>(void)`) and one e2e suite running
# tests/e2e/*.sh; the list is generated from the file names.
$(BUILD)/tests/suites.h: $(UNIT_SRC) Makefile
	@mkdir -p $(dir $@)
	@{ for s in $(UNIT_SUITES); do echo "DIP_SUITE($$s)"; done; } > $@.tmp && \
	  (cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@)

$(BUILD)/tests/run_tests.o: tests/run_tests.c $(BUILD)/tests/suites.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -I$(BUILD)/tests $(CFLAGS) -c -o $@ $<

$(BUILD)/run_tests: $(UNIT_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(UNIT_OBJ) $(LIB) $(LDLIBS)

test: deps
	$(MAKE) all $(BUILD)/run_tests
	DIP_BIN=$(CURDIR)/$(PROG) DIP_FLOWGEN=$(CURDIR)/$(FLOWGEN) ./$(BUILD)/run_tests $(TESTS)

asan: deps
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  CC=$(CC) test

demo: deps
	$(MAKE) all
	sh tools/demo.sh

# ---- fuzzing (clang + libFuzzer) ----
# FUZZ_RUNS=N runs each target for N inputs instead of FUZZ_SECONDS;
# FUZZ_TARGETS="netflow_v5 ipfix" picks targets (default: all).
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?=
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
FUZZ_BUILD := build-fuzz
FUZZ_BINS := $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_TARGETS))
fuzz: deps
	$(MAKE) CC=clang BUILD=$(FUZZ_BUILD) OPT="-O1 -g" \
	  SANITIZE="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined" $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do \
	  n=$$(basename $$f); mkdir -p $(FUZZ_BUILD)/corpus/$$n $(FUZZ_BUILD)/artifacts; \
	  echo "== $$n ($(if $(FUZZ_RUNS),$(FUZZ_RUNS) inputs,$(FUZZ_SECONDS)s))"; \
	  seeds=tests/fuzz/corpus/$$n; [ -d $$seeds ] || seeds=; \
	  $$f $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_SECONDS)) -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$n- $(FUZZ_BUILD)/corpus/$$n $$seeds || exit 1; \
	done
$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libdip.a
	clang $(CPPFLAGS) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libdip.a $(LDLIBS)

BENCH_BINS := $(patsubst %.c,%,$(wildcard tools/bench/*.c))
tools/bench/%: tools/bench/%.c $(LIB)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

bench: bench-store bench-xpath bench-collect bench-cluster
bench-store: all tools/bench/bench_store
	sh tools/bench/bench_store.sh
bench-xpath: tools/bench/bench_xpath
	./tools/bench/bench_xpath
bench-collect: all tools/bench/bench_collect
	./tools/bench/bench_collect
	sh tools/bench/bench_collect_rate.sh
bench-collect-rate: all
	sh tools/bench/bench_collect_rate.sh
bench-cluster: all tools/bench/bench_cluster
	sh tools/bench/bench_cluster.sh
bench-front-kill: all
	sh tools/bench/bench_front_kill.sh

clean:
	rm -rf build build-asan build-fuzz dipstorage tools/flowgen/flowgen $(BENCH_BINS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
