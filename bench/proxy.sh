#!/usr/bin/env bash
# Pull-through proxies, Arca side by side with Debian's docker-registry (CNCF distribution in
# proxy mode) in the same run, both in front of one counting upstream (bench/upstream.py):
#   1. a cold 1 GiB blob: upstream bytes / size, wall time, server CPU-seconds and peak RSS;
#   2. 100 concurrent cold requests for one npm tarball, one OCI blob, one generic file and one
#      npm packument: requests that reached the upstream, successes, time to first byte spread
#      (the upstream paced at 100 MiB/s, so that followers that wait for the whole file show);
#   3. warm hits: MiB/s of a cached 64 MiB blob vs the same bytes from a hosted registry;
#   4. metadata under load (wrk, BENCH_SECONDS, default 60): upstream requests for one packument
#      with metadataRetrievalIntervalSeconds S (default 10), against the target ceil(T/S) + 1;
#   5. warm hits of the formats of issue 16 (NuGet, Composer, Helm, Debian, RPM, CRAN, OPM), one
#      metadata and one content row each: a proxy against the hosted registry it reads from
#      (bench/proxy_formats.py; wrk for BENCH_FORMAT_SECONDS, default 5, per request).
#   bench/proxy.sh [big MiB]        (BENCH_PARTS=5 runs only section 5; default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
big_mib=${1:-1024}
parts=${BENCH_PARTS:-12345}
want() { [[ $parts == *$1* ]]; }
dur=${BENCH_SECONDS:-60}
interval=${BENCH_INTERVAL:-10}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
command -v docker-registry >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null; }
cargo build --release -q

work=$(mktemp -d /tmp/arca-proxy.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }   # utime + stime, seconds (USER_HZ 100)
hwm() { awk '/VmHWM/{print int($2 / 1024)}' "/proc/$1/status"; }  # peak RSS, MiB
hits() { curl -s "http://127.0.0.1:$up/_stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['hits'].get(sys.argv[1], 0))" "$1"; }
sent() { curl -s "http://127.0.0.1:$up/_stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['bytes'].get(sys.argv[1], 0))" "$1"; }

# The upstream's content.
mkdir -p "$work/up/blobs" "$work/up/files/tool/1.0" "$work/up/npm"
blob() { local hex; hex=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$work/up/blobs/$hex"; echo "$hex"; }
head -c $((big_mib << 20)) /dev/urandom > "$work/big"; big=$(blob "$work/big")
head -c $((64 << 20)) /dev/urandom > "$work/b64"; cp "$work/b64" "$work/hosted.bin"; b64=$(blob "$work/b64")
head -c $((16 << 20)) /dev/urandom > "$work/up/files/tool/1.0/tool.tgz"
up=$(free_port)
for name in bench-tar bench-meta; do
  head -c $((1 << 20)) /dev/urandom > "$work/up/npm/$name-1.0.0.tgz"
  integrity="sha512-$(openssl dgst -sha512 -binary "$work/up/npm/$name-1.0.0.tgz" | base64 -w0)"
  cat > "$work/up/npm/$name.json" <<JSON
{"name":"$name","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"$name","version":"1.0.0",
 "dist":{"tarball":"http://127.0.0.1:$up/npm/$name/-/$name-1.0.0.tgz","integrity":"$integrity"}}},
 "time":{"1.0.0":"2026-01-01T00:00:00.000Z"}}
JSON
done
python3 bench/upstream.py "$up" "$work/up" & pids+=($!)
wait_http "http://127.0.0.1:$up/_stats"

# Arca: public UPSTREAM registries (generic, docker, npm) and a hosted generic one.
ap=$(free_port); token=arca_bench_token
ARCA_ADMIN_TOKEN=$token ARCA_LOG=warn ./target/release/arca serve --listen 127.0.0.1:$ap --data-dir "$work/arca" 2>"$work/arca.log" &
apid=$!; pids+=($apid); wait_http "http://127.0.0.1:$ap/health"
registry() {
  curl -sf -X POST -H "x-api-key: $token" -H 'content-type: application/json' "http://127.0.0.1:$ap/har/api/v1/registry" -d "$1" >/dev/null
}
upstream() {
  registry "{\"identifier\":\"$1\",\"packageType\":\"$2\",\"parentRef\":\"bench\",\"isPublic\":true,
    \"config\":{\"type\":\"UPSTREAM\",\"source\":\"Custom\",\"url\":\"$3\",\"authType\":\"Anonymous\",\"metadataCacheTTL\":$interval}}"
}
upstream gen GENERIC "http://127.0.0.1:$up/files"
upstream hub DOCKER "http://127.0.0.1:$up"
upstream npmp NPM "http://127.0.0.1:$up/npm"
registry '{"identifier":"local","packageType":"GENERIC","parentRef":"bench","isPublic":true}'
curl -sf -u "x:$token" -T "$work/hosted.bin" -o /dev/null "http://127.0.0.1:$ap/pkg/bench/local/generic/blob/1/b64.bin"
A="http://127.0.0.1:$ap"

