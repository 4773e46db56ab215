#!/usr/bin/env bash
# OCI distribution, Arca side by side with Debian's docker-registry (CNCF distribution) in the
# same run: a 1 GiB layer uploaded (monolithic POST + PUT with curl) and downloaded, and manifest
# GETs at 64 connections (wrk, 2 threads). Prints throughput, server CPU-seconds and peak RSS.
# Both servers allow anonymous reads (Arca: a public registry; distribution: no auth) and run on
# local disk; Arca with SQLite.
#   bench/oci.sh [MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
dur=${BENCH_SECONDS:-10}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
command -v docker-registry >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null; }
cargo build --release -q

work=$(mktemp -d /tmp/arca-oci.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }   # utime + stime, in seconds (USER_HZ 100)
hwm() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }          # peak RSS, KiB

head -c $((mib * 1024 * 1024)) /dev/urandom > "$work/layer"
digest="sha256:$(sha256sum "$work/layer" | cut -d' ' -f1)"

# Arca.
ap=$(free_port); token=arca_bench_token
ARCA_ADMIN_TOKEN=$token ARCA_LOG=warn ./target/release/arca serve --listen 127.0.0.1:$ap --data-dir "$work/arca" 2>"$work/arca.log" &
apid=$!; pids+=($apid); wait_http "http://127.0.0.1:$ap/health"
curl -sf -X POST -H "x-api-key: $token" -H 'content-type: application/json' "http://127.0.0.1:$ap/har/api/v1/registry" \
  -d '{"identifier":"docker","packageType":"DOCKER","parentRef":"bench","isPublic":true}' >/dev/null

# distribution.
dp=$(free_port)
cat > "$work/dist.yml" <<YAML
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $work/dist }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$dp }
YAML
docker-registry serve "$work/dist.yml" >"$work/dist.log" 2>&1 &
dpid=$!; pids+=($dpid); wait_http "http://127.0.0.1:$dp/v2/"

# label base repo auth-header pid
transfer() {
  local label=$1 base=$2 repo=$3 auth=$4 pid=$5 loc t0 t1 c0 c1
  c0=$(cpu "$pid"); t0=$(date +%s.%N)
  loc=$(curl -sf -X POST -H "$auth" -D - -o /dev/null "$base/v2/$repo/blobs/uploads/" | awk 'tolower($1)=="location:"{print $2}' | tr -d '\r')
  case "$loc" in http*) ;; *) loc="$base$loc" ;; esac
  case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -sf -X PUT -H "$auth" -H 'content-type: application/octet-stream' -T "$work/layer" "${loc}${sep}digest=$digest" -o /dev/null
  t1=$(date +%s.%N); c1=$(cpu "$pid")
  printf '%-28s upload   %7.0f MiB/s   server CPU %5.2f s/GiB\n' "$label" "$(echo "$mib / ($t1 - $t0)" | bc -l)" "$(echo "($c1 - $c0) * 1024 / $mib" | bc -l)"
  c0=$(cpu "$pid"); t0=$(date +%s.%N)
  curl -sf -H "$auth" "$base/v2/$repo/blobs/$digest" -o /dev/null
  t1=$(date +%s.%N); c1=$(cpu "$pid")
  printf '%-28s download %7.0f MiB/s   server CPU %5.2f s/GiB   peak RSS %d MiB\n' "$label" "$(echo "$mib / ($t1 - $t0)" | bc -l)" "$(echo "($c1 - $c0) * 1024 / $mib" | bc -l)" "$(( $(hwm "$pid") / 1024 ))"
}
# A small image to GET the manifest of.
put_blob() { # base repo auth file digest (POST + PUT, which every registry supports)
  local loc sep
  loc=$(curl -sf -X POST -H "$3" -D - -o /dev/null "$1/v2/$2/blobs/uploads/" | awk 'tolower($1)=="location:"{print $2}' | tr -d '\r')
  case "$loc" in http*) ;; *) loc="$1$loc" ;; esac
  case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -sf -X PUT -H "$3" -H 'content-type: application/octet-stream' --data-binary @"$4" "${loc}${sep}digest=$5" -o /dev/null
}
push_image() { # base repo auth: a small image to GET the manifest of
  local cdig ldig m
  printf '{}' > "$work/cfg"; cdig="sha256:$(sha256sum "$work/cfg" | cut -d' ' -f1)"
  printf 'layer' > "$work/small"; ldig="sha256:$(sha256sum "$work/small" | cut -d' ' -f1)"
  put_blob "$1" "$2" "$3" "$work/cfg" "$cdig"
  put_blob "$1" "$2" "$3" "$work/small" "$ldig"
  m="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"$cdig\",\"size\":2},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"$ldig\",\"size\":5}]}"
  curl -sf -X PUT -H "$3" -H 'content-type: application/vnd.oci.image.manifest.v1+json' --data-binary "$m" "$1/v2/$2/manifests/v1" -o /dev/null
}
measure() { # label url pid
  local out rps p99 c0 c1
  c0=$(cpu "$3")
  out=$(wrk -t2 -c64 -d"${dur}s" --latency -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$2")
  c1=$(cpu "$3")
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out"); p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  printf '%-28s manifest GET %10s req/s   p99 %8s   server CPU %.1f s\n' "$1" "$rps" "$p99" "$(echo "$c1 - $c0" | bc -l)"
}

echo "== ${mib} MiB layer; manifest GETs at 64 connections for ${dur}s =="
transfer "arca" "http://127.0.0.1:$ap" bench/docker/big "x-api-key: $token" "$apid"
transfer "distribution (Debian)" "http://127.0.0.1:$dp" bench/big "x-bench: 1" "$dpid"
push_image "http://127.0.0.1:$ap" bench/docker/small "x-api-key: $token"
push_image "http://127.0.0.1:$dp" bench/small "x-bench: 1"
# Anonymous pulls from the public registry go through the token flow, as clients do.
atoken=$(curl -sf "http://127.0.0.1:$ap/v2/token?scope=repository:bench/docker/small:pull" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
c0=$(cpu "$apid")
out=$(wrk -t2 -c64 -d"${dur}s" --latency -H "Authorization: Bearer $atoken" -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$ap/v2/bench/docker/small/manifests/v1")
c1=$(cpu "$apid")
printf '%-28s manifest GET %10s req/s   p99 %8s   server CPU %.1f s\n' "arca (anonymous token)" "$(awk '/Requests\/sec/{print $2}' <<<"$out")" "$(awk '$1=="99%"{print $2}' <<<"$out")" "$(echo "$c1 - $c0" | bc -l)"
measure "distribution (Debian)" "http://127.0.0.1:$dp/v2/bench/small/manifests/v1" "$dpid"
echo "peak RSS: arca $(( $(hwm "$apid") / 1024 )) MiB, distribution $(( $(hwm "$dpid") / 1024 )) MiB"
