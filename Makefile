# The two commands: `make run` starts the service, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
CHATTERBOX_STAMP := $(VENV)/.installed-chatterbox
BENCH_STAMP := $(VENV)/.installed-bench
# The browser the playground tests drive (Playwright cannot download its own here): Debian's, installed if missing.
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test install lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The service alone: no torch, no test tools.
$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

# ChatterBox on the CPU: its runtime with a CPU torch (requirements/cpu.txt says why torchaudio comes without its
# C++ extension), then the library itself without its dependencies (it pins torch 2.6 and gradio), as
# Dockerfile.gpu installs it on a GPU. The tests run it on random-weight checkpoints (bench/checkpoint.py).
$(CHATTERBOX_STAMP): $(RUN_STAMP) requirements/cpu.txt requirements/chatterbox.txt
	$(BIN)/pip install --quiet -r requirements/cpu.txt
	$(BIN)/pip install --quiet --no-deps torchaudio==2.11.0 chatterbox-tts==0.1.7
	rm -f $(VENV)/lib/python*/site-packages/torchaudio/lib/*.so
	touch $(CHATTERBOX_STAMP)

$(TEST_STAMP): $(CHATTERBOX_STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(TEST_STAMP)

$(BENCH_STAMP): $(TEST_STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

$(CHROMIUM):
	@echo "Installing Debian's chromium for the browser tests"
	@DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	@DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

install: $(TEST_STAMP) $(CHROMIUM)

# TTS_ENGINE=chatterbox (in the environment) installs ChatterBox's CPU runtime too.
run: $(RUN_STAMP) $(if $(filter chatterbox,$(TTS_ENGINE)),$(CHATTERBOX_STAMP))
	$(BIN)/python -m infra.dev_stack

test: $(TEST_STAMP) $(CHROMIUM)
	$(BIN)/python -m infra.ensure_redis
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	CHROMIUM=$(CHROMIUM) $(BIN)/pytest -q --durations=20

lint: $(TEST_STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy .

# Each prints ratios measured in one run; queue and api start their own worker and API; batching and streaming run
# ChatterBox Turbo on a random-weight checkpoint they build; normalization needs the bench extra (a speech recogniser).
bench: $(BENCH_STAMP)
	$(BIN)/python -m infra.ensure_redis
	$(BIN)/python -m bench.encode
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.queue
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.normalization
	$(BIN)/python -m bench.projections
	$(BIN)/python -m bench.batching
	$(BIN)/python -m bench.streaming

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis test-artifacts
