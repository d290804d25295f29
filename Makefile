# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
# Both install what they need first: the package into .venv, and the classical codecs that
# `codec bench` compares against (idempotent: a second install is a quick check).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test lint format demo bench

install:
	@tools/install.sh
	@tools/install_baselines.sh

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

demo: install
	$(PY) tools/demo.py

bench: install
	$(PY) bench/speed.py
	$(PY) bench/streaming_consistency.py
	$(PY) bench/step_time.py
