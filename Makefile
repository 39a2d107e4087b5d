# Wrappers around CMake; `make demo` and `make test` are all a fresh Debian 12 machine needs.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test unit integration demo bench asan fuzz clean

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

asan:
	$(MAKE) BUILD=build-asan CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DSHARDLINE_SANITIZE=ON" test

fuzz:
	scripts/fuzz.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz
