# scene3d: the two set-up commands are `make up` and `make test` (see README.md).
# Both create .venv at the repository root and install what is missing; both are
# safe to run twice.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint bench sysdeps testdeps venv clean

up: venv
	$(BIN)/scene3d up

test: venv testdeps lint
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --check --no-cache .
	$(BIN)/lint-imports --no-cache

bench: venv
	$(BIN)/scene3d bench ../shared/data/bench --baseline colmap

venv: $(STAMP)

# Debian packages, installed where missing. `sysdeps`: libusb-1.0 (open3d links against it
# at import time). `testdeps`: promtool (package prometheus), with which tests/deploy checks
# the Prometheus configuration of docker-compose.yml.
sysdeps:
	@$(call apt_install,libusb-1.0-0,ldconfig -p | grep -q 'libusb-1.0.so.0')

testdeps:
	@$(call apt_install,prometheus,command -v promtool >/dev/null)
	@# Only promtool is wanted: where systemd started the packaged server, stop it.
	@if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO systemctl disable --now prometheus; \
	fi

# $(call apt_install,PACKAGE,CHECK): install PACKAGE from Debian unless CHECK succeeds.
define apt_install
	if ! $(2); then \
		echo "installing $(1)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $(1); \
	fi
endef

$(STAMP): pyproject.toml | sysdeps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
