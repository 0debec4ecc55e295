#!/usr/bin/env bash
# The whole test suite: builds tokenmill with warnings as errors and runs every test (labels
# unit, cli, fuzz, gpu, slow), builds it again with AddressSanitizer + UndefinedBehaviorSanitizer
# and runs every test again, then checks formatting with clang-format.
# GPU tests skip themselves without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "== build (warnings as errors)"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTM_WERROR=ON >/dev/null
cmake --build build-test -j"$jobs" >/dev/null
echo "== tests"
ctest --test-dir build-test --output-on-failure -j"$jobs"

echo "== build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTM_WERROR=ON -DTM_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null
echo "== tests under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"

echo "== format (clang-format, .clang-format)"
files=$(git ls-files '*.c' '*.h' '*.cu' '*.cuh')
clang-format --dry-run --Werror $files
echo "format: $(echo "$files" | wc -w) files clean"
