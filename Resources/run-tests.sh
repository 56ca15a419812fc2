#!/usr/bin/env bash
# The project's single test command: installs what is missing, builds the
# plugin and the tests, and runs every test (unit, simulator, integration,
# browser, fuzz) through ctest, then the unit tests under ASan + UBSan and
# the integration tests against a UBSan build of the plugin.
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
  # Unit tests under ASan + UBSan. The integration tests run the plugin inside
  # Debian's uninstrumented Orthanc, where ASan's runtime cannot be preloaded
  # (it deadlocks in glibc's setlocale), so they use a UBSan-only plugin; the
  # slow end-to-end suites (benchmark, browser, fault soak) ran above.
  echo "== ASan + UBSan build: unit tests"
  cmake -S . -B "$ROOT/build-asan" -DCMAKE_BUILD_TYPE=Debug -DCLOUD_INGEST_SANITIZE=address,undefined \
    -DCLOUD_INGEST_INTEGRATION_TESTS=OFF
  cmake --build "$ROOT/build-asan" -j"$(nproc)" --target UnitTests
  ASAN_OPTIONS=detect_leaks=1 ctest --test-dir "$ROOT/build-asan" --output-on-failure -L unit "$@" \
    || status=1
  echo "== UBSan build: integration tests"
  cmake -S . -B "$ROOT/build-ubsan" -DCMAKE_BUILD_TYPE=Debug -DCLOUD_INGEST_SANITIZE=undefined
  cmake --build "$ROOT/build-ubsan" -j"$(nproc)" --target OrthancCloudIngest
  ctest --test-dir "$ROOT/build-ubsan" --output-on-failure --timeout 900 -L integration \
    -E "benchmark|webapp|faults|docker" "$@" || status=1
fi
exit $status
