#!/usr/bin/env bash
# Scale-out: blob PUT/GET throughput and manifest GET rate against
#   - one node on local disk (PostgreSQL metadata),
#   - one node on S3 (a node of the cluster: Garage, three nodes, replication factor 3),
#   - all three nodes of the cluster at once (each client stream on its own node).
# On a 2-core machine three nodes cannot scale linearly: the figures that compare are CPU-seconds
# per GiB and per 1,000 requests, of the arca processes and of Garage separately.
#   bench/cluster.sh [MiB]      (default 256 MiB per blob; BENCH_SECONDS for wrk, default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-256}
dur=${BENCH_SECONDS:-10}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q

work=$(mktemp -d /tmp/arca-bench-cluster.XXXXXX)
chmod 755 "$work"   # PostgreSQL runs as its own user
export ARCA_CLUSTER_DIR="$work/cluster" ARCA_BIN="$PWD/target/release/arca" ARCA_LOG=warn
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bash scripts/cluster.sh down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }
cpu() { local t=0 p; for p in "$@"; do t=$(echo "$t + $(awk '{print ($14 + $15) / 100}' "/proc/$p/stat")" | bc -l); done; echo "$t"; }

lines=$(bash scripts/cluster.sh up)
eval "$lines"
nodes=("$NODE1_URL" "$NODE2_URL" "$NODE3_URL")
arca_pids=($(cat "$ARCA_CLUSTER_DIR"/arca*/pid))
garage_pids=($(cat "$ARCA_CLUSTER_DIR"/garage/node*/pid))
# A fourth node on local disk, same database.
lp=$(free_port)
ARCA_ADMIN_TOKEN=$ADMIN_TOKEN ARCA_DATABASE_URL=$(cat "$ARCA_CLUSTER_DIR/database-url") \
  "$ARCA_BIN" serve --listen 127.0.0.1:$lp --data-dir "$work/local" 2>"$work/local.log" &
lpid=$!; pids+=($lpid); local_url="http://127.0.0.1:$lp"; wait_http "$local_url/health"

auth="x-api-key: $ADMIN_TOKEN"
curl -sf -X POST -H "$auth" -H 'content-type: application/json' "$NODE1_URL/har/api/v1/registry?space_ref=default/+" \
  -d '{"identifier":"docker","packageType":"DOCKER","parentRef":"default","isPublic":true}' >/dev/null

for i in 1 2 3; do head -c $((mib * 1024 * 1024)) /dev/urandom >"$work/layer$i"; done
digest() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

put_blob() { # base repo file
  local loc sep
  loc=$(curl -sf -X POST -H "$auth" -D - -o /dev/null "$1/v2/$2/blobs/uploads/" | awk 'tolower($1)=="location:"{print $2}' | tr -d '\r')
  case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -sf -X PUT -H "$auth" -H 'content-type: application/octet-stream' -T "$3" "$1${loc}${sep}digest=$(digest "$3")" -o /dev/null
}
get_blob() { curl -sf -H "$auth" "$1/v2/$2/blobs/$(digest "$3")" -o /dev/null; }

# label: runs "$@" once per base URL given in BASES (in parallel), each with its own layer.
transfer() {
  local label=$1 op=$2; shift 2
  local bases=("$@") n=${#@} t0 t1 a0 a1 g0 g1 i jobs=()
  a0=$(cpu "${arca_pids[@]}" "$lpid"); g0=$(cpu "${garage_pids[@]}"); t0=$(date +%s.%N)
  for i in $(seq 1 "$n"); do
    "$op" "${bases[$((i - 1))]}" default/docker/big "$work/layer$i" & jobs+=($!)
  done
  for j in "${jobs[@]}"; do wait "$j"; done
  t1=$(date +%s.%N); a1=$(cpu "${arca_pids[@]}" "$lpid"); g1=$(cpu "${garage_pids[@]}")
  local gib
  gib=$(echo "$mib * $n / 1024" | bc -l)
  printf '%-26s %-4s %7.0f MiB/s   arca CPU %5.2f s/GiB   garage CPU %5.2f s/GiB\n' "$label" "${op%_blob}" \
    "$(echo "$mib * $n / ($t1 - $t0)" | bc -l)" "$(echo "($a1 - $a0) / $gib" | bc -l)" "$(echo "($g1 - $g0) / $gib" | bc -l)"
}

push_small() { # base repo
  printf '{}' >"$work/cfg"; printf 'layer' >"$work/small"
  put_blob "$1" "$2" "$work/cfg"; put_blob "$1" "$2" "$work/small"
  local m="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"$(digest "$work/cfg")\",\"size\":2},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"$(digest "$work/small")\",\"size\":5}]}"
  curl -sf -X PUT -H "$auth" -H 'content-type: application/vnd.oci.image.manifest.v1+json' --data-binary "$m" "$1/v2/$2/manifests/v1" -o /dev/null
}
manifests() { # label base...
  local label=$1; shift
  local n=$# c=$((64 / $#)) a0 a1 total=0 outs=() i b
  local tok
  tok=$(curl -sf "$1/v2/token?scope=repository:default/docker/small:pull" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  a0=$(cpu "${arca_pids[@]}" "$lpid")
  i=0
  for b in "$@"; do
    wrk -t1 -c"$c" -d"${dur}s" -H "Authorization: Bearer $tok" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
      "$b/v2/default/docker/small/manifests/v1" >"$work/wrk$i" & outs+=($!)
    i=$((i + 1))
  done
  for p in "${outs[@]}"; do wait "$p"; done
  a1=$(cpu "${arca_pids[@]}" "$lpid")
  for i in $(seq 0 $((n - 1))); do
    total=$(echo "$total + $(awk '/Requests\/sec/{print $2}' "$work/wrk$i")" | bc -l)
    grep -q 'Non-2xx' "$work/wrk$i" && { echo "non-2xx answers: $(cat "$work/wrk$i")" >&2; exit 1; }
  done
  printf '%-26s manifest GET %8.0f req/s   arca CPU %5.2f s per 1k requests\n' "$label" "$total" \
    "$(echo "($a1 - $a0) * 1000 / ($total * $dur)" | bc -l)"
}

echo "== ${mib} MiB blobs (PUT then GET); manifest GETs at 64 connections for ${dur}s =="
transfer "1 node, local disk" put_blob "$local_url"
transfer "1 node, local disk" get_blob "$local_url"
# New content for the S3 runs (the local node shares the database, not the blobs).
for i in 1 2 3; do head -c $((mib * 1024 * 1024)) /dev/urandom >"$work/layer$i"; done
transfer "1 node, S3 (Garage x3)" put_blob "$NODE1_URL"
transfer "1 node, S3 (Garage x3)" get_blob "$NODE1_URL"
for i in 1 2 3; do head -c $((mib * 1024 * 1024)) /dev/urandom >"$work/layer$i"; done
transfer "3 nodes, S3 (Garage x3)" put_blob "${nodes[@]}"
transfer "3 nodes, S3 (Garage x3)" get_blob "${nodes[@]}"
push_small "$NODE1_URL" default/docker/small
push_small "$local_url" default/docker/small
manifests "1 node, local disk" "$local_url"
manifests "1 node, S3" "$NODE1_URL"
manifests "3 nodes, S3" "${nodes[@]}"
