#!/usr/bin/env bash
# apt and dnf looping `update` / `makecache --refresh` through a Debian and an RPM proxy while the
# upstream (a second Arca) republishes every few seconds: counts "Hash Sum mismatch", "unexpected
# size" and other failures (the target is zero). The proxies revalidate on every request
# (metadataCacheTTL 0), the worst case for index generations, and hold the upstream's key (each new
# generation verified before it is stored). apt trusts only the upstream's key; dnf runs with
# repo_gpgcheck=1 against it.
#   bench/proxy-apt-dnf-loop.sh [iterations] [republish-seconds]
# Uses $ARCA_BIN (default: a release build, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
every=${2:-3}
bin=${ARCA_BIN:-target/release/arca}
[ -x "$bin" ] || cargo build --release -q
work=$(mktemp -d /tmp/arca-loop.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
token=arca_bench_token
start() {
  local port=$1 dir=$2
  ARCA_ADMIN_TOKEN=$token ARCA_LOG=warn "$bin" serve --listen 127.0.0.1:"$port" --data-dir "$work/$dir" 2>"$work/$dir.log" &
  pids+=($!)
  for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$port/health" && return; sleep 0.1; done
  echo "arca on $port did not start" >&2; exit 1
}
up_port=$(free_port); px_port=$(free_port)
start "$up_port" upstream; start "$px_port" proxy
up="http://127.0.0.1:$up_port"; px="http://127.0.0.1:$px_port"
create() {
  curl -sf -X POST -H "x-api-key: $token" -H 'content-type: application/json' "$1/har/api/v1/registry" -d "$2" >/dev/null
}
for t in DEBIAN:deb RPM:rpm; do
  create "$up" "{\"identifier\":\"${t#*:}\",\"packageType\":\"${t%%:*}\",\"parentRef\":\"bench\"}"
done

publish_deb() {
  local v=$1 d="$work/debroot/$1"
  mkdir -p "$d/DEBIAN" "$d/usr/share/loop"
  echo "$v" > "$d/usr/share/loop/version"
  printf 'Package: loop\nVersion: %s\nArchitecture: all\nMaintainer: Bench <b@example.com>\nDescription: loop\n' "$v" > "$d/DEBIAN/control"
  dpkg-deb --build --root-owner-group "$d" "$work/loop_${v}_all.deb" >/dev/null
  curl -sf -X PUT -u "admin:$token" --data-binary @"$work/loop_${v}_all.deb" "$up/pkg/bench/deb/debian/loop_${v}_all.deb" >/dev/null
}
publish_rpm() {
  local v=$1 top="$work/rpmbuild-$1"
  mkdir -p "$top/SPECS"
  printf 'Name: loop\nVersion: %s\nRelease: 1\nSummary: loop\nLicense: MIT\nBuildArch: noarch\n%%description\nloop\n%%install\nmkdir -p %%{buildroot}/usr/share/loop\necho %s > %%{buildroot}/usr/share/loop/version\n%%files\n/usr/share/loop/version\n' "$v" "$v" > "$top/SPECS/loop.spec"
  rpmbuild --define "_topdir $top" -bb "$top/SPECS/loop.spec" >/dev/null 2>&1
  curl -sf -X PUT -u "admin:$token" --data-binary @"$top/RPMS/noarch/loop-$v-1.noarch.rpm" "$up/pkg/bench/rpm/rpm/loop-$v-1.noarch.rpm" >/dev/null
}
publish_deb 1.0; publish_rpm 1.0; : > "$work/published"
curl -sf "$up/pkg/bench/deb/debian/public.key" -u "admin:$token" > "$work/upstream-deb.asc"
curl -sf "$up/pkg/bench/rpm/rpm/public.key" -u "admin:$token" > "$work/upstream-rpm.asc"
# The proxies hold the upstream's key: each new InRelease / repomd.xml is verified before it is
# stored (upstreamPublicKey).
for t in DEBIAN:deb:debian RPM:rpm:rpm; do
  IFS=: read -r ptype id seg <<<"$t"
  create "$px" "$(python3 -c 'import json,sys; p,i,s,u,t,k=sys.argv[1:]; print(json.dumps({"identifier": i+"p", "packageType": p, "parentRef": "bench",
    "config": {"type": "UPSTREAM", "source": "Custom", "url": f"{u}/pkg/bench/{i}/{s}", "authType": "UserPassword",
               "auth": {"userName": "admin", "password": t}, "metadataCacheTTL": 0, "upstreamPublicKey": open(k).read()}}))' \
    "$ptype" "$id" "$seg" "$up" "$token" "$work/upstream-$id.asc")"
