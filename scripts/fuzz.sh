#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets (fuzz/*_fuzz.cpp) with clang, ASan and UBSan in
# build-fuzz/, then lets each explore for FUZZ_SECONDS (default 60) from its stored corpus
# (fuzz/corpus/<name>, copied, so new inputs stay in build-fuzz/corpus/<name>). A crash, leak,
# sanitizer report or timeout fails the run and leaves the input in build-fuzz/artifacts/<name>/;
# add it to fuzz/corpus/<name>/ with the fix, and `make test` replays it from then on.
#
#   FUZZ_SECONDS=600 make fuzz            FUZZ_TARGETS="router config" make fuzz
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${FUZZ_SECONDS:-60}
BUILD=build-fuzz
scripts/install-deps.sh --if-missing
scripts/install-deps.sh --fuzz

names=()
for f in fuzz/*_fuzz.cpp; do
  n=$(basename "$f" _fuzz.cpp)
  if [[ -z ${FUZZ_TARGETS:-} || " $FUZZ_TARGETS " == *" $n "* ]]; then names+=("$n"); fi
done
(( ${#names[@]} > 0 )) || { echo "fuzz: no target matches FUZZ_TARGETS='${FUZZ_TARGETS:-}'" >&2; exit 2; }

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
  -DSHARDLINE_FUZZ=ON ${CMAKE_FLAGS:-} >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target "${names[@]/#/fuzz_}"

failed=()
for n in "${names[@]}"; do
  mkdir -p "$BUILD/corpus/$n" "$BUILD/artifacts/$n"
  cp -n fuzz/corpus/"$n"/* "$BUILD/corpus/$n/" 2>/dev/null || true
  echo "fuzz: $n for ${SECS} s"
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
       "$BUILD/fuzz_$n" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$BUILD/artifacts/$n/" "$BUILD/corpus/$n" >"$BUILD/fuzz_$n.log" 2>&1; then
    failed+=("$n")
    echo "fuzz: $n FAILED; input in $BUILD/artifacts/$n/, log $BUILD/fuzz_$n.log:" >&2
    grep -m 20 -E "ERROR|SUMMARY|==[0-9]+==|runtime error" "$BUILD/fuzz_$n.log" >&2 || tail -n 20 "$BUILD/fuzz_$n.log" >&2
  else
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$BUILD/fuzz_$n.log" | sed "s/^/fuzz: $n /"
    echo "fuzz: $n corpus now $(ls "$BUILD/corpus/$n" | wc -l) inputs"
  fi
done
if (( ${#failed[@]} > 0 )); then echo "fuzz: failed: ${failed[*]}" >&2; exit 1; fi
echo "fuzz: all ${#names[@]} targets ran ${SECS} s without a finding"
