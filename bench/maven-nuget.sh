#!/usr/bin/env bash
# Hot metadata reads for issue 5, at 64 connections (wrk, 2 threads, 10 s each): Maven's
# artifact-level maven-metadata.xml and NuGet's registration index (plus the flat-container
# version list) for a package with 1,000 versions. Both are generated from indexed queries and
# cached per package revision (a deploy bumps the revision, so the next read rebuilds).
# No Java or .NET registry is installable on this machine to run side by side.
#   bench/maven-nuget.sh [versions]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
dur=${BENCH_SECONDS:-10}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q

work=$(mktemp -d /tmp/arca-mn.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=arca_bench_token; base="http://127.0.0.1:$port"
ARCA_ADMIN_TOKEN=$token ARCA_LOG=warn ./target/release/arca serve --listen 127.0.0.1:$port --data-dir "$work/arca" 2>"$work/arca.log" &
pid=$!
for _ in $(seq 300); do curl -s -o /dev/null "$base/health" && break; sleep 0.1; done
for t in MAVEN:mvn NUGET:nu; do
  curl -sf -X POST -H "x-api-key: $token" -H 'content-type: application/json' "$base/har/api/v1/registry" \
    -d "{\"identifier\":\"${t#*:}\",\"packageType\":\"${t%%:*}\",\"parentRef\":\"bench\",\"isPublic\":true}" >/dev/null
done
start=$(date +%s.%N)
python3 bench/populate.py maven "$base/pkg/bench/mvn/maven/" "$token" com.acme.bench:bench-lib "$n"
mid=$(date +%s.%N)
python3 bench/populate.py nuget "$base/pkg/bench/nu/nuget/api/v2/package" "$token" Bench.Pkg "$n"
end=$(date +%s.%N)
printf 'populate: %d Maven versions (pom + jar) in %.1f s, %d NuGet pushes in %.1f s\n' "$n" "$(echo "$mid - $start" | bc)" "$n" "$(echo "$end - $mid" | bc)"

measure() { # label url
  local out rps p99 errs
  out=$(wrk -t2 -c64 -d"${dur}s" --latency "$2")
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  errs=$(awk '/Non-2xx/{print $NF}' <<<"$out"); errs=${errs:-0}
  printf '%-40s %10s req/s   p99 %8s   non-2xx %s\n' "$1" "$rps" "$p99" "$errs"
}
size() { curl -s -o /dev/null -w '%{size_download}' "$1"; }
meta="$base/pkg/bench/mvn/maven/com/acme/bench/bench-lib/maven-metadata.xml"
reg="$base/pkg/bench/nu/nuget/registration/bench.pkg/index.json"
flat="$base/pkg/bench/nu/nuget/package/bench.pkg/index.json"
echo "== $n versions, 64 connections, ${dur}s each =="
echo "maven-metadata.xml $(size "$meta") bytes, registration index $(size "$reg") bytes (pages not inlined past 128 versions)"
measure "maven-metadata.xml (artifact level)" "$meta"
measure "NuGet registration index" "$reg"
page=$(curl -s "$reg" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][-2]["@id"])')
measure "NuGet registration page (64 leaves)" "$page"
measure "NuGet flat-container versions" "$flat"
echo "server CPU: $(ps -o times= -p "$pid") s, RSS: $(ps -o rss= -p "$pid") KiB"
