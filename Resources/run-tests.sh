#!/usr/bin/env bash
# The project's single test command: installs what is missing, builds the
# plugin and the tests, and runs every test (unit, simulator, integration,
# browser, fuzz) through ctest; then the unit tests under ASan + UBSan, the
# suites that touch the SDK or crash-prone paths against a UBSan build of the
# plugin, and the Debian 13 stage (.ci/debian13.sh: GCC 14, Orthanc 1.12.7).
# Usage: Resources/run-tests.sh [--no-deps] [--no-sanitizers] [--no-debian13] [--quick]
#                               [ctest args...]
#   --quick  the developer's quick path (under 15 minutes): the unit tests, the
#            style check and the integration suites a change most likely breaks,
#            in build/ only (no sanitizer passes, no Debian 13 stage)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The integration suites that drive the plugin through the SDK's every
# callback (changes, REST, jobs, anonymization, ZIP) or through its crash and
# restart paths: these run again against the UBSan plugin.
UBSAN_SUITES='send|routes|operations|deidentify|zip|restart|shutdown|corrupt_db|bad_inputs|configuration'
# The quick path's integration suites: what a change most likely breaks.
QUICK_SUITES='send|routes|operations|configuration|deidentify|zip|security|webapp'

deps=1 sanitizers=1 debian13=1 quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --no-deps) deps=0 ;;
    --no-sanitizers) sanitizers=0 ;;
    --no-debian13) debian13=0 ;;
    --quick) quick=1 sanitizers=0 debian13=0 ;;
    *) break ;;
  esac
  shift
done
[ "$deps" = 1 ] && bash .ci/install-deps.sh

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
prepare_pid=""
if [ "$debian13" = 1 ]; then
  # The Debian 13 root (debootstrap, packages: minutes of network and disk)
  # is made in the background while the Debian 12 stages build and test.
  mkdir -p build-debian13
  $SUDO bash .ci/debian13.sh --prepare >build-debian13/prepare.log 2>&1 &
  prepare_pid=$!
  trap '[ -z "$prepare_pid" ] || kill "$prepare_pid" 2>/dev/null || true' EXIT
fi
# A compiler cache lets the Docker build steps (test_docker_build, same flags)
# reuse the Release build's objects.
if command -v ccache >/dev/null; then
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache CCACHE_NOHASHDIR=1
fi

for dir in Resources/CloudSimulator UnitTests/Browser; do
  # The quick path keeps node_modules that are there.
  if [ -f "$dir/package-lock.json" ] \
     && { [ "$quick" = 0 ] || [ ! -e "$dir/node_modules/.package-lock.json" ]; }; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

status=0
BUILD="$ROOT/build"
stage_start=$SECONDS
stage_done() { echo "== $1: $((SECONDS - stage_start)) s"; stage_start=$SECONDS; }

if [ "$quick" = 1 ]; then
  echo "== Quick path: unit tests, style, integration ($QUICK_SUITES)"
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cmake --build "$BUILD" -j"$(nproc)" --target OrthancCloudIngest UnitTests
  (cd "$BUILD" && ./UnitTests --gtest_filter=-*Postgres* --gtest_brief=1) || status=1
  ctest --test-dir "$BUILD" --output-on-failure --timeout 900 \
    -R "^(Store\.postgresql|Style\.clang-format|Integration\.test_($QUICK_SUITES))\$" "$@" \
    || status=1
  stage_done "quick path"
  exit $status
fi

echo "== Release build (RelWithDebInfo): every test"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$BUILD" -j"$(nproc)"
ctest --test-dir "$BUILD" --output-on-failure --timeout 900 "$@" || status=1
stage_done "release build and every test"

if [ "$sanitizers" = 1 ]; then
  # Unit tests under ASan + UBSan. The integration tests run the plugin inside
  # Debian's uninstrumented Orthanc, where ASan's runtime cannot be preloaded
  # (it deadlocks in glibc's setlocale), so they use a UBSan-only plugin.
  echo "== ASan + UBSan build: unit tests"
  cmake -S . -B "$ROOT/build-asan" -DCMAKE_BUILD_TYPE=Debug -DCLOUD_INGEST_SANITIZE=address,undefined \
    -DCLOUD_INGEST_INTEGRATION_TESTS=OFF
  cmake --build "$ROOT/build-asan" -j"$(nproc)" --target UnitTests
  # One process for the whole binary (ctest starts one per test: 3 to 4 times
  # longer), then the PostgreSQL store suite.
  (cd "$ROOT/build-asan" && ASAN_OPTIONS=detect_leaks=1 ./UnitTests --gtest_filter=-*Postgres* \
     --gtest_brief=1) || status=1
  ASAN_OPTIONS=detect_leaks=1 ctest --test-dir "$ROOT/build-asan" --output-on-failure \
    -R '^Store\.postgresql$' || status=1
  stage_done "ASan + UBSan unit tests"
  echo "== UBSan build: integration tests ($UBSAN_SUITES)"
  cmake -S . -B "$ROOT/build-ubsan" -DCMAKE_BUILD_TYPE=Debug -DCLOUD_INGEST_SANITIZE=undefined
  cmake --build "$ROOT/build-ubsan" -j"$(nproc)" --target OrthancCloudIngest
  ctest --test-dir "$ROOT/build-ubsan" --output-on-failure --timeout 900 \
    -R "^Integration\.test_($UBSAN_SUITES)\$" "$@" || status=1
  stage_done "UBSan integration tests"
fi

if [ "$debian13" = 1 ]; then
  echo "== Debian 13 stage (.ci/debian13.sh; --no-debian13 skips it)"
  wait "$prepare_pid" || { status=1; tail -n 30 build-debian13/prepare.log; }
  prepare_pid=""
  cat build-debian13/prepare.log
  $SUDO bash .ci/debian13.sh "$@" || status=1
  stage_done "Debian 13 stage"
fi
exit $status
