#!/usr/bin/env bash
# Runs the whole test suite: unit tests and end-to-end tests, each end-to-end test on SQLite and on
# PostgreSQL. Starts a throwaway PostgreSQL cluster on a free 127.0.0.1 port and removes it after.
#
# Then the S3 run: the end-to-end tests of the main formats (generic, OCI, npm, PyPI, Maven, Debian,
# on PostgreSQL) once more with blobs in an S3 bucket of a throwaway one-node Garage. (The cluster
# test, in the main run, starts its own cluster with scripts/cluster.sh.)
# With arguments (a nextest filter), only the main run, unless ARCA_TEST_BLOB_STORE=s3 is set:
# then only the S3 run, with those arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real clients the end-to-end tests drive (quick when already installed).
bash scripts/install-test-deps.sh
export ARCA_TEST_TOOLS="$PWD/target/test-tools"

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  echo "PostgreSQL server binaries not found (apt-get install postgresql); .ci/run installs them" >&2
  exit 1
fi
pg_dir=$(mktemp -d /tmp/arca-pg.XXXXXX)
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg() {
  # initdb refuses to run as root.
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}
[ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
stop_pg() {
  as_pg "'$pg_bin/pg_ctl' -D '$pg_dir/data' -m immediate -w stop" >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap stop_pg EXIT
as_pg "'$pg_bin/initdb' -D '$pg_dir/data' -A trust -U postgres --no-sync" >"$pg_dir/initdb.log" 2>&1 \
  || { cat "$pg_dir/initdb.log" >&2; exit 1; }
as_pg "'$pg_bin/pg_ctl' -D '$pg_dir/data' -o \"-k '$pg_dir' -h 127.0.0.1 -p $pg_port -F -c max_connections=400\" -l '$pg_dir/log' -w start" >/dev/null \
  || { cat "$pg_dir/log" >&2; exit 1; }
export ARCA_TEST_PG_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"

status=0
logs=$(mktemp -d /tmp/arca-test-logs.XXXXXX)
# Runs nextest, keeping its summary line for the end (two runs print two summaries).
run_nextest() {
  local name=$1; shift
  cargo nextest run --workspace --no-fail-fast "$@" 2>&1 | tee "$logs/$name"
  return "${PIPESTATUS[0]}"
}
summaries() {
  for name in main s3; do
    [ -f "$logs/$name" ] || continue
    printf '%-5s run: %s\n' "$name" "$(grep -E '^ *Summary ' "$logs/$name" | tail -n 1 | sed 's/^ *//')"
  done
}
if [ "${ARCA_TEST_BLOB_STORE:-}" != s3 ]; then
  run_nextest main "$@" || status=$?
fi

if [ $# -eq 0 ] || [ "${ARCA_TEST_BLOB_STORE:-}" = s3 ]; then
  garage_dir=$(mktemp -d /tmp/arca-garage.XXXXXX)
  trap 'bash scripts/garage.sh down "$garage_dir" >/dev/null 2>&1 || true; stop_pg' EXIT
  eval "$(bash scripts/garage.sh up "$garage_dir" 1)"
  export ARCA_TEST_BLOB_STORE=s3 ARCA_TEST_S3_ENDPOINT="$GARAGE_S3_ENDPOINT_1" ARCA_TEST_S3_REGION="$GARAGE_REGION" \
    ARCA_TEST_S3_BUCKET="$GARAGE_BUCKET" ARCA_TEST_S3_KEY_ID="$GARAGE_KEY_ID" ARCA_TEST_S3_SECRET="$GARAGE_SECRET"
  if [ $# -eq 0 ]; then
    set -- -E 'binary(e2e) & test(/^(generic|oci|oci_conformance|npm|pypi|maven|debian)::postgres::/)'
  fi
  run_nextest s3 "$@" || status=$?
fi
summaries
rm -rf "$logs"
exit $status