# distribution as a pull-through cache of the same upstream.
dp=$(free_port)
cat > "$work/dist.yml" <<YAML
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $work/dist } }
http: { addr: 127.0.0.1:$dp }
proxy: { remoteurl: http://127.0.0.1:$up }
YAML
docker-registry serve "$work/dist.yml" >"$work/dist.log" 2>&1 & dpid=$!; pids+=($dpid)
wait_http "http://127.0.0.1:$dp/v2/"
D="http://127.0.0.1:$dp"

if want 1; then
echo "== 1. cold ${big_mib} MiB blob, one client"
cold() {  # name pid url
  local c0 c1 t
  c0=$(cpu "$2"); t=$(curl -sf -o /dev/null -w '%{time_total}' "$3"); c1=$(cpu "$2")
  python3 -c "import sys; n,t,c0,c1,mib,hwm,s=sys.argv[1:]; mib=int(mib); print(f'{n:<14} {mib/float(t):8.1f} MiB/s  upstream bytes {int(s)/(mib<<20):.2f}x  CPU {(float(c1)-float(c0))/(mib/1024):5.2f} s/GiB  peak RSS {hwm} MiB')" \
    "$1" "$t" "$c0" "$c1" "$big_mib" "$(hwm "$2")" "$(sent "/v2/lib/img/blobs/sha256:$big")"
}
cold arca "$apid" "$A/v2/bench/hub/lib/img/blobs/sha256:$big"
before=$(sent "/v2/lib/img/blobs/sha256:$big")
c0=$(cpu "$dpid"); t=$(curl -sf -o /dev/null -w '%{time_total}' "$D/v2/lib/img/blobs/sha256:$big"); c1=$(cpu "$dpid")
python3 -c "import sys; t,c0,c1,mib,hwm,s=sys.argv[1:]; mib=int(mib); print(f'{\"distribution\":<14} {mib/float(t):8.1f} MiB/s  upstream bytes {int(s)/(mib<<20):.2f}x  CPU {(float(c1)-float(c0))/(mib/1024):5.2f} s/GiB  peak RSS {hwm} MiB')" \
  "$t" "$c0" "$c1" "$big_mib" "$(hwm "$dpid")" "$(( $(sent "/v2/lib/img/blobs/sha256:$big") - before ))"

fi
if want 2; then
echo "== 2. 100 concurrent cold requests (target: 1 upstream request each, all succeed, TTFB spread <= 50 ms)"
echo "   (the upstream sends files at 100 MiB/s, so that a transfer outlasts the burst's start)"
curl -sf "http://127.0.0.1:$up/_rate?mib=100" >/dev/null
burst() {  # label url upstream-path
  local h0 out
  h0=$(hits "$3"); out=$(python3 bench/burst.py "$2" 100)
  python3 -c "import json,sys; r=json.loads(sys.argv[2]); print(f'{sys.argv[1]:<26} upstream requests {int(sys.argv[3]):3d}  ok {r[\"ok\"]}/{r[\"n\"]}  TTFB min {r[\"ttfb_min_ms\"]:7.1f} ms  p50 {r[\"ttfb_p50_ms\"]:7.1f}  max {r[\"ttfb_max_ms\"]:7.1f}  spread {r[\"ttfb_max_ms\"]-r[\"ttfb_min_ms\"]:6.1f} ms')" \
    "$1" "$out" "$(( $(hits "$3") - h0 ))"
}
burst "arca npm tarball" "$A/pkg/bench/npmp/npm/bench-tar/-/bench-tar-1.0.0.tgz" "/npm/bench-tar/-/bench-tar-1.0.0.tgz"
burst "arca OCI blob (64 MiB)" "$A/v2/bench/hub/lib/img/blobs/sha256:$b64" "/v2/lib/img/blobs/sha256:$b64"
burst "distribution OCI blob" "$D/v2/lib/img/blobs/sha256:$b64" "/v2/lib/img/blobs/sha256:$b64"
burst "arca generic (16 MiB)" "$A/pkg/bench/gen/generic/tool/1.0/tool.tgz" "/files/tool/1.0/tool.tgz"
burst "arca npm packument" "$A/pkg/bench/npmp/npm/bench-meta" "/npm/bench-meta"

fi
curl -sf "http://127.0.0.1:$up/_rate" >/dev/null
if want 3; then
echo "== 3. warm hits, 64 MiB x 24, 4 at a time (target: proxy >= 90% of hosted)"
warm() {  # label pid url
  local c0 c1 t0 t1
  c0=$(cpu "$2"); t0=$(date +%s.%N)
  seq 24 | xargs -P4 -I{} curl -sf -o /dev/null "$3"
  t1=$(date +%s.%N); c1=$(cpu "$2")
  python3 -c "import sys; l,t0,t1,c0,c1=sys.argv[1:]; mib=24*64; s=float(t1)-float(t0); print(f'{l:<26} {mib/s:8.1f} MiB/s  CPU {(float(c1)-float(c0))/(mib/1024):5.2f} s/GiB')" "$1" "$t0" "$t1" "$c0" "$c1"
}
warm "arca hosted" "$apid" "$A/pkg/bench/local/generic/blob/1/b64.bin"
warm "arca proxy (cached)" "$apid" "$A/v2/bench/hub/lib/img/blobs/sha256:$b64"
warm "distribution (cached)" "$dpid" "$D/v2/lib/img/blobs/sha256:$b64"

fi
if want 4; then
echo "== 4. metadata under load: ${dur}s of wrk on one packument, interval ${interval}s"
h0=$(hits "/npm/bench-meta")
wrk -t2 -c16 -d"${dur}s" "$A/pkg/bench/npmp/npm/bench-meta" | grep -E 'Requests/sec|requests in'
n=$(( $(hits "/npm/bench-meta") - h0 ))
python3 -c "import math,sys; n,d,s=map(int,sys.argv[1:]); t=math.ceil(d/s)+1; print(f'upstream packument requests {n} (target <= {t}): {\"ok\" if n <= t else \"OVER\"}')" "$n" "$dur" "$interval"
fi
if want 5; then
echo "== 5. warm hits, issue 16 formats: proxy vs the hosted registry it reads (same process), ${BENCH_FORMAT_SECONDS:-5}s of wrk each"
python3 bench/proxy_formats.py "$A" "$token" "$apid" "${BENCH_FORMAT_SECONDS:-5}" "$work"
fi
