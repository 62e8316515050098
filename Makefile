# Keel build. `make` builds build/keel; `make test` runs every suite;
# `make asan` builds and runs the tests under ASan+UBSan; `make lint` runs
# cppcheck and clang-tidy over src/; `make spec` runs the
# WebAssembly core spec suite on both tiers; `make demo` is the quick start.
# Debian packages, and the npm packages of examples/shop/reviews (the
# AssemblyScript compiler), are installed on demand by scripts/install-deps.sh.

CC       ?= cc
BUILD    ?= build
OPT      ?= -O2 -g
SAN      ?=
CFLAGS   := -std=c17 $(OPT) -Wall -Wextra -Werror -fvisibility=hidden \
            -D_GNU_SOURCE -Isrc $(SAN)
LDFLAGS  := -rdynamic $(SAN)
LIBS     := -lh2o-evloop -Wl,-Bstatic -lfyaml -ltcc -lsqlite3 -lhiredis -Wl,-Bdynamic \
            -ldl -lpthread -lm

WASM_CC     := clang --target=wasm32-wasi --sysroot=/usr
WASM_CFLAGS := -O2 -Wall -Werror

SRC      := $(sort $(wildcard src/*/*.c))
OBJ      := $(SRC:src/%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/main.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
GUEST_SRC := $(sort $(wildcard tests/guests/*.c tests/hostile/*.c))
GUEST_WASM := $(patsubst tests/%.c,$(BUILD)/%.wasm,$(GUEST_SRC))
COMPONENT_SRC  := $(sort $(wildcard tests/components/*.c))
COMPONENT_WASM := $(COMPONENT_SRC:tests/components/%.c=$(BUILD)/components/%.wasm) \
                  $(BUILD)/components/release_v2.wasm $(BUILD)/components/release_bad.wasm \
                  $(BUILD)/components/release_slow.wasm
# Test components built as WASI commands; the others are reactors.
COMMAND_COMPONENTS := command cgi_env bad_cgi up_cgi
# examples/shop: waPC components are WASI reactors; legacy (WAGI) is a command.
SHOP_WAPC := gateway catalog cart auth
SHOP_WAGI := legacy
# examples/shop/reviews: a waPC component in AssemblyScript, compiled by asc
# from its own node_modules (npm ci from its package-lock.json when missing).
SHOP_AS     := reviews
SHOP_AS_DIR := examples/shop/reviews
SHOP_AS_SRC := $(wildcard $(SHOP_AS_DIR)/assembly/*.ts) $(SHOP_AS_DIR)/asconfig.json
SHOP_AS_NPM := $(SHOP_AS_DIR)/node_modules/.package-lock.json
SHOP_WASM := $(patsubst %,$(BUILD)/shop/%.wasm,$(SHOP_WAPC) $(SHOP_WAGI) $(SHOP_AS))
WAT_SRC  := $(sort $(wildcard tests/wat/*.wat))
WAT_WASM := $(WAT_SRC:tests/wat/%.wat=$(BUILD)/wat/%.wasm)

# Sources whose change alters generated code: part of every cache key.
CODEGEN_SRC := src/engine/glue.c src/engine/translate.c src/engine/split.c \
               src/engine/tier_fast.c src/engine/tier_opt.c src/base/version.h
CODEGEN_ID  := $(shell cat $(CODEGEN_SRC) | sha256sum | cut -c1-16)

.PHONY: all deps test unit guests asan lint spec demo bench fuzz clean
all: $(BUILD)/keel

deps:
	@bash scripts/install-deps.sh

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/engine/module.o: src/engine/module.c $(CODEGEN_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DKEEL_CODEGEN_ID='"$(CODEGEN_ID)"' -MMD -MP -c $< -o $@

$(BUILD)/obj/main.o: src/main.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libkeel.a: $(OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/keel: $(MAIN_OBJ) $(BUILD)/libkeel.a
	$(CC) $(LDFLAGS) $(MAIN_OBJ) -Wl,--whole-archive $(BUILD)/libkeel.a -Wl,--no-whole-archive $(LIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libkeel.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) $< -Wl,--whole-archive $(BUILD)/libkeel.a -Wl,--no-whole-archive -lcmocka $(LIBS) -o $@

$(BUILD)/guests/%.wasm: tests/guests/%.c
	@mkdir -p $(dir $@)
	$(WASM_CC) $(WASM_CFLAGS) $< -o $@

# Hostile guests are WASI commands, except wapc_*.c: waPC reactors on sdk/c.
$(BUILD)/hostile/%.wasm: tests/hostile/%.c sdk/c/keel.h
	@mkdir -p $(dir $@)
	$(WASM_CC) $(WASM_CFLAGS) $(if $(filter wapc_%,$*),-mexec-model=reactor -Isdk/c) $< -o $@

$(BUILD)/components/%.wasm: tests/components/%.c sdk/c/keel.h
	@mkdir -p $(dir $@)
	$(WASM_CC) $(WASM_CFLAGS) $(if $(filter $*,$(COMMAND_COMPONENTS)),,-mexec-model=reactor) -Isdk/c $< -o $@

# Releases of tests/components/release.c for the deploy tests.
$(BUILD)/components/release_v2.wasm: tests/components/release.c sdk/c/keel.h
	@mkdir -p $(dir $@)
	$(WASM_CC) $(WASM_CFLAGS) -mexec-model=reactor -DRELEASE=2 -Isdk/c $< -o $@
$(BUILD)/components/release_bad.wasm: tests/components/release.c sdk/c/keel.h
	@mkdir -p $(dir $@)
	$(WASM_CC) $(WASM_CFLAGS) -mexec-model=reactor -DRELEASE=3 -DRELEASE_BROKEN -Isdk/c $< -o $@
$(BUILD)/components/release_slow.wasm: tests/components/release.c sdk/c/keel.h
	@mkdir -p $(dir $@)
	$(WASM_CC) $(WASM_CFLAGS) -mexec-model=reactor -DRELEASE=4 -DRELEASE_SLOW_MS=40 -Isdk/c $< -o $@

$(BUILD)/shop/%.wasm: examples/shop/%.c examples/shop/shop.h sdk/c/keel.h
	@mkdir -p $(dir $@)
	$(WASM_CC) $(WASM_CFLAGS) $(if $(filter $*,$(SHOP_WAGI)),,-mexec-model=reactor) -Isdk/c $< -o $@

$(SHOP_AS_NPM): $(SHOP_AS_DIR)/package-lock.json
	cd $(SHOP_AS_DIR) && npm ci --no-audit --no-fund
	@touch $@

$(BUILD)/shop/reviews.wasm: $(SHOP_AS_SRC) $(SHOP_AS_NPM)
	@mkdir -p $(dir $@)
	cd $(SHOP_AS_DIR) && npx --no-install asc assembly/index.ts --config asconfig.json \
	    -o $(abspath $@)

$(BUILD)/wat/%.wasm: tests/wat/%.wat
	@mkdir -p $(dir $@)
	wat2wasm $< -o $@

unit: $(UNIT_BIN)
guests: $(GUEST_WASM) $(WAT_WASM) $(COMPONENT_WASM) $(SHOP_WASM)

test: deps
	@$(MAKE) --no-print-directory all unit guests
	@bash tests/run-all.sh $(BUILD)

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all unit guests
	@ASAN_OPTIONS=detect_leaks=1:handle_segv=0:allow_user_segv_handler=1 \
	    UBSAN_OPTIONS=print_stacktrace=1 KEEL_SKIP_SPEC=1 bash tests/run-all.sh build-asan

# libFuzzer targets (tests/fuzz/fuzz_*.c) against a clang ASan+UBSan build
# of libkeel in build-fuzz; each runs FUZZ_SECONDS from its seed corpus
# (tests/fuzz/corpus/NAME; new inputs go to build-fuzz/corpus/NAME, crashes
# to build-fuzz/crash-NAME-*). Fails on the first crash, leak or hang
# (tests/fuzz/lsan.supp: a known libfyaml leak).
FUZZ_SECONDS ?= 30
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES   := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined" \
	    build-fuzz/libkeel.a $(FUZZ_NAMES:%=build-fuzz/fuzz/%)
	@set -e; for n in $(FUZZ_NAMES); do \
	    mkdir -p build-fuzz/corpus/$$n; \
	    echo "fuzz $$n: $(FUZZ_SECONDS) s"; \
	    ASAN_OPTIONS=detect_leaks=1:handle_segv=0:allow_user_segv_handler=1 \
	    LSAN_OPTIONS=suppressions=$(CURDIR)/tests/fuzz/lsan.supp \
	    build-fuzz/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	        -artifact_prefix=build-fuzz/crash-$$n- build-fuzz/corpus/$$n tests/fuzz/corpus/$$n \
	        2>build-fuzz/fuzz-$$n.log || { tail -n 40 build-fuzz/fuzz-$$n.log; exit 1; }; \
	    grep -E '^stat::number_of_executed_units' build-fuzz/fuzz-$$n.log; \
	done

build-fuzz/fuzz/%: tests/fuzz/fuzz_%.c build-fuzz/libkeel.a
	@mkdir -p $(dir $@)
	clang $(CFLAGS) -fsanitize=fuzzer $(LDFLAGS) $< -Wl,--whole-archive build-fuzz/libkeel.a \
	    -Wl,--no-whole-archive $(LIBS) -o $@

# Static analysis of src/ (not tests/, not generated code); any finding
# fails. cppcheck: Debian's, options here, library-header noise in
# .cppcheck-suppressions; `_Noreturn` is spelled as the GNU attribute, which
# cppcheck 2.10 understands, and one architecture and KEEL_CODEGEN_ID are
# defined so the #error guards do not stop it. clang-tidy-14: checks in
# .clang-tidy, one stamp per file in $(BUILD)/lint so a rerun only revisits
# what changed, two at a time. True false positives are suppressed inline
# with a reason.
CPPCHECK   ?= cppcheck
CLANG_TIDY ?= clang-tidy-14
LINT_DEFS  := -D_GNU_SOURCE -DKEEL_CODEGEN_ID='"lint"'
LINT_SRC   := $(SRC) src/main.c
LINT_HDR   := $(wildcard src/*/*.h)
LINT_TIDY  := $(LINT_SRC:src/%.c=$(BUILD)/lint/%.tidy)
lint: deps
	@$(MAKE) --no-print-directory -j2 lint-files
	@echo "lint: cppcheck and clang-tidy clean over $(words $(LINT_SRC)) files"

.PHONY: lint-files
lint-files: $(BUILD)/lint/cppcheck.ok $(LINT_TIDY)

$(BUILD)/lint/cppcheck.ok: $(LINT_SRC) $(LINT_HDR) .cppcheck-suppressions
	@mkdir -p $(dir $@)
	$(CPPCHECK) --quiet --std=c11 --enable=warning,performance,portability \
	    --inline-suppr --error-exitcode=1 --suppressions-list=.cppcheck-suppressions \
	    $(LINT_DEFS) '-D_Noreturn=__attribute__((noreturn))' -D__x86_64__ -Isrc -j2 src
	@touch $@

$(BUILD)/lint/%.tidy: src/%.c $(LINT_HDR) .clang-tidy
	@mkdir -p $(dir $@)
	@echo "clang-tidy $<"
	@$(CLANG_TIDY) --quiet $< -- -std=c17 $(LINT_DEFS) -Isrc 2>$(@:.tidy=.log) || \
	    { cat $(@:.tidy=.log) >&2; exit 1; }
	@touch $@

spec: deps all
	@python3 tests/spec/run_spec.py --keel $(BUILD)/keel --build $(BUILD)

demo: deps
	@$(MAKE) --no-print-directory all guests
	@bash scripts/demo.sh $(BUILD)

bench: deps all
	@KEEL=$(BUILD)/keel bash bench/run.sh

clean:
	rm -rf build build-asan build-fuzz

-include $(OBJ:.o=.d) $(MAIN_OBJ:.o=.d)
