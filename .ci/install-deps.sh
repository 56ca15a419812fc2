#!/usr/bin/env bash
# Installs everything the build, the tests and the demo need on Debian 12.
# Idempotent: safe to run again.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
PKGS=(
  build-essential cmake pkg-config
  orthanc orthanc-dev dcmtk python3-pydicom python3-numpy
  libjsoncpp-dev libcurl4-openssl-dev libssl-dev libboost-dev
  libgtest-dev libgmock-dev libsqlite3-dev libzip-dev
  chromium curl ca-certificates procps
)
# Node.js: keep a preinstalled one (e.g. NodeSource 20); otherwise Debian's.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The packaged Orthanc service must not hold port 4242/8042 or our storage;
# tests start their own Orthanc. Ignore failures on machines without systemd.
$SUDO systemctl stop orthanc >/dev/null 2>&1 || true
$SUDO systemctl disable orthanc >/dev/null 2>&1 || true
