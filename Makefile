# Ampora's two everyday commands: `make run` (the local stack) and `make test` (every check).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint unit integration e2e infra bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . \
	  || $(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ampora dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e

infra: $(STAMP)
	$(BIN)/pytest tests/infra

test: lint
	$(BIN)/pytest -n 2 --dist loadfile tests

bench: $(STAMP)
	$(BIN)/python bench/coldstart.py
	$(BIN)/python bench/opamp.py
	$(BIN)/python bench/policy_eval.py
	$(BIN)/python bench/policy_dry_run.py
	$(BIN)/python bench/rollout.py
	$(BIN)/python bench/live_fanout.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache infra/cdk.out chalice.out infra/chalice.out

# OpAMP: regenerate the committed Python code from Ampora's .proto files (grpcio-tools is
# pinned in requirements-dev.txt, so the output is the same on every machine).
PROTOS := chalicelib/opamp/proto/anyvalue.proto chalicelib/opamp/proto/opamp.proto
.PHONY: proto
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc --proto_path=. --python_out=. --pyi_out=. $(PROTOS)