done

# apt with its own state, trusting only the upstream's key.
a="$work/apt"; mkdir -p "$a/lists/partial" "$a/cache/archives/partial"; : > "$a/status"
echo "deb [signed-by=$work/upstream-deb.asc] $px/pkg/bench/debp/debian/ stable main" > "$a/sources.list"
printf 'machine http://127.0.0.1:%s\nlogin admin\npassword %s\n' "$px_port" "$token" > "$a/auth.conf"
printf 'Dir::Etc::SourceList "%s/sources.list";\nDir::Etc::SourceParts "/dev/null";\nDir::Etc::netrc "%s/auth.conf";\nDir::State::Lists "%s/lists";\nDir::Cache "%s/cache";\nDir::State::status "%s/status";\nAPT::Sandbox::User "root";\n' "$a" "$a" "$a" "$a" "$a" > "$a/apt.conf"
dnf_refresh() {
  dnf -y --installroot="$work/root" --setopt=cachedir="$work/root/cache" --setopt=persistdir="$work/root/persist" \
    --releasever=1 --setopt=reposdir=/dev/null --repofrompath="arca,$px/pkg/bench/rpmp/rpm/" --repo=arca \
    --setopt=arca.gpgcheck=0 --setopt=arca.repo_gpgcheck=1 --setopt=arca.skip_if_unavailable=0 \
    --setopt=arca.gpgkey="file://$work/upstream-rpm.asc" --setopt=arca.username=admin --setopt=arca.password="$token" \
    --refresh makecache
}

# The upstream republishes every $every seconds while the clients loop.
(
  i=1
  while true; do
    sleep "$every"; i=$((i + 1))
    publish_deb "1.$i" && publish_rpm "1.$i" && echo "1.$i" >> "$work/published"
  done
) &
pids+=($!)

apt_fail=0; apt_hash=0; dnf_fail=0; dnf_sum=0
start_s=$(date +%s)
for i in $(seq "$n"); do
  if ! out=$(APT_CONFIG="$a/apt.conf" apt-get update 2>&1) || grep -q '^[WE]:' <<<"$out"; then apt_fail=$((apt_fail + 1)); echo "apt #$i: $out" >&2; fi
  grep -Eqi 'Hash Sum mismatch|unexpected size' <<<"$out" && apt_hash=$((apt_hash + 1))
  if ! out=$(dnf_refresh 2>&1); then dnf_fail=$((dnf_fail + 1)); echo "dnf #$i: $out" >&2; fi
  grep -Eqi 'checksum|does not match' <<<"$out" && dnf_sum=$((dnf_sum + 1))
done
elapsed=$(( $(date +%s) - start_s ))
published=$(wc -l < "$work/published" 2>/dev/null || echo 0)
echo "iterations: $n in ${elapsed}s, upstream republished every ${every}s (${published} republishes of both repositories)"
echo "apt-get update: $apt_fail failed or warned, $apt_hash with hash/size mismatch"
echo "dnf makecache --refresh: $dnf_fail failed, $dnf_sum with checksum errors"
[ "$apt_fail$apt_hash$dnf_fail$dnf_sum" = 0000 ]
