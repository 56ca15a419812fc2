#!/usr/bin/env bash
# The project's single test command: installs what is missing, builds the
# plugin and the tests, and runs every test (unit, simulator, integration,
# browser, fuzz) through ctest, then the unit and integration tests again
# against an ASan+UBSan build of the plugin.
# Usage: Resources/run-tests.sh [--no-deps] [--no-sanitizers] [ctest args...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

deps=1 sanitizers=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-deps) deps=0 ;;
    --no-sanitizers) sanitizers=0 ;;
    *) break ;;
  esac
  shift
done
[ "$deps" = 1 ] && bash .ci/install-deps.sh

for dir in Resources/CloudSimulator UnitTests/Browser; do
  if [ -f "$dir/package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

status=0
BUILD="$ROOT/build"
echo "== Release build (RelWithDebInfo): every test"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$BUILD" -j"$(nproc)"
ctest --test-dir "$BUILD" --output-on-failure --timeout 900 "$@" || status=1

if [ "$sanitizers" = 1 ]; then
  # The slow end-to-end suites (benchmark, browser, fault soak) run once, above.
  echo "== ASan + UBSan build: unit and integration tests"
  ASAN_BUILD="$ROOT/build-asan"
  cmake -S . -B "$ASAN_BUILD" -DCMAKE_BUILD_TYPE=Debug -DCLOUD_INGEST_SANITIZE=ON
  cmake --build "$ASAN_BUILD" -j"$(nproc)"
  ASAN_OPTIONS=detect_leaks=1 ctest --test-dir "$ASAN_BUILD" --output-on-failure --timeout 900 \
    -L "unit|integration" -E "benchmark|webapp|faults" "$@" || status=1
fi
exit $status
