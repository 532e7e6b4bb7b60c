#!/usr/bin/env bash
# Installs what `make test` needs and a fresh machine may lack: cargo (checked
# only), memcached, which the ring tests (crates/ring/tests/memcached.rs)
# start on a free loopback port, and python3 with venv, in which
# `make chart-test` installs Helm's SDK and the Kubernetes schemas; and
# Prometheus (with promtool) and Alertmanager for the ruler and rule-file
# tests.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required: install the Rust toolchain (https://rustup.rs)" >&2
  exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
apt_updated=""

# apt_install WHY PACKAGE...: installs Debian packages, or explains and fails.
apt_install() {
  local why="$1"
  shift
  echo "installing $* with apt-get ($why)"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "apt-get not found: install $* with your package manager ($why)" >&2
    exit 1
  fi
  if [ -z "$apt_updated" ]; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update || true
    apt_updated=1
  fi
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"; then
    echo "could not install $*: install it with your package manager ($why)" >&2
    exit 1
  fi
}

if ! command -v memcached >/dev/null 2>&1; then
  apt_install "the ring tests need the memcached binary on PATH" memcached
fi

if ! command -v python3 >/dev/null 2>&1; then
  apt_install "make chart-test runs Helm's SDK from Python" python3 python3-venv
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  apt_install "make chart-test makes a Python venv" python3-venv
fi

# The ruler tests (integration-tests/tests/ruler.rs) send alerts to a real
# Alertmanager and recorded samples to a real Prometheus; the rule-file test
# (integration-tests/tests/observability.rs) runs promtool, which ships with
# Debian's prometheus package.
if ! command -v prometheus-alertmanager >/dev/null 2>&1 && ! command -v alertmanager >/dev/null 2>&1; then
  apt_install "the ruler tests send alerts to a real Alertmanager" prometheus-alertmanager
fi
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  apt_install "the ruler tests remote-write to a real Prometheus; the rule-file test runs promtool" prometheus
fi

echo "test dependencies: ok (cargo $(cargo --version | cut -d' ' -f2), $(memcached -V), $(python3 --version), $(promtool --version 2>&1 | head -n 1))"
