# Thin wrapper over CMake. `make demo` and `make test` do all set-up
# themselves on a fresh Debian 12 machine (run as root the first time).
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
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

# Everything: the unit suite, the interop tests, then the unit suite again
# under ASan+UBSan.
test: build build-asan
	cd $(BUILD) && ctest $(CTEST_FLAGS) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_FLAGS) -j $(JOBS) -L 'unit|cli'

test-unit: build
	cd $(BUILD) && ctest $(CTEST_FLAGS) -L unit

test-interop: build
	cd $(BUILD) && ctest $(CTEST_FLAGS) -L interop

demo: build
	./$(BUILD)/pairlink demo

# libFuzzer targets, each run for FUZZ_SECONDS from its seed corpus.
fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DPL_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	./scripts/run-fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

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
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
