# Sluice developer commands. `make run` and `make test` are the two commands
# the README promises work on a fresh Debian machine with only Rust installed.

CARGO ?= cargo
CONFIG ?= config/sluice-local.yaml

.PHONY: run build test test-deps unit-tests integration-tests lint fmt fmt-check clippy bench fuzz doc clean

## run: build (release) and start the all-in-one server on :3100 / :9095
run:
	$(CARGO) run --release -p sluice --bin sluice -- -config.file=$(CONFIG) -target=all

build:
	$(CARGO) build --workspace --all-targets

## test: install what the tests need, then run every test in the workspace
# The integration tests use the binary built here (SLUICE_BIN) instead of
# each test process asking cargo whether it is fresh.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)

test: test-deps
	$(CARGO) build -p sluice --bin sluice
	@export SLUICE_BIN=$(TARGET_DIR)/debug/sluice; \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi
	$(CARGO) test --workspace --doc

## test-deps: tools and services the tests use that may be missing
test-deps:
	@scripts/test-deps.sh

## lint: formatting and clippy, as CI checks them
lint: fmt-check clippy

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## bench: the criterion benchmarks, short runs
bench:
	$(CARGO) bench --workspace -- --warm-up-time 1 --measurement-time 3

## fuzz: run each cargo-fuzz target (fuzz/) for FUZZ_TIME seconds; needs
## nightly and `cargo install cargo-fuzz`
FUZZ_TIME ?= 60
FUZZ_TARGETS := push_decode logql_parse

fuzz:
	@for target in $(FUZZ_TARGETS); do \
		(cd fuzz && $(CARGO) +nightly fuzz run $$target -- -max_total_time=$(FUZZ_TIME)) || exit 1; \
	done

doc:
	$(CARGO) doc --workspace --no-deps

clean:
	$(CARGO) clean
