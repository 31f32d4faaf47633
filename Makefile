PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

bench: $(STAMP)
	$(BIN)/python tests/bench/bench.py
	$(BIN)/python tests/bench/bench_langgraph.py
	$(BIN)/python tests/bench/bench_startup.py
	$(BIN)/python tests/bench/bench_agents.py
	$(BIN)/python tests/bench/bench_remotes.py
	$(BIN)/python tests/bench/bench_search.py

bench-quick: $(STAMP)
	$(BIN)/python tests/bench/bench.py --quick

clean:
	rm -rf $(VENV) build *.egg-info
