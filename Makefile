# The two set-up commands: `make demo` (a local blue/green run, no AWS account) and
# `make test` (every test). Each installs what it needs into the project (.venv/, node_modules/).

SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
STACK := python3 local-stack/stack.py

.PHONY: demo test bench setup build lint unit e2e stack-up stack-down clean

$(VENV)/.installed: requirements-dev.txt local-stack/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

# Tests build with test-only features; the function binaries are built last, exactly as
# `cargo lambda watch` runs them, so the local stack never compiles on a first invoke.
build: $(VENV)/.installed
	cargo build --workspace --all-targets
	cargo build --workspace --bins

# The main job: two deployments through the real state machine on the local stack.
demo: build
	@set -euo pipefail; \
	trap '$(STACK) down >/dev/null' EXIT INT TERM; \
	$(STACK) up >/dev/null; \
	cargo run --quiet -p local-stack --bin demo

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	npx --no-install asl-validator --json-path statemachine/blue-green.asl.json
	cfn-lint template.yaml

unit: build
	cargo test --workspace --exclude integration-tests

# Every test: lint, unit and handler tests, the definition's invariants, and end to end on
# the local stack (started here, stopped on exit).
test: setup build lint
	@set -euo pipefail; \
	trap '$(STACK) down >/dev/null' EXIT INT TERM; \
	$(STACK) up >/dev/null; \
	cargo test --workspace --no-fail-fast

# Benchmarks print figures with a baseline measured in the same run; nothing here asserts speed.
RUNS ?= 50
bench: build
	@set -euo pipefail; \
	trap '$(STACK) down >/dev/null' EXIT INT TERM; \
	$(STACK) up >/dev/null; \
	cargo run --quiet -p local-stack --bin bench_rollback -- $(RUNS)

stack-up: build
	$(STACK) up

stack-down:
	$(STACK) down

clean:
	-$(STACK) down
	rm -rf $(VENV) node_modules .local-stack
