# Set-up needs only Python 3.11 and make: the virtualenv is built from requirements.lock.
PYTHON ?= python3.11
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install lock clean bench fuzz

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/cosmo migrate
	$(BIN)/cosmo serve --host $(HOST) --port $(PORT)

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench fuzz
	$(BIN)/ruff format --check src tests bench fuzz

bench: $(STAMP)
	$(BIN)/python bench/foundation.py

# API fuzzing (schemathesis) against a real server, on SQLite and on PostgreSQL + Redis; see README. Options go
# through FUZZ_ARGS (make fuzz FUZZ_ARGS="--max-examples 10 --conformance"); FUZZ_BACKENDS=postgres runs one backend.
FUZZ_BACKENDS ?= sqlite postgres

fuzz: $(STAMP)
	@status=0; for backend in $(FUZZ_BACKENDS); do \
		$(BIN)/python fuzz/api.py --backend $$backend $(FUZZ_ARGS) || status=1; \
	done; exit $$status

# Re-pin after changing dependencies in pyproject.toml.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --disable-pip-version-check "setuptools>=68" -e ".[dev]"
	.lock-venv/bin/pip freeze --all --exclude-editable | grep -v "^pip==" > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache
