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
