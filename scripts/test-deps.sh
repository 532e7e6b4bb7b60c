#!/usr/bin/env bash
# Installs what `make test` needs and a fresh machine may lack. Today the
# suite needs only cargo (the integration tests start the real sluice binary
# on loopback ports); this script is where services such as memcached or an
# S3-protocol server get installed as the tests grow to use them.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required: install the Rust toolchain (https://rustup.rs)" >&2
  exit 1
fi
echo "test dependencies: ok (cargo $(cargo --version | cut -d' ' -f2))"
