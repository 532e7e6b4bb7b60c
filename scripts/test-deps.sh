#!/usr/bin/env bash
# Installs what `make test` needs and a fresh machine may lack: cargo (checked
# only) and memcached, which the ring tests (crates/ring/tests/memcached.rs)
# start on a free loopback port. Further services (e.g. an S3-protocol server)
# get installed here as the tests grow to use them.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required: install the Rust toolchain (https://rustup.rs)" >&2
  exit 1
fi

if ! command -v memcached >/dev/null 2>&1; then
  echo "memcached not found: installing it with apt-get"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  if ! command -v apt-get >/dev/null 2>&1 ||
    ! { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update &&
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y memcached; }; then
    echo "could not install memcached: install it with your package manager (the ring tests need the memcached binary on PATH)" >&2
    exit 1
  fi
fi

echo "test dependencies: ok (cargo $(cargo --version | cut -d' ' -f2), $(memcached -V))"
