#!/usr/bin/env bash
# The plugin's build steps, shared by the Dockerfile's build stage and by CI
# (which has no Docker engine, so it proves these steps by running them).
# Usage: Docker/build-plugin.sh OUTPUT_DIR   -> OUTPUT_DIR/libOrthancCloudIngest.so
set -euo pipefail
out=${1:?usage: build-plugin.sh OUTPUT_DIR}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${CLOUD_INGEST_DOCKER_BUILD_DIR:-$root/build-docker}"
# RelWithDebInfo, stripped below: the same objects as the build the test suite
# runs (and, with a compiler cache, the same compilations: run-tests.sh).
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLOUD_INGEST_INTEGRATION_TESTS=OFF
cmake --build "$build" -j"$(nproc)" --target OrthancCloudIngest
mkdir -p "$out"
cp -L "$build/libOrthancCloudIngest.so" "$out/libOrthancCloudIngest.so"
strip --strip-unneeded "$out/libOrthancCloudIngest.so"
# A plugin that does not export the SDK's entry points would load silently as nothing.
exports=$(nm -D --defined-only "$out/libOrthancCloudIngest.so")
for symbol in OrthancPluginInitialize OrthancPluginFinalize OrthancPluginGetName OrthancPluginGetVersion; do
  grep -qw "$symbol" <<<"$exports" || { echo "missing export $symbol" >&2; exit 1; }
done
echo "built $out/libOrthancCloudIngest.so"
