#!/usr/bin/env bash
# Listing latency at scale: fills one generic registry with 10,000 packages × 100 versions × 1 file
# (10^6 files) directly in SQLite, then times the management API's list endpoints (median of 5).
#   bench/scale.sh [packages] [versions per package]
set -euo pipefail
cd "$(dirname "$0")/.."
packages=${1:-10000}
versions=${2:-100}
cargo build --release -q
work=$(mktemp -d /tmp/arca-scale.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
token=arca_scale_token
start() {
  ARCA_ADMIN_TOKEN=$token ARCA_LOG=warn ./target/release/arca serve --listen 127.0.0.1:$port --data-dir "$work/data" 2>>"$work/log" &
  pid=$!
  for _ in $(seq 200); do curl -sf "$base/health" >/dev/null && return; sleep 0.05; done
}
start
curl -sf -X POST -H "x-api-key: $token" -H 'content-type: application/json' "$base/har/api/v1/registry" \
  -d '{"identifier":"big","packageType":"GENERIC","parentRef":"scale"}' >/dev/null
curl -sf -u "x:$token" --data-binary 'x' -X PUT "$base/pkg/scale/big/generic/seed/1/f" >/dev/null
kill $pid; wait $pid 2>/dev/null || true
python3 - "$work/data/arca.db" "$packages" "$versions" <<'PY'
import sqlite3, sys, uuid, time
db, npk, nv = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(db)
reg = c.execute("select id from registries where identifier='big'").fetchone()[0]
sha = c.execute("select sha256 from files limit 1").fetchone()[0]
t = time.time(); now = int(t * 1000)
pk, vs, fs = [], [], []
for p in range(npk):
    pid = str(uuid.uuid4()); pk.append((pid, reg, f"pkg-{p:06d}", f"{nv}.0", now + p, now + p))
    for v in range(nv):
        vid = str(uuid.uuid4()); vs.append((vid, pid, reg, f"{v}.0", 1, 1, now + v, now + v))
        fs.append((str(uuid.uuid4()), vid, reg, f"pkg-{p:06d}/{v}.0/f.bin", "f.bin", 1, sha, now, now))
c.executemany("insert into packages (id, registry_id, name, latest_version, created_at, updated_at) values (?,?,?,?,?,?)", pk)
c.executemany("insert into versions (id, package_id, registry_id, version, size, file_count, created_at, updated_at) values (?,?,?,?,?,?,?,?)", vs)
c.executemany("insert into files (id, version_id, registry_id, path, name, size, sha256, created_at, updated_at) values (?,?,?,?,?,?,?,?,?)", fs)
c.commit()
print(f"inserted {len(pk)} packages, {len(vs)} versions, {len(fs)} files in {time.time() - t:.1f}s")
PY
start
time_ms() {
  local best=()
  for _ in 1 2 3 4 5; do best+=("$(curl -sf -o /dev/null -w '%{time_total}' -H "x-api-key: $token" "$base$1")"); done
  printf '%s\n' "${best[@]}" | sort -n | sed -n 3p | awk -v p="$1" '{printf "%8.1f ms  %s\n", $1 * 1000, p}'
}
last=$((packages / 20 - 1))
time_ms "/har/api/v1/registry/scale/big/+/artifacts?size=20"
time_ms "/har/api/v1/registry/scale/big/+/artifacts?size=20&page=$last"
time_ms "/har/api/v1/registry/scale/big/+/artifacts?size=20&sort_field=name&sort_order=DESC"
time_ms "/har/api/v1/registry/scale/big/+/artifacts?size=20&sort_field=downloadsCount"
time_ms "/har/api/v1/registry/scale/big/+/artifacts?size=20&search_term=pkg-00999"
time_ms "/har/api/v1/registry/scale/big/+/artifact/pkg-005000/+/versions?size=20"
time_ms "/har/api/v1/registry/scale/big/+/artifact/pkg-005000/+/version/50.0/files"
time_ms "/har/api/v1/spaces/scale/+/registries"
time_ms "/har/api/v1/spaces/scale/+/artifacts?size=20"
time_ms "/pkg/scale/big/generic/pkg-009999/99.0/"
