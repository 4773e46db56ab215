#!/usr/bin/env bash
# Group read cost: hot metadata reads through a group (GitFlic VIRTUAL) of 3 hosted members next to
# the same reads from one hosted registry, at 64 connections (wrk, 2 threads, 10 s each): an npm
# packument, a PyPI simple page and a Maven maven-metadata.xml. The single registry holds N
# versions; in the group the first member holds the same N versions and the two others 10 each
# (the same version numbers: merged away, first member wins), so both answers have the same size
# and the difference is the group's own work (walking its members, one package lookup per member,
# merging). Prints each pair and the group's share of the single registry's throughput.
#   bench/groups.sh [versions]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-500}
dur=${BENCH_SECONDS:-10}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q

work=$(mktemp -d /tmp/arca-groups.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

port=$(free_port); token=arca_bench_token; base="http://127.0.0.1:$port"
ARCA_ADMIN_TOKEN=$token ARCA_LOG=warn ARCA_GC_INTERVAL_SECS=0 ./target/release/arca serve --listen 127.0.0.1:$port \
  --data-dir "$work/data" 2>"$work/arca.log" &
pid=$!
for _ in $(seq 300); do curl -sf -o /dev/null "$base/health" && break; sleep 0.1; done

# Everything in the instance scope (`default`), where GitFlic's instance VIRTUALs live too.
harness() { # identifier packageType
  curl -sf -X POST -H "x-api-key: $token" -H 'content-type: application/json' "$base/har/api/v1/registry" \
    -d "{\"identifier\":\"$1\",\"packageType\":\"$2\",\"parentRef\":\"default\",\"isPublic\":true}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["uuid"])'
}
group() { # name gitflicType uuid...
  local name=$1 type=$2; shift 2
  local members; members=$(printf '"%s",' "$@"); members="[${members%,}]"
  curl -sf -X POST -H "authorization: token $token" -H 'content-type: application/json' \
    "$base/registry/instance/x/repositories" \
    -d "{\"type\":\"VIRTUAL\",\"repositoryName\":\"$name\",\"packageType\":\"$type\",\"settings\":{\"hasAnonymousAccess\":true},\"virtualSettings\":{\"includedRepositoryUuids\":$members}}" >/dev/null
}
fill() { # format identifier versions
  case $1 in
    npm) python3 bench/populate.py npm "$base/pkg/default/$2/npm/" "$token" bench-pkg "$3" ;;
    pypi) python3 bench/populate.py pypi "$base/pkg/default/$2/python/" "x:$token" bench-pkg "$3" ;;
    maven) python3 bench/populate.py maven "$base/pkg/default/$2/maven/" "$token" com.acme.bench:bench-lib "$3" ;;
  esac
}
for f in NPM:npm PYTHON:pypi MAVEN:maven; do
  type=${f%%:*}; fmt=${f#*:}
  harness "$fmt-single" "$type" >/dev/null
  fill "$fmt" "$fmt-single" "$n"
  ids=()
  for m in 1 2 3; do
    ids+=("$(harness "$fmt-m$m" "$type")")
    if [ "$m" = 1 ]; then fill "$fmt" "$fmt-m$m" "$n"; else fill "$fmt" "$fmt-m$m" 10; fi
  done
  group "$fmt-group" "$fmt" "${ids[@]}"
done

rps() { # url [header]
  local out
  if [ $# -gt 1 ]; then out=$(wrk -t2 -c64 -d"${dur}s" --latency -H "$2" "$1"); else out=$(wrk -t2 -c64 -d"${dur}s" --latency "$1"); fi
  local errs; errs=$(awk '/Non-2xx/{print $NF}' <<<"$out")
  [ -n "$errs" ] && { echo "non-2xx answers from $1: $errs" >&2; exit 1; }
  awk '/Requests\/sec/{print $2}' <<<"$out"
}
pair() { # label path-under-format-root registry-format-segment [header]
  local label=$1 path=$2 seg=$3 fmt=$4; shift 4
  local single group
  single=$(rps "$base/pkg/default/$fmt-single/$seg/$path" "$@")
  group=$(rps "$base/pkg/default/$fmt-group/$seg/$path" "$@")
  printf '%-26s single %10s req/s   group of 3 %10s req/s   group/single %5.0f%%\n' \
    "$label" "$single" "$group" "$(python3 -c "print(100 * $group / $single)")"
}
echo "== $n versions, group of 3 hosted members vs one registry, 64 connections, ${dur}s each =="
pair "npm packument" bench-pkg npm npm
pair "npm abbreviated packument" bench-pkg npm npm "Accept: application/vnd.npm.install-v1+json"
pair "PyPI simple page" simple/bench-pkg/ python pypi
pair "maven-metadata.xml" com/acme/bench/bench-lib/maven-metadata.xml maven maven
