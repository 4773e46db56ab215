#!/usr/bin/env bash
# Throwaway Garage (S3-compatible object store) clusters on 127.0.0.1, for the S3 test run
# (scripts/test.sh, one node) and the local cluster (scripts/cluster.sh, three nodes).
#
#   bash scripts/garage.sh up DIR NODES [REPLICATION]   starts NODES nodes under DIR, creates the
#       bucket `arca` and a key allowed on it, and prints shell-sourceable lines:
#       GARAGE_S3_ENDPOINT_<i>=... (one per node), GARAGE_REGION, GARAGE_BUCKET, GARAGE_KEY_ID,
#       GARAGE_SECRET
#   bash scripts/garage.sh stop DIR I    stops node I (SIGKILL), keeping its data
#   bash scripts/garage.sh start DIR I   starts node I again
#   bash scripts/garage.sh down DIR      stops every node and removes DIR
set -euo pipefail

free_ports() {
  # N consecutive free ports.
  python3 - "$1" <<'EOF'
import socket, sys
n = int(sys.argv[1])
for base in range(20000, 60000, 7):
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

g() { local dir=$1; shift; garage -c "$dir/garage.toml" "$@"; }

start_node() {
  local dir=$1
  RUST_LOG=${GARAGE_LOG:-warn} nohup garage -c "$dir/garage.toml" server >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
}

cmd=${1:-}
root=${2:-}
[ -n "$cmd" ] && [ -n "$root" ] || { echo "usage: $0 up|stop|start|down DIR [N] [REPLICATION]" >&2; exit 2; }
command -v garage >/dev/null || { echo "garage is not installed (scripts/install-test-deps.sh installs it)" >&2; exit 1; }

case "$cmd" in
up)
  n=${3:-1}
  rf=${4:-$n}
  mkdir -p "$root"
  secret=$(openssl rand -hex 32 2>/dev/null || python3 -c 'import secrets; print(secrets.token_hex(32))')
  admin=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  base=$(free_ports $((n * 3)))
  for i in $(seq 1 "$n"); do
    d="$root/node$i"
    mkdir -p "$d"
    p=$((base + (i - 1) * 3))
    cat >"$d/garage.toml" <<EOF
metadata_dir = "$d/meta"
data_dir = "$d/data"
db_engine = "sqlite"
metadata_fsync = false
data_fsync = false
replication_factor = $rf
rpc_bind_addr = "127.0.0.1:$((p + 1))"
rpc_public_addr = "127.0.0.1:$((p + 1))"
rpc_secret = "$secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$p"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$((p + 2))"
admin_token = "$admin"
EOF
    echo "$p" >"$d/s3_port"
    start_node "$d"
  done
  first="$root/node1"
  for _ in $(seq 1 100); do
    g "$first" status >/dev/null 2>&1 && break
    sleep 0.2
  done
  ids=()
  for i in $(seq 1 "$n"); do
    d="$root/node$i"
    for _ in $(seq 1 100); do
      id=$(g "$d" node id -q 2>/dev/null) && break
      sleep 0.2
    done
    ids+=("$id")
    [ "$i" = 1 ] || g "$first" node connect "$id" >/dev/null
  done
  for i in $(seq 1 "$n"); do
    g "$first" layout assign -z "dc$i" -c 1G "${ids[$((i - 1))]%%@*}" >/dev/null
  done
  g "$first" layout apply --version 1 >/dev/null
  # Wait until the layout reached every node and the cluster answers.
  for _ in $(seq 1 150); do
    g "$first" bucket create arca >/dev/null 2>&1 && break
    sleep 0.2
  done
  key=$(g "$first" json-api CreateKey '{"name":"arca"}')
  key_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["accessKeyId"])' <<<"$key")
  key_secret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["secretAccessKey"])' <<<"$key")
  g "$first" bucket allow --read --write --owner arca --key "$key_id" >/dev/null
  {
    for i in $(seq 1 "$n"); do
      echo "GARAGE_S3_ENDPOINT_$i=http://127.0.0.1:$(cat "$root/node$i/s3_port")"
    done
    echo "GARAGE_REGION=garage"
    echo "GARAGE_BUCKET=arca"
    echo "GARAGE_KEY_ID=$key_id"
    echo "GARAGE_SECRET=$key_secret"
  } | tee "$root/env"
  ;;
stop)
  d="$root/node$3"
  kill -KILL "$(cat "$d/pid")" 2>/dev/null || true
  ;;
start)
  start_node "$root/node$3"
  ;;
down)
  for p in "$root"/node*/pid; do
    [ -f "$p" ] && kill -KILL "$(cat "$p")" 2>/dev/null || true
  done
  rm -rf "$root"
  ;;
*)
  echo "unknown command $cmd" >&2; exit 2 ;;
esac
