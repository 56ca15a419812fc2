#!/usr/bin/env bash
# The Debian 13 stage: builds the plugin and the unit tests with Debian 13's
# GCC 14 in a Debian 13 root made with debootstrap, and runs the unit tests and
# the integration tests that touch the Orthanc SDK against Debian 13's Orthanc
# 1.12.7 (PostgreSQL 17 and orthanc-postgresql 5.0 for the two-node cluster).
#
# Usage: .ci/debian13.sh [--fresh] [--prepare|--shell] [ctest args...]
#   --fresh    make the root again (CI's clean clone starts without one anyway)
#   --prepare  only make the root and install its packages (run-tests.sh does
#              this in the background while the Debian 12 stages run)
#   --shell    open a shell in the prepared root (sources in /src, build in /build)
#   ctest args go to the integration tests' ctest (e.g. -R test_send for one suite)
#
# Everything lives in build-debian13/ (CLOUD_INGEST_DEBIAN13_DIR overrides it):
# root/ is the Debian 13 system; its /src is a copy of this tree (taken on every
# run, mtimes kept, so a second run rebuilds only what changed), /build the CMake
# build. The npm packages are the tree's (npm ci on the host): they are plain
# JavaScript (no .node addon), so Debian 13's node runs them as they are, and
# the root needs no npm (whose Debian packages are half of the install).
# A finished root is reused (a second run takes minutes; missing packages are
# added). proc, dev and sys are mounted while the stage runs and unmounted on
# every exit; the root is never deleted with a mount in it.
# Needs root (debootstrap, chroot, mount) and the network to a Debian mirror.
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
WORK="$(realpath -m "${CLOUD_INGEST_DEBIAN13_DIR:-$SRC/build-debian13}")"
ROOT="$WORK/root"
SUITE=trixie

# The packages the stage needs (install-deps.sh's list for what it runs here).
PKGS=(
  build-essential cmake pkg-config ca-certificates procps curl openssl
  orthanc orthanc-dev orthanc-postgresql postgresql-17 libpq-dev
  dcmtk python3 python3-pydicom python3-numpy dcm2niix
  libjsoncpp-dev libcurl4-openssl-dev libssl-dev libboost-dev
  libgtest-dev libgmock-dev libsqlite3-dev libzip-dev
  nodejs chromium
)
# The suites that touch the SDK: sending, routes, operations and jobs,
# de-identification, ZIP, the page, and the cluster (run with two nodes).
INTEGRATION='^Integration\.test_(send|routes|operations|deidentify|zip|webapp|cluster|orthanc_versions)$'
CLUSTER_NODES=2

fresh=0 shell=0 prepare=0
while [ $# -gt 0 ]; do
  case "$1" in
    --fresh) fresh=1 ;;
    --prepare) prepare=1 ;;
    --shell) shell=1 ;;
    *) break ;;
  esac
  shift
done
if [ "$(id -u)" != 0 ]; then
  echo "debian13.sh: needs root (debootstrap, chroot, mount); run it with sudo" >&2
  exit 2
fi

# The mirror this machine's own apt sources name (deb822 or one-line format).
mirror() {
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' \
        | grep -v security | head -n1 || true)
  [ -n "$uri" ] || uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                         | awk '{print $2}' | grep -v security | head -n1 || true)
  echo "${DEBIAN13_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}

# Mount points in the stage's folder (the root, or a debootstrap cut short), deepest first.
mounts_below_work() {
  findmnt -rn -o TARGET | awk -v w="$WORK" 'index($0, w "/") == 1' | sort -r
}

undo_mounts() {
  local pid where m
  # A process left inside the root (a server a failed test did not stop) keeps
  # its mounts busy: stop those, by PID, first.
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    where=$(readlink "/proc/$pid/root" 2>/dev/null || true)
    if [ "$where" = "$ROOT" ] || [ "$where" = "$ROOT.partial" ]; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  for m in sys dev proc; do
    if mountpoint -q "$ROOT/$m"; then umount -R "$ROOT/$m" 2>/dev/null || true; fi
  done
  for m in $(mounts_below_work); do umount "$m" 2>/dev/null || umount -l "$m" || true; done
  if [ -n "$(mounts_below_work)" ]; then
    echo "debian13.sh: mounts left under $WORK:" >&2
    mounts_below_work >&2
    return 1
  fi
}

remove_root() {
  undo_mounts || true
  if [ -n "$(mounts_below_work)" ]; then
    echo "debian13.sh: refusing to delete $ROOT with mounts in it" >&2
    exit 1
  fi
  rm -rf --one-file-system "$ROOT" "$ROOT.partial"
}

in_root() {
  chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive "$@"
}

phase_start=$SECONDS
phase() {  # prints the time the previous phase took, then the next one's name
  local now=$SECONDS
  [ -z "${phase_name:-}" ] || echo "== Debian 13: $phase_name took $((now - phase_start)) s"
  phase_name="$1" phase_start=$now
  [ -z "$1" ] || echo "== Debian 13: $1"
}

