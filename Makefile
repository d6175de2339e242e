# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,mcp]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/intern demo

# Three workers: most of the suite's time is spent waiting on real `intern serve` processes, stand-ins
# and timers, not on the CPU; each test keeps its own databases, ports and temporary directories.
test: install
	$(BIN)/pytest -q -n 3

lint: install
	$(BIN)/ruff check src tests bench

bench: install
	$(BIN)/python bench/ack.py
	$(BIN)/python bench/loop.py
	$(BIN)/python bench/docs_search.py

clean:
	rm -rf $(VENV) build dist *.egg-info
