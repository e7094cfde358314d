# The two commands: `make run` starts the service, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint typecheck bench clean

$(STAMP): pyproject.toml requirements/test-chatterbox.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# ChatterBox itself pins torch 2.6 and gradio: install it without deps, as Dockerfile.gpu does,
	# so the adapter tests read the real package's signatures.
	$(BIN)/pip install --quiet --no-deps -r requirements/test-chatterbox.txt
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python -m infra.dev_stack

test: install
	$(BIN)/python -m infra.ensure_redis
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy .

bench: install
	$(BIN)/python -m infra.ensure_redis
	$(BIN)/python -m bench.encode
	$(BIN)/python -m bench.engine

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
