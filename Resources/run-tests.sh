#!/usr/bin/env bash
# The project's single test command: installs what is missing, builds the
# plugin and the tests, and runs every test (unit, simulator, integration,
# browser) through ctest. Usage: Resources/run-tests.sh [--no-deps] [ctest args...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ "${1:-}" = "--no-deps" ]; then
  shift
else
  bash .ci/install-deps.sh
fi

for dir in Resources/CloudSimulator UnitTests/Browser; do
  if [ -f "$dir/package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

BUILD="${CLOUD_INGEST_BUILD_DIR:-$ROOT/build}"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CLOUD_INGEST_CMAKE_ARGS:-}
cmake --build "$BUILD" -j"$(nproc)"
ctest --test-dir "$BUILD" --output-on-failure --timeout 900 "$@"
