#!/usr/bin/env bash
# Generic-format throughput and server memory: uploads and downloads a file (1 GiB by default)
# with curl against a release `arca serve` on SQLite + local disk, and reports MB/s, the server's
# CPU-seconds per GiB, and its peak RSS (VmHWM) during the transfers.
#   bench/generic.sh [size in MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
cargo build --release -q
work=$(mktemp -d /tmp/arca-bench.XXXXXX)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
token=arca_bench_token
ARCA_ADMIN_TOKEN=$token ARCA_LOG=warn ./target/release/arca serve --listen 127.0.0.1:$port --data-dir "$work/data" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do curl -sf "$base/health" >/dev/null && break; sleep 0.05; done
curl -sf -X POST -H "x-api-key: $token" -H 'content-type: application/json' "$base/har/api/v1/registry" \
  -d '{"identifier":"bench","packageType":"GENERIC","parentRef":"bench"}' >/dev/null
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/file.bin"

cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
ticks=$(getconf CLK_TCK)
rss_idle=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")

c0=$(cpu)
up=$(curl -sf -u "x:$token" -T "$work/file.bin" -o /dev/null -w '%{time_total}' "$base/pkg/bench/bench/generic/big/1/file.bin")
c1=$(cpu)
down=$(curl -sf -u "x:$token" -o /dev/null -w '%{time_total}' "$base/pkg/bench/bench/generic/big/1/file.bin")
c2=$(cpu)
peak=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")

python3 - "$size_mib" "$up" "$down" "$c0" "$c1" "$c2" "$ticks" "$rss_idle" "$peak" <<'PY'
import sys
size, up, down, c0, c1, c2, ticks, idle, peak = sys.argv[1:]
size = int(size); gib = size / 1024
up, down, ticks = float(up), float(down), int(ticks)
cpu_up = (float(c1) - float(c0)) / ticks
cpu_down = (float(c2) - float(c1)) / ticks
print(f"file size            {size} MiB")
print(f"upload               {size / up:8.1f} MiB/s   server CPU {cpu_up / gib:5.2f} s/GiB (MD5+SHA-1+SHA-256+SHA-512 + fsync)")
print(f"download             {size / down:8.1f} MiB/s   server CPU {cpu_down / gib:5.2f} s/GiB")
print(f"server RSS idle      {int(idle) / 1024:8.1f} MiB")
print(f"server RSS peak      {int(peak) / 1024:8.1f} MiB   (target: < 64 MiB)")
PY
