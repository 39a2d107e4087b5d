# Wrappers around CMake; `make demo` and `make test` are all a fresh Debian 12 machine needs.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test unit integration demo bench asan asan-ci fuzz clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j 1

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

integration: build
	cd $(BUILD) && ctest --output-on-failure -L integration

demo: build
	$(BUILD)/shardline demo

bench: build
	bench/run.sh $(BUILD)

ASAN_FLAGS = -DCMAKE_BUILD_TYPE=Debug -DSHARDLINE_SANITIZE=ON $(CMAKE_FLAGS)
asan:
	$(MAKE) BUILD=build-asan CMAKE_FLAGS="$(ASAN_FLAGS)" test

# What CI runs under ASan + UBSan within its time limit: every unit test and the integration
# tests that mistreat the proxy (fuzzed clients, vanishing clients, hostile backends, crashes,
# cancels) plus the pooling and transparency suites. `make asan` runs everything.
ASAN_CI_INTEGRATION ?= integration\.(proxy_fuzz|server_resync|hostile_backend|fault|cancel_race|login_limits|proxy_pooling|transparency)$$
asan-ci:
	$(MAKE) BUILD=build-asan CMAKE_FLAGS="$(ASAN_FLAGS)" build
	cd build-asan && ctest --output-on-failure -j 1 -L unit
	cd build-asan && ctest --output-on-failure -j 1 -R '$(ASAN_CI_INTEGRATION)'

fuzz:
	scripts/fuzz.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz
