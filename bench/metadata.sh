#!/usr/bin/env bash
# Hot metadata reads at 64 connections (wrk, 2 threads, 10 s each), Arca side by side with
# verdaccio (npm) and pypiserver (PyPI): an npm packument of a package with 500 versions, a PyPI
# simple page of a project with 500 files, and a cargo sparse-index file of a crate with 500
# versions. All registries allow anonymous reads; Arca is also measured with token auth.
# (kellnr is not built here: its release build takes far longer than this benchmark should.)
#   bench/metadata.sh [versions]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-500}
dur=${BENCH_SECONDS:-10}
tools="$PWD/target/bench-tools"
mkdir -p "$tools"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
if [ ! -x "$tools/verdaccio/node_modules/.bin/verdaccio" ]; then
  mkdir -p "$tools/verdaccio"
  cat > "$tools/verdaccio/package.json" <<'JSON'
{ "name": "verdaccio-host", "private": true, "dependencies": { "verdaccio": "6.8.0" },
  "overrides": { "verdaccio-audit": { "node-fetch": "2.7.0" } } }
JSON
  (cd "$tools/verdaccio" && npm install --silent --no-audit --no-fund >/dev/null)
fi
if [ ! -x "$tools/pypiserver/bin/pypi-server" ]; then
  python3 -m venv "$tools/pypiserver"
  "$tools/pypiserver/bin/pip" install -q --disable-pip-version-check pypiserver
fi
cargo build --release -q

work=$(mktemp -d /tmp/arca-meta.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }

# Arca.
ap=$(free_port); token=arca_bench_token; base="http://127.0.0.1:$ap"
ARCA_ADMIN_TOKEN=$token ARCA_LOG=warn ./target/release/arca serve --listen 127.0.0.1:$ap --data-dir "$work/arca" 2>"$work/arca.log" &
pids+=($!); wait_http "$base/health"
for t in NPM:npm PYTHON:py CARGO:crates; do
  curl -sf -X POST -H "x-api-key: $token" -H 'content-type: application/json' "$base/har/api/v1/registry" \
    -d "{\"identifier\":\"${t#*:}\",\"packageType\":\"${t%%:*}\",\"parentRef\":\"bench\",\"isPublic\":true}" >/dev/null
done
python3 bench/populate.py npm "$base/pkg/bench/npm/npm/" "$token" bench-pkg "$n"
python3 bench/populate.py pypi "$base/pkg/bench/py/python/" "x:$token" bench-pkg "$n"
python3 bench/populate.py cargo "$base/pkg/bench/crates/cargo" "$token" bench_crate "$n"

# verdaccio (no uplinks; anonymous reads, a user for publishing).
vp=$(free_port)
mkdir -p "$work/vd/storage"
cat > "$work/vd/config.yaml" <<YAML
storage: $work/vd/storage
auth: { htpasswd: { file: $work/vd/htpasswd, max_users: 10 } }
uplinks: {}
packages: { '**': { access: \$all, publish: \$authenticated } }
listen: 127.0.0.1:$vp
log: { type: stdout, format: pretty, level: fatal }
YAML
"$tools/verdaccio/node_modules/.bin/verdaccio" --config "$work/vd/config.yaml" >"$work/vd.log" 2>&1 &
pids+=($!); wait_http "http://127.0.0.1:$vp/-/ping"
vtoken=$(curl -sf -X PUT -H 'content-type: application/json' "http://127.0.0.1:$vp/-/user/org.couchdb.user:bench" \
  -d '{"name":"bench","password":"bench-pass-1"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
python3 bench/populate.py npm "http://127.0.0.1:$vp/" "$vtoken" bench-pkg "$n"

# pypiserver (serves a directory).
pp=$(free_port); mkdir -p "$work/pypi"
python3 bench/populate.py pypi-dir "$work/pypi" bench-pkg "$n"
"$tools/pypiserver/bin/pypi-server" run -p "$pp" -i 127.0.0.1 -a . -P . "$work/pypi" >"$work/pypi.log" 2>&1 &
pids+=($!); wait_http "http://127.0.0.1:$pp/simple/"

measure() { # label url [header]
  local out
  if [ $# -gt 2 ]; then out=$(wrk -t2 -c64 -d"${dur}s" --latency -H "$3" "$2"); else out=$(wrk -t2 -c64 -d"${dur}s" --latency "$2"); fi
  local rps p99 errs
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  errs=$(awk '/Non-2xx/{print $NF}' <<<"$out"); errs=${errs:-0}
  printf '%-44s %10s req/s   p99 %8s   non-2xx %s\n' "$1" "$rps" "$p99" "$errs"
}
echo "== $n versions/files, 64 connections, ${dur}s each =="
measure "npm packument        arca"           "$base/pkg/bench/npm/npm/bench-pkg"
measure "npm packument        arca (token)"   "$base/pkg/bench/npm/npm/bench-pkg" "Authorization: Bearer $token"
measure "npm packument        verdaccio 6.8"  "http://127.0.0.1:$vp/bench-pkg"
measure "npm abbreviated      arca"           "$base/pkg/bench/npm/npm/bench-pkg" "Accept: application/vnd.npm.install-v1+json"
measure "npm abbreviated      verdaccio 6.8"  "http://127.0.0.1:$vp/bench-pkg" "Accept: application/vnd.npm.install-v1+json"
measure "PyPI simple page     arca"           "$base/pkg/bench/py/python/simple/bench-pkg/"
measure "PyPI simple page     pypiserver"     "http://127.0.0.1:$pp/simple/bench-pkg/"
measure "cargo index file     arca"           "$base/pkg/bench/crates/cargo/index/be/nc/bench_crate"
