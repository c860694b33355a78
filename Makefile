# Two commands matter: `make demo` and `make test`. Everything else is a step of those.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# Test processes: most of a test's time is a server subprocess starting, a poll or a timeout,
# so more processes than cores still shortens the run (pytest-xdist; a module stays on one).
TEST_WORKERS ?= 3
# The C part is built by the install: a change to it installs again.
BUILT  := pyproject.toml requirements.lock setup.py src/egress/sources/postgresql/copy_drain.c \
          src/egress/sources/mysql/fetch_rows.c src/egress/sinks/json_compact.c
STAMP  := $(VENV)/.installed-$(shell cat $(BUILT) | sha1sum | cut -c1-12)

.PHONY: demo test install lint typecheck unit services bench clean

$(STAMP): $(BUILT)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/egress demo

services:
	scripts/services.sh

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

test: install services lint typecheck
	$(BIN)/pytest -q -m serial
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not serial"

bench: install services
	$(BIN)/python bench/extract_throughput.py

clean:
	rm -rf $(VENV) egress-data .pytest_cache .mypy_cache .ruff_cache
