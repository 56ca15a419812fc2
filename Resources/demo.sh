#!/usr/bin/env bash
# The README's demo on Debian 12: install the dependencies, build the plugin, then run
# Resources/demo.py (cloud simulator + Orthanc with the plugin on free 127.0.0.1 ports,
# a generated study sent end to end). Needs root or sudo for the installation step.
# Usage: Resources/demo.sh [--no-deps] [--exit] [--keep] [--timeout S]
#   --no-deps  skip .ci/install-deps.sh;  --exit  stop once the study is sent (for tests)
set -euo pipefail
cd "$(dirname "$0")/.."

install_deps=1
args=()
for arg in "$@"; do
  case "$arg" in
    --no-deps) install_deps=0 ;;
    *) args+=("$arg") ;;
  esac
done

if [ "$install_deps" = 1 ]; then
  bash .ci/install-deps.sh
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j2 --target OrthancCloudIngest
if [ ! -f Resources/CloudSimulator/node_modules/.package-lock.json ]; then
  (cd Resources/CloudSimulator && npm ci --no-audit --no-fund)
fi
export CLOUD_INGEST_PLUGIN="$PWD/build/libOrthancCloudIngest.so"
exec /usr/bin/python3 Resources/demo.py "${args[@]}"
