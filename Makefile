# SPDX-License-Identifier: Apache-2.0
# Thin wrapper over CMake. `make demo` and `make test` do all set-up
# themselves on a fresh Debian 12 machine (run as root the first time).
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
COV_BUILD  ?= build-cov
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 30
CTEST_FLAGS ?= --output-on-failure
# make install: where (PREFIX) and under which staging root (DESTDIR).
PREFIX     ?= /usr/local
DESTDIR    ?=

.PHONY: all deps build compile build-asan test test-unit test-asan test-interop demo fuzz bench install deb clean format

all: build

deps:
	@./scripts/install-deps.sh

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: deps compile

# The build alone, without set-up: what install and deb use, so that they
# never install system packages or run npm.
compile: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPL_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# Everything: the unit suite, the interop tests, then the unit, CLI and
# relay cluster suites again under ASan+UBSan.
test: build build-asan
	cd $(BUILD) && ctest $(CTEST_FLAGS) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_FLAGS) -j $(JOBS) -L 'unit|cli|cluster'

test-unit: build
	cd $(BUILD) && ctest $(CTEST_FLAGS) -L unit

test-interop: build
	cd $(BUILD) && ctest $(CTEST_FLAGS) -L interop

demo: build
	./$(BUILD)/pairlink demo

# libFuzzer targets, each run for FUZZ_SECONDS from its seed corpus.
fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -DPL_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	./scripts/run-fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Line coverage of the unit label (gcov, reported by gcovr): the runtime, the
# stores (the bar: 90 %), the platform and the transports, then the whole
# source tree.
COV_REPORT = gcovr -r . --object-directory $(COV_BUILD) --exclude-unreachable-branches
COV_SUMMARY = --print-summary 2>/dev/null | grep -E '^(lines|functions):'
coverage: deps
	cmake -S . -B $(COV_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPL_COVERAGE=ON >/dev/null
	cmake --build $(COV_BUILD) -j $(JOBS)
	find $(COV_BUILD) -name '*.gcda' -delete
	@# notes of sources that were moved or deleted since the last build
	find $(COV_BUILD) -name '*.c.gcno' | while read -r g; do \
	  s=$${g#*.dir/}; s=$${s%.gcno}; \
	  [ -f "$$s" ] || [ -f "$(COV_BUILD)/$$s" ] || rm -f "$$g"; done
	cd $(COV_BUILD) && ctest $(CTEST_FLAGS) -j $(JOBS) -L unit
	@for d in src/runtime/ src/store/ src/platform/ src/transport/ src/; do \
	  echo "== $$d"; $(COV_REPORT) --filter "$$d" $(COV_SUMMARY); done
	$(COV_REPORT) --filter 'src/' --txt $(COV_BUILD)/coverage.txt 2>/dev/null
	@echo "per file: $(COV_BUILD)/coverage.txt"

bench: build
	./scripts/run-bench.sh $(BUILD)

# Builds if needed (CMake only), then installs; `make deps` (as root) first on
# a machine without the -dev packages.
install: compile
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

# Debian packages pairlink_VERSION_ARCH.deb and libpairlink-dev_VERSION_ARCH.deb
# in $(BUILD)/ (CPack; see the end of CMakeLists.txt).
deb: compile
	cd $(BUILD) && cpack -G DEB

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(COV_BUILD)
