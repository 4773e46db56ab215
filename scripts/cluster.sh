#!/usr/bin/env bash
# A local Arca cluster on one machine: PostgreSQL, a three-node Garage cluster (replication factor
# 3) and three `arca serve` nodes on consecutive 127.0.0.1 ports, all sharing the database and the
# bucket (each node talks to its own Garage node's S3 API), no sticky sessions.
#
#   bash scripts/cluster.sh up       starts everything, prints shell-sourceable lines
#                                    NODE1_URL=... NODE2_URL=... NODE3_URL=... ADMIN_TOKEN=...
#   bash scripts/cluster.sh status   prints the same lines and which processes are alive
#   bash scripts/cluster.sh down     stops everything and removes its files
#   bash scripts/cluster.sh stop-node|start-node I     SIGKILLs / restarts arca node I
#   bash scripts/cluster.sh stop-garage|start-garage I SIGKILLs / restarts Garage node I
#
# Settings: ARCA_CLUSTER_DIR (state, default /tmp/arca-cluster), ARCA_BIN (the arca binary,
# default target/release/arca, else target/debug/arca), ARCA_CLUSTER_NODES (default 3); other
# ARCA_* variables of the environment (e.g. ARCA_S3_PRESIGNED_REDIRECTS) reach every node.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${ARCA_CLUSTER_DIR:-/tmp/arca-cluster}
nodes=${ARCA_CLUSTER_NODES:-3}
if [ -z "${ARCA_BIN:-}" ]; then
  if [ -x target/release/arca ]; then ARCA_BIN=$PWD/target/release/arca; else ARCA_BIN=$PWD/target/debug/arca; fi
fi

as_pg() {
  # initdb refuses to run as root.
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
n = int(sys.argv[1])
for base in range(30000, 60000, 11):
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks: s.close()
    if len(socks) == n:
        print(base); break
EOF
}

print_env() {
  for i in $(seq 1 "$nodes"); do
    echo "NODE${i}_URL=http://127.0.0.1:$(cat "$dir/arca$i/port")"
  done
  echo "ADMIN_TOKEN=$(cat "$dir/admin-token")"
}

start_arca() {
  local i=$1
  local d="$dir/arca$i"
  # shellcheck disable=SC1091
  . "$dir/garage/env"
  # Node i talks to Garage node i (in turn, past three).
  local endpoint_var="GARAGE_S3_ENDPOINT_$(( (i - 1) % 3 + 1 ))"
  ARCA_LISTEN="127.0.0.1:$(cat "$d/port")" \
  ARCA_DATA_DIR="$d/data" \
  ARCA_DATABASE_URL="$(cat "$dir/database-url")" \
  ARCA_ADMIN_TOKEN="$(cat "$dir/admin-token")" \
  ARCA_BLOB_STORE="s3://$GARAGE_BUCKET/blobs" \
  ARCA_S3_ENDPOINT="${!endpoint_var}" \
  ARCA_S3_REGION="$GARAGE_REGION" \
  ARCA_S3_ALLOW_HTTP=true \
  ARCA_S3_ACCESS_KEY_ID="$GARAGE_KEY_ID" \
  ARCA_S3_SECRET_ACCESS_KEY="$GARAGE_SECRET" \
  ARCA_LOG="${ARCA_LOG:-info}" \
    nohup "$ARCA_BIN" serve >"$d/log" 2>&1 &
  echo $! >"$d/pid"
}

wait_healthy() {
  local url=$1
  for _ in $(seq 1 300); do
    curl -fsS "$url/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "node at $url did not become healthy" >&2
  return 1
}

case "${1:-}" in
up)
  [ -e "$dir/up" ] && { print_env; exit 0; }
  [ -x "$ARCA_BIN" ] || { echo "no arca binary at $ARCA_BIN (cargo build --release, or set ARCA_BIN)" >&2; exit 1; }
  mkdir -p "$dir"
  # PostgreSQL.
  pb=$(pg_bin)
  [ -x "$pb/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
  mkdir -p "$dir/pg"
  [ "$(id -u)" = 0 ] && chown postgres "$dir/pg"
  pg_port=$(free_ports 1)
  as_pg "'$pb/initdb' -D '$dir/pg/data' -A trust -U postgres --no-sync" >"$dir/pg/initdb.log" 2>&1
  as_pg "'$pb/pg_ctl' -D '$dir/pg/data' -o \"-k '$dir/pg' -h 127.0.0.1 -p $pg_port -F -c max_connections=200\" -l '$dir/pg/log' -w start" >/dev/null
  echo "postgres://postgres@127.0.0.1:$pg_port/postgres" >"$dir/database-url"
  # Garage.
  bash scripts/garage.sh up "$dir/garage" 3 3 >/dev/null
  # Arca nodes, all started at once (migrations run under PostgreSQL's advisory lock).
  python3 -c 'import secrets; print("arca_" + secrets.token_hex(24))' >"$dir/admin-token"
  base=$(free_ports "$nodes")
  for i in $(seq 1 "$nodes"); do
    mkdir -p "$dir/arca$i"
    echo $((base + i - 1)) >"$dir/arca$i/port"
    start_arca "$i"
  done
  for i in $(seq 1 "$nodes"); do
    wait_healthy "http://127.0.0.1:$(cat "$dir/arca$i/port")" || { tail -20 "$dir/arca$i/log" >&2; exit 1; }
  done
  touch "$dir/up"
  print_env
  ;;
status)
  [ -e "$dir/up" ] || { echo "no cluster under $dir" >&2; exit 1; }
  print_env
  for i in $(seq 1 "$nodes"); do
    if kill -0 "$(cat "$dir/arca$i/pid")" 2>/dev/null; then s=up; else s=down; fi
    echo "# arca node $i: $s"
  done
  for p in "$dir"/garage/node*/pid; do
    if kill -0 "$(cat "$p")" 2>/dev/null; then s=up; else s=down; fi
    echo "# garage $(basename "$(dirname "$p")"): $s"
  done
  ;;
stop-node|start-node)
  # Used by the cluster test: SIGKILL or restart one arca node.
  i=${2:?node number}
  if [ "$1" = stop-node ]; then kill -KILL "$(cat "$dir/arca$i/pid")" 2>/dev/null || true
  else start_arca "$i"; wait_healthy "http://127.0.0.1:$(cat "$dir/arca$i/port")"; fi
  ;;
stop-garage|start-garage)
  bash scripts/garage.sh "${1%-garage}" "$dir/garage" "${2:?node number}"
  ;;
down)
  for p in "$dir"/arca*/pid; do
    [ -f "$p" ] && kill -KILL "$(cat "$p")" 2>/dev/null || true
  done
  [ -d "$dir/garage" ] && bash scripts/garage.sh down "$dir/garage" || true
  pb=$(pg_bin)
  [ -d "$dir/pg/data" ] && as_pg "'$pb/pg_ctl' -D '$dir/pg/data' -m immediate -w stop" >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 up|status|down|stop-node I|start-node I|stop-garage I|start-garage I" >&2
  exit 2
  ;;
esac
