# scene3d: the two set-up commands are `make up` and `make test` (see README.md).
# Both create .venv at the repository root and install what is missing; both are
# safe to run twice.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint bench sysdeps venv clean

up: venv
	$(BIN)/scene3d up

test: venv lint
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --check --no-cache .
	$(BIN)/lint-imports --no-cache

bench: venv
	$(BIN)/scene3d bench ../shared/data/bench --baseline colmap

venv: $(STAMP)

# open3d links against libusb-1.0 at import time; install it when it is missing.
sysdeps:
	@if ! ldconfig -p | grep -q 'libusb-1.0.so.0'; then \
		echo "installing libusb-1.0-0 (needed by open3d)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libusb-1.0-0; \
	fi

$(STAMP): pyproject.toml | sysdeps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
