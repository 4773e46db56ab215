#!/usr/bin/env bash
# A/B of two Arca binaries in one run of one script, so that machine noise hits both alike: each
# binary in turn serves the same data (a generic file; npm, PyPI, Cargo and Maven metadata of a
# package with N versions) and is measured the same way (wrk, 64 connections, 2 threads; curl for
# the file). Prints both figures, new/old ratios, and server CPU-seconds per unit of work.
#   bench/ab.sh <old arca binary> <new arca binary> [versions] [file MiB]
# Build the old one from another checkout, e.g.:
#   git worktree add /tmp/old <rev> && (cd /tmp/old && CARGO_TARGET_DIR=$PWD/target cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1; new=$2; n=${3:-500}; size_mib=${4:-512}
dur=${BENCH_SECONDS:-10}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
work=$(mktemp -d /tmp/arca-ab.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/file.bin"
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

# One binary: start, populate, measure; one "name value unit cpu" line per figure into $2.
run() {
  local bin=$1 out=$2 port token=arca_bench_token base
  port=$(free_port); base="http://127.0.0.1:$port"
  rm -rf "$work/data"
  ARCA_ADMIN_TOKEN=$token ARCA_LOG=warn ARCA_GC_INTERVAL_SECS=0 "$bin" serve --listen 127.0.0.1:$port --data-dir "$work/data" 2>"$work/log" &
  pid=$!
  for _ in $(seq 200); do curl -sf "$base/health" >/dev/null && break; sleep 0.05; done
  for t in GENERIC:files NPM:npm PYTHON:py CARGO:crates MAVEN:mvn; do
    curl -sf -X POST -H "x-api-key: $token" -H 'content-type: application/json' "$base/har/api/v1/registry" \
      -d "{\"identifier\":\"${t#*:}\",\"packageType\":\"${t%%:*}\",\"parentRef\":\"bench\",\"isPublic\":true}" >/dev/null
  done
  python3 bench/populate.py npm "$base/pkg/bench/npm/npm/" "$token" bench-pkg "$n"
  python3 bench/populate.py pypi "$base/pkg/bench/py/python/" "x:$token" bench-pkg "$n"
  python3 bench/populate.py cargo "$base/pkg/bench/crates/cargo" "$token" bench_crate "$n"
  python3 bench/populate.py maven "$base/pkg/bench/mvn/maven/" "$token" com.acme.bench:bench-lib "$n"
  local c0 c1 t
  c0=$(cpu)
  t=$(curl -sf -u "x:$token" -T "$work/file.bin" -o /dev/null -w '%{time_total}' "$base/pkg/bench/files/generic/big/1/file.bin")
  c1=$(cpu)
  echo "upload_MiB/s $(python3 -c "print($size_mib/$t)") $(python3 -c "print(($c1-$c0)/$ticks/($size_mib/1024))")" >> "$out"
  c0=$(cpu)
  t=$(curl -sf -u "x:$token" -o /dev/null -w '%{time_total}' "$base/pkg/bench/files/generic/big/1/file.bin")
  c1=$(cpu)
  echo "download_MiB/s $(python3 -c "print($size_mib/$t)") $(python3 -c "print(($c1-$c0)/$ticks/($size_mib/1024))")" >> "$out"
  for m in \
    "npm_packument $base/pkg/bench/npm/npm/bench-pkg" \
    "npm_abbreviated $base/pkg/bench/npm/npm/bench-pkg application/vnd.npm.install-v1+json" \
    "pypi_simple_json $base/pkg/bench/py/python/simple/bench-pkg/ application/vnd.pypi.simple.v1+json" \
    "cargo_index $base/pkg/bench/crates/cargo/index/be/nc/bench_crate" \
    "maven_metadata $base/pkg/bench/mvn/maven/com/acme/bench/bench-lib/maven-metadata.xml"; do
    set -- $m
    local args=(-t2 -c64 -d"${dur}s")
    [ $# -gt 2 ] && args+=(-H "accept: $3")
    c0=$(cpu)
    local rps
    rps=$(wrk "${args[@]}" "$2" | awk '/Requests\/sec/{print $2}')
    c1=$(cpu)
    # CPU-seconds per 10,000 requests.
    echo "${1}_req/s $rps $(python3 -c "print(($c1-$c0)/$ticks/($rps*$dur/10000))")" >> "$out"
  done
  echo "peak_RSS_MiB $(awk '/VmHWM/{print $2/1024}' "/proc/$pid/status") 0" >> "$out"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

: > "$work/old"; : > "$work/new"
run "$old" "$work/old"
run "$new" "$work/new"
python3 - "$work/old" "$work/new" "$n" "$size_mib" <<'PY'
import sys
old = {l.split()[0]: l.split()[1:] for l in open(sys.argv[1])}
new = {l.split()[0]: l.split()[1:] for l in open(sys.argv[2])}
print(f"== A/B: {sys.argv[3]} versions, {sys.argv[4]} MiB file, 64 connections ==")
print(f"{'figure':26} {'old':>10} {'new':>10} {'new/old':>8}   {'CPU old':>8} {'CPU new':>8}  (CPU-s per GiB or per 10k requests)")
for k in old:
    o, oc = map(float, old[k]); v, vc = map(float, new[k])
    print(f"{k:26} {o:10.1f} {v:10.1f} {v / o if o else 0:8.2f}   {oc:8.3f} {vc:8.3f}")
PY
