# Sluice developer commands. `make run` and `make test` are the two commands
# the README promises work on a fresh Debian machine with only Rust installed.

CARGO ?= cargo
CONFIG ?= config/sluice-local.yaml

.PHONY: run build test test-deps unit-tests integration-tests lint fmt fmt-check clippy bench loadtest ring-bench canary-soak doc clean \
	chart-test chart-test-deps k8s-manifests image fuzz dashboard-bench scan-bench memory-bench storage-bench

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
	$(CARGO) build -p sluice --bin sluice -p sluice-loadgen --bin sluice-loadgen
	$(MAKE) --no-print-directory chart-test
	@export SLUICE_BIN=$(TARGET_DIR)/debug/sluice SLUICE_LOADGEN_BIN=$(TARGET_DIR)/debug/sluice-loadgen; \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi
	$(CARGO) test --workspace --doc

## test-deps: tools and services the tests use that may be missing
test-deps:
	@scripts/test-deps.sh

## chart-test: lint and render the Helm chart with Helm, validate the
## manifests against the Kubernetes schemas, `sluice -config.verify` every
## rendered config, and check k8s/ is in sync (scripts/chart_test.py)
CHART_VENV := $(TARGET_DIR)/chart-test-venv

chart-test: chart-test-deps
	$(CARGO) build -p sluice --bin sluice
	$(CHART_VENV)/bin/python scripts/chart_test.py --sluice-bin $(TARGET_DIR)/debug/sluice

chart-test-deps: $(CHART_VENV)/.installed

$(CHART_VENV)/.installed: scripts/chart-test-requirements.txt
	python3 -m venv $(CHART_VENV)
	$(CHART_VENV)/bin/pip install --quiet --disable-pip-version-check -r scripts/chart-test-requirements.txt
	touch $@

## k8s-manifests: regenerate k8s/ (plain manifests) from the chart's defaults
k8s-manifests: chart-test-deps
	$(CHART_VENV)/bin/python scripts/chart_test.py --write-k8s

## image: the container image (docker/Dockerfile), tagged with the version
IMAGE ?= sluice/sluice
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
REVISION := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
BRANCH := $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)

image:
	docker build -f docker/Dockerfile \
		--build-arg REVISION=$(REVISION) --build-arg BRANCH=$(BRANCH) \
		-t $(IMAGE):$(VERSION) .

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

## loadtest: release build, all-in-one server with WAL, push and query load
# (scripts/loadtest.sh; LOADTEST_* variables tune it, see docs/performance.md)
loadtest:
	CARGO=$(CARGO) scripts/loadtest.sh

## ring-bench: distributed-mode ingest, 3 ingesters + distributor, RF=3 vs RF=1
ring-bench:
	CARGO=$(CARGO) scripts/ring-bench.sh

## canary-soak: two canaries (live tail, query_range) for CANARY_SOAK_DURATION
## (10m) against 3 ingesters + distributor + querier/frontend; one ingester is
## SIGKILLed and restarted a third of the way through; fails on missing lines
canary-soak:
	CARGO=$(CARGO) scripts/canary-soak.sh

## dashboard-bench: a 7-day dashboard panel cold and warm, 20 concurrent dashboard queries
dashboard-bench:
	CARGO=$(CARGO) scripts/dashboard-bench.sh

## scan-bench: filtered log and count queries over 1 GB and 10 GB of flushed data, cold and warm
scan-bench:
	CARGO=$(CARGO) scripts/scan-bench.sh

## memory-bench: ingester resident memory holding 3M lines unflushed in 71, 10k and 100k streams
memory-bench:
	CARGO=$(CARGO) scripts/memory-bench.sh

## storage-bench: bytes in object storage per byte of log pushed, per chunk codec
storage-bench:
	CARGO=$(CARGO) scripts/storage-bench.sh

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