mkdir -p "$WORK"
exec 9>"$WORK/.lock"
flock -n 9 || { echo "debian13.sh: waiting for the run that holds $WORK/.lock"; flock 9; }
trap 'undo_mounts' EXIT
trap 'exit 130' INT TERM
undo_mounts  # left by a run that was killed

if [ "$fresh" = 1 ] || [ ! -x "$ROOT/usr/bin/apt-get" ]; then
  remove_root
  command -v debootstrap >/dev/null || apt-get install -y -q --no-install-recommends debootstrap
  phase "debootstrap $SUITE from $(mirror)"
  # Into root.partial first: a root/ is always a finished debootstrap.
  debootstrap --variant=minbase "$SUITE" "$ROOT.partial" "$(mirror)" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/debootstrap.log"; exit 1; }
  mv "$ROOT.partial" "$ROOT"
fi

# What the root takes from the host on every run: name resolution, and the
# extra CA certificates (HTTPS from here may pass the host's intercepting proxy:
# without them npm, curl and the like fail with SELF_SIGNED_CERT_IN_CHAIN).
rm -f "$ROOT/etc/hosts" "$ROOT/etc/resolv.conf"  # links there would lead out of the root
cp /etc/hosts /etc/resolv.conf "$ROOT/etc/"
mkdir -p "$ROOT/usr/local/share/ca-certificates"
for crt in /usr/local/share/ca-certificates/*.crt; do
  [ -e "$crt" ] && cp "$crt" "$ROOT/usr/local/share/ca-certificates/"
done
# Packages start no service in the root; dpkg skips fsync and documentation.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
printf '%s\n' force-unsafe-io 'path-exclude=/usr/share/doc/*' 'path-exclude=/usr/share/man/*' \
  'path-exclude=/usr/share/info/*' >"$ROOT/etc/dpkg/dpkg.cfg.d/cloud-ingest-ci"

mount -t proc proc "$ROOT/proc"
for m in dev sys; do
  mount --rbind "/$m" "$ROOT/$m"
  mount --make-rslave "$ROOT/$m"
done

missing=()
for p in "${PKGS[@]}"; do
  in_root dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  phase "apt-get install (${#missing[@]} packages and their dependencies)"
  in_root apt-get update -q >"$WORK/apt.log" 2>&1 || { tail -n 30 "$WORK/apt.log"; exit 1; }
  in_root apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$WORK/apt.log" 2>&1 \
    || { tail -n 30 "$WORK/apt.log"; exit 1; }
  in_root apt-get clean
fi
in_root update-ca-certificates >/dev/null
if [ "$prepare" = 1 ]; then
  phase ""
  exit 0
fi
in_root dpkg-query -W -f='   ${Package} ${Version}\n' orthanc orthanc-postgresql postgresql-17 \
  gcc-14 cmake libzip-dev libjsoncpp-dev nodejs chromium

phase "copy of the sources"
for dir in Resources/CloudSimulator UnitTests/Browser; do
  [ -e "$SRC/$dir/node_modules/.package-lock.json" ] \
    || (cd "$SRC/$dir" && npm ci --no-audit --no-fund --loglevel=error)
done
# A fresh copy (deleted files go too), file times kept for the incremental
# build; node_modules copied apart (in a worktree they may be links).
rm -rf --one-file-system "$ROOT/src"
mkdir -p "$ROOT/src"
tar -C "$SRC" --exclude='./build*' --exclude=node_modules --exclude=.git --exclude=__pycache__ \
  -cf - . | tar -C "$ROOT/src" -xf -
for dir in Resources/CloudSimulator UnitTests/Browser; do
  mkdir "$ROOT/src/$dir/node_modules"
  tar -C "$SRC/$dir/node_modules/" -cf - . | tar -C "$ROOT/src/$dir/node_modules" -xf -
done
if find "$ROOT/src" -path '*/node_modules/*' \( -name '*.node' -o -name binding.gyp \) | grep -q .; then
  echo "debian13.sh: a native npm addon built on the host would not fit Debian 13" >&2
  exit 1
fi

if [ "$shell" = 1 ]; then
  phase ""
  in_root bash -l
  exit 0
fi

phase "build (GCC 14)"
in_root cmake -S /src -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$WORK/cmake.log" \
  || { tail -n 30 "$WORK/cmake.log"; exit 1; }
in_root cmake --build /build -j2 --target OrthancCloudIngest UnitTests

status=0
# The unit tests in one process (ctest starts one per test: three times longer),
# then the PostgreSQL store suite against PostgreSQL 17.
phase "unit tests"
in_root sh -c 'cd /build && ./UnitTests --gtest_filter=-*Postgres* --gtest_brief=1' || status=1
in_root ctest --test-dir /build --output-on-failure -R '^Store\.postgresql$' || status=1
phase "integration tests against Orthanc 1.12.7"
in_root env CLOUD_INGEST_CLUSTER_NODES=$CLUSTER_NODES \
  ctest --test-dir /build --output-on-failure --timeout 900 -R "$INTEGRATION" "$@" || status=1
phase ""
exit $status
