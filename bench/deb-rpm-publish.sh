#!/usr/bin/env bash
# Publishing into a Debian and an RPM repository of 1,000 packages versus an empty one: the time
# of the upload (PUT) of the 1st and of the 1,001st package, and of the first read of the signed
# index after each (InRelease / repomd.xml, regenerated on that read). Release build, SQLite.
#   bench/deb-rpm-publish.sh [packages]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
cargo build --release -q
work=$(mktemp -d /tmp/arca-pub.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=arca_bench_token; base="http://127.0.0.1:$port"
ARCA_ADMIN_TOKEN=$token ARCA_LOG=warn ./target/release/arca serve --listen 127.0.0.1:$port --data-dir "$work/arca" 2>"$work/arca.log" &
pid=$!
for _ in $(seq 300); do curl -s -o /dev/null "$base/health" && break; sleep 0.1; done
for t in DEBIAN:deb RPM:rpm; do
  curl -sf -X POST -H "x-api-key: $token" -H 'content-type: application/json' "$base/har/api/v1/registry" \
    -d "{\"identifier\":\"${t#*:}\",\"packageType\":\"${t%%:*}\",\"parentRef\":\"bench\"}" >/dev/null
done

echo "building $((n + 1)) .deb and $((n + 1)) .rpm packages..."
mkdir -p "$work/debs"
build_deb() {
  local i=$1 d="$work/debroot/p$1"
  mkdir -p "$d/DEBIAN" "$d/usr/share/bench-$i"
  echo "$i" > "$d/usr/share/bench-$i/README"
  printf 'Package: bench-%s\nVersion: 1.0\nArchitecture: all\nMaintainer: Bench <b@example.com>\nDescription: bench %s\n' "$i" "$i" > "$d/DEBIAN/control"
  dpkg-deb --build --root-owner-group "$d" "$work/debs/bench-${i}_1.0_all.deb" >/dev/null
}
export -f build_deb; export work
seq 0 "$n" | xargs -P2 -I{} bash -c 'build_deb {}'
# One spec, one rpmbuild: a main package and n subpackages.
{
  printf 'Name: bench-0\nVersion: 1.0\nRelease: 1\nSummary: bench\nLicense: MIT\nBuildArch: noarch\n%%description\nbench\n'
  for i in $(seq 1 "$n"); do printf '%%package -n bench-%s\nSummary: bench %s\n%%description -n bench-%s\nbench\n%%files -n bench-%s\n/usr/share/bench/%s\n' "$i" "$i" "$i" "$i" "$i"; done
  printf '%%install\nmkdir -p %%{buildroot}/usr/share/bench\nfor i in $(seq 0 %s); do echo $i > %%{buildroot}/usr/share/bench/$i; done\n%%files\n/usr/share/bench/0\n' "$n"
} > "$work/bench.spec"
rpmbuild --define "_topdir $work/rpmbuild" -bb "$work/bench.spec" >/dev/null 2>&1

put() { curl -sf -o /dev/null -w '%{time_total}' -u "b:$token" -T "$2" "$base/pkg/bench/$1/$3"; }
get() { curl -sf -o /dev/null -w '%{time_total}' -u "b:$token" "$base/pkg/bench/$1/$2"; }
ms() { python3 -c "print(f'{float($1) * 1000:.1f}')"; }
report() { # label first-put first-index last-put last-index
  printf '%-7s publish #1 %7s ms, #%d %7s ms (ratio %s); index refresh after #1 %7s ms, after #%d %7s ms\n' \
    "$1" "$(ms "$2")" "$((n + 1))" "$(ms "$4")" "$(python3 -c "print(f'{$4 / $2:.2f}')")" "$(ms "$3")" "$((n + 1))" "$(ms "$5")"
}

d1=$(put deb/debian "$work/debs/bench-0_1.0_all.deb" "bench-0_1.0_all.deb"); i1=$(get deb/debian dists/stable/InRelease)
for i in $(seq 1 $((n - 1))); do put deb/debian "$work/debs/bench-${i}_1.0_all.deb" "bench-${i}_1.0_all.deb" >/dev/null; done
d2=$(put deb/debian "$work/debs/bench-${n}_1.0_all.deb" "bench-${n}_1.0_all.deb"); i2=$(get deb/debian dists/stable/InRelease)
r1=$(put rpm/rpm "$work/rpmbuild/RPMS/noarch/bench-0-1.0-1.noarch.rpm" "bench-0-1.0-1.noarch.rpm"); j1=$(get rpm/rpm repodata/repomd.xml)
for i in $(seq 1 $((n - 1))); do put rpm/rpm "$work/rpmbuild/RPMS/noarch/bench-${i}-1.0-1.noarch.rpm" "bench-${i}-1.0-1.noarch.rpm" >/dev/null; done
r2=$(put rpm/rpm "$work/rpmbuild/RPMS/noarch/bench-${n}-1.0-1.noarch.rpm" "bench-${n}-1.0-1.noarch.rpm"); j2=$(get rpm/rpm repodata/repomd.xml)
echo "== publishing the 1st and the $((n + 1))th package =="
report Debian "$d1" "$i1" "$d2" "$i2"
report RPM "$r1" "$j1" "$r2" "$j2"
