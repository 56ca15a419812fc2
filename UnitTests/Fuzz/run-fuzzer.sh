#!/usr/bin/env bash
# Builds one libFuzzer target with clang (ASan + UBSan) and runs it for a
# fixed time from a fresh corpus seeded with the project's examples.
# Usage: run-fuzzer.sh NAME SECONDS OUTDIR   (NAME: ApiResponses, Configuration, RestBody, Router)
set -euo pipefail
name=$1 seconds=$2 out=$3
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$root"  # the source lists below are relative to the repository
case "$name" in
  ApiResponses) sources=(Plugin/Core/Cloud/ApiResponses.cpp Plugin/Core/Cloud/ErrorResponses.cpp
                        Plugin/Core/Cloud/ResponseText.cpp Plugin/Core/Cloud/Http.cpp
                        Plugin/Core/Url.cpp Plugin/Core/JsonText.cpp) ;;
  Configuration) sources=(Plugin/Core/Configuration/*.cpp Plugin/Core/Url.cpp
                          Plugin/Core/Deidentify/BasicProfile.cpp Plugin/Core/DicomTags.cpp) ;;
  RestBody) sources=(Plugin/Rest/RestBody.cpp Plugin/Core/JsonText.cpp) ;;
  Router) sources=(Plugin/Rest/Permissions.cpp Plugin/Rest/RestApi.cpp Plugin/Rest/RestBody.cpp
                  Plugin/Rest/RestInput.cpp Plugin/Rest/RestJson.cpp Plugin/Rest/RoutePath.cpp
                  Plugin/Core/Cloud/ApiResponses.cpp Plugin/Core/Cloud/ErrorResponses.cpp
                  Plugin/Core/Cloud/ResponseText.cpp Plugin/Core/Cloud/Http.cpp Plugin/Core/Url.cpp
                  Plugin/Core/JsonText.cpp Plugin/Core/Time.cpp Plugin/Core/Store/StudyRecord.cpp
                  Plugin/Core/Configuration/SendWindows.cpp
                  Plugin/Core/Configuration/ConfigurationSecurity.cpp
                  Plugin/Core/Configuration/ConfigurationReaders.cpp) ;;
  *) echo "unknown fuzz target $name" >&2; exit 2 ;;
esac
mkdir -p "$out"
binary="$out/fuzz-$name"
cd "$root"
# shellcheck disable=SC2046
clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -DCLOUD_INGEST_VERSION=\"fuzz\" -I Plugin -I UnitTests $(pkg-config --cflags jsoncpp libcurl libpq) \
  "UnitTests/Fuzz/Fuzz$name.cpp" "${sources[@]}" \
  $(pkg-config --libs jsoncpp libcurl libpq) -o "$binary"
corpus="$out/corpus-$name"
rm -rf "$corpus" && mkdir -p "$corpus"
cp Configuration/*.json "$corpus/"
printf '{"order_id":"0b6f3c1e-9a4d-4c2b-8f7e-000000000001"}' > "$corpus/order"
printf '{"url":"http://127.0.0.1/b/k?X-Amz-Signature=x","expires_in":900,"headers":{"A":"b"}}' > "$corpus/url"
printf '{"access_token":"t","token_type":"Bearer","expires_in":3600}' > "$corpus/token"
printf '{"metadata":{"k":"v"},"mode":"Instances"}' > "$corpus/send"
if [ "$name" = Router ]; then  # requests, one field a line (FuzzRouter.cpp)
  study=0123abcd-0123abcd-0123abcd-0123abcd-0123abcd
  printf 'POST\notto\napplication/json\n/studies/\na\n60000\n/send\n\n{}' > "$corpus/route-long-send"
  printf 'POST\n\napplication/json\n/studies/\n/\n300\n/cancel\n\n' > "$corpus/route-long-cancel"
  printf 'POST\nada\napplication/json\n/studies/%s/send\n\n\n\n\n{"mode":"Zip"}' "$study" > "$corpus/route-send"
  printf 'POST\notto\napplication/json\n/orders/0b6f3c1e-9a4d-4c2b-8f7e-000000000001/metadata\n\n\n\n\n{"k":1}' > "$corpus/route-order"
  printf 'GET\nvera\n\n/studies\n\n\n\nstate=sent&limit=3&since=2026-11-28T17:04:26Z\n' > "$corpus/route-list"
  printf 'POST\nada\nmultipart/form-data; boundary=x\n/queue/pause\n\n\n\n\n{"cancel_running":true}' > "$corpus/route-pause"
  printf 'GET\nada\n\n/app/\nindex.html\n1\n\n\n' > "$corpus/route-app"
fi
cd "$out"
"$binary" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
  -print_final_stats=1 "$corpus" 2>&1 | tail -n 15
echo "fuzz target $name: no finding in $seconds s"
