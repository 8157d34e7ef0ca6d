# The two commands: `make dev` runs the local stack, `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: dev test lint bench bloat venv fmt lambda reset check-restart openapi functions

# DynamoDB locally: dynoxide (DynamoDB on SQLite), pinned, built once into
# .local/tools with only its server (no MCP server, no importer).
DYNOXIDE := .local/tools/bin/dynoxide
$(DYNOXIDE):
	cargo install --locked dynoxide-rs@3.2.0 --no-default-features \
	  --features native-sqlite,http-server,cli --root .local/tools

$(VENV)/.installed: infra/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r infra/requirements.txt
	touch $@

venv: $(VENV)/.installed

dev: venv $(DYNOXIDE)
	FRESH=$(FRESH) infra/dev.sh

# A contact survives a restart of make dev; an import interrupted by it is failed with its reason.
check-restart: venv $(DYNOXIDE)
	infra/check-restart.sh

# Forget the local data (projects, keys, contacts) kept between runs of make dev.
reset:
	rm -f .local/dynamodb.sqlite .local/dynamodb.sqlite-wal .local/dynamodb.sqlite-shm

# Unit and end-to-end tests run in one cargo invocation against a fresh
# emulator on a free port; then the template is linted. The end-to-end tests
# mostly wait (on workers, schedules, the emulators), so four run at a time
# even on two cores: 104 s for the suite here, against 166 s at two.
test: venv $(DYNOXIDE)
	cargo fmt --all --check
	RUST_TEST_THREADS=$${RUST_TEST_THREADS:-4} infra/with-moto.sh cargo test --workspace --locked
	$(VENV)/bin/cfn-lint template.yaml

lint: venv
	$(VENV)/bin/cfn-lint template.yaml
	cargo clippy --workspace --all-targets --locked -- -D warnings

fmt:
	cargo fmt --all

# The OpenAPI document the api serves, written again from the handlers' annotations.
openapi:
	UPDATE_OPENAPI=1 cargo test --workspace --locked --lib openapi

bench: venv
	bench/run.sh

# What the HTTP functions' release bytes are, by section and crate, against
# the SDK floor: built as make lambda builds them (the functions together,
# the floors alone) with the symbol table kept. floor-requests is the floor
# whose clients send requests.
HTTP_FUNCTIONS := api public-api files-api messaging-api
BLOAT_DIR = $(or $(CARGO_TARGET_DIR),target)/bloat
bloat:
	cargo build --profile bloat -q --locked $(patsubst %,-p roster-%,$(HTTP_FUNCTIONS))
	cargo build --profile bloat -q --locked -p roster-bench-floors
	python3 bench/bloat.py $(addprefix $(BLOAT_DIR)/,floor-sdk floor-requests $(HTTP_FUNCTIONS))

# Lambda artifacts for arm64 (cargo-lambda and zig come from PyPI into .venv).
$(VENV)/.lambda: $(VENV)/.installed
	$(VENV)/bin/pip install -q cargo-lambda==1.9.2 ziglang==0.15.2
	touch $@

# Every function of template.yaml, built together (their features unified
# among themselves only), each zipped as its CodeUri expects:
# target/lambda/<binary>/bootstrap.zip.
ALL_FUNCTIONS := $(HTTP_FUNCTIONS) import-planner import-worker bulk-worker ses-events send-worker export-worker
FUNCTIONS := $(patsubst %,-p roster-%,$(ALL_FUNCTIONS))
lambda: $(VENV)/.lambda
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --arm64 --output-format zip $(FUNCTIONS)

# Every function's binary name (bench/run.sh builds and measures these).
functions:
	@echo $(ALL_FUNCTIONS)
