#!/usr/bin/env bash
# Installs the services and real clients the test suite drives, when missing (Debian).
set -euo pipefail

need_apt=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${need_apt[*]} (run as root or install them)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
# Garage, the S3-compatible object store of the S3 test run and of scripts/cluster.sh (about 15
# minutes of build on two cores, once).
command -v garage >/dev/null || cargo install --locked garage@2.5.0

# Python clients (pip, twine, uv) in their own venv under target/, so tests use known versions.
tools="$(cd "$(dirname "$0")/.." && pwd)/target/test-tools"
if [ ! -x "$tools/py/bin/twine" ] || [ ! -x "$tools/py/bin/uv" ]; then
  mkdir -p "$tools"
  python3 -m venv "$tools/py"
  "$tools/py/bin/pip" install -q --disable-pip-version-check twine uv
fi

# Maven with Debian's plugin repository (no remote repository is reachable from tests).
if ! command -v mvn >/dev/null || [ ! -d /usr/share/maven-repo/org/apache/maven/plugins/maven-source-plugin ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends maven default-jdk-headless maven-repo-helper \
      maven-debian-helper libmaven-deploy-plugin-java libmaven-install-plugin-java libmaven-jar-plugin-java \
      libmaven-compiler-plugin-java libmaven-resources-plugin-java libmaven-dependency-plugin-java libsurefire-java \
      libmaven-source-plugin-java >/dev/null
  else
    echo "Maven and Debian's Maven plugins are missing (run as root to install them)" >&2
    exit 1
  fi
fi

# apt packages the remaining real clients need, installed in one go when any is missing:
# NuGet.exe runs under mono (Debian's `nuget` brings most of mono, the rest are listed),
# Composer with PHP, and Gradle.
need_apt=()
command -v mono >/dev/null && [ -f /usr/lib/mono/4.5/Microsoft.Build.Utilities.v4.0.dll ] || need_apt+=(nuget)
for p in libmono-system-net-http4.0-cil libmono-system-net-http-webrequest4.0-cil libmono-system-xml-linq4.0-cil \
         libmono-system-componentmodel-composition4.0-cil libmono-system-io-compression4.0-cil libmono-system-security4.0-cil \
         composer php-cli php-zip unzip gradle; do
  dpkg -s "$p" >/dev/null 2>&1 || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${need_apt[*]} (run as root or install them)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# NuGet.exe 5.8 (a v3 client; Debian's nuget 2.8 speaks only v2) comes inside the npm package nuget-exe.
if [ ! -f "$tools/nuget/package/nuget-5.8.0.exe" ]; then
  mkdir -p "$tools/nuget"
  (cd "$tools/nuget" && npm pack --silent --userconfig /dev/null nuget-exe@5.8.0 >/dev/null && tar xzf nuget-exe-5.8.0.tgz)
fi

# OCI clients: skopeo, umoci, buildah and podman (vfs storage, chroot isolation), Debian's
# docker-registry (the benchmark's peer), R for CRAN, rpm + dnf (+ plugins) and gnupg for RPM, and oras-py plus Helm's Go SDK (helm-python-sdk) in the venv.
need_apt=()
for p in skopeo umoci buildah podman docker-registry r-base-core rpm dnf dnf-plugins-core gnupg; do
  dpkg -s "$p" >/dev/null 2>&1 || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${need_apt[*]} (run as root or install them)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
if ! "$tools/py/bin/python" -c 'import oras.client, helm_python' 2>/dev/null; then
  "$tools/py/bin/pip" install -q --disable-pip-version-check oras==0.2.43 helm-python-sdk==0.2.2
fi

# The compatibility guard (scripts/real-world.txt): old and new clients side by side, and real
# packages fetched with the ordinary clients into target/test-tools/real/ (never committed).
pins="$(cd "$(dirname "$0")" && pwd)/real-world.txt"
pin() { sed 's/#.*//' "$pins" | awk -v k="$1" '$1 == k { print $2, $3 }'; }
while read -r _ v; do
  [ -n "$v" ] || continue
  if [ ! -x "$tools/pip-$v/bin/pip" ] || [ "$("$tools/pip-$v/bin/pip" --version | awk '{print $2}')" != "$v" ]; then
    python3 -m venv "$tools/pip-$v"
    "$tools/pip-$v/bin/python" -m pip install -q --disable-pip-version-check "pip==$v"
  fi
done < <(pin client | awk '$1 == "pip"')
while read -r _ v; do
  [ -n "$v" ] || continue
  if [ ! -x "$tools/npm-$v/bin/npm" ]; then
    npm install -g --silent --no-audit --no-fund --userconfig /dev/null --prefix "$tools/npm-$v" "npm@$v" >/dev/null
  fi
done < <(pin client | awk '$1 == "npm"')
real="$tools/real"
stamp="$(sha256sum "$pins" | cut -c1-16)"
if [ "$(cat "$real/.stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$real"
  mkdir -p "$real/pypi" "$real/npm" "$real/deb"
  pypi=$(pin pypi | awk '{print $1}')
  # shellcheck disable=SC2086
  "$tools/py/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary :all: -d "$real/pypi" $pypi
  sdists=$(pin pypi-sdist | awk '{print $1}')
  # shellcheck disable=SC2086
  "$tools/py/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: -d "$real/pypi" $sdists
  (cd "$real/npm" && npm pack --silent --userconfig /dev/null $(pin npm | awk '{print $1}') >/dev/null)
  debs=$(pin deb | awk '{print $1}')
  # shellcheck disable=SC2086
  (cd "$real/deb" && { apt-get download -qq $debs 2>/dev/null || { apt-get update -qq && apt-get download -qq $debs; }; })
  echo "$stamp" > "$real/.stamp"
fi
