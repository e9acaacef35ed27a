# Quick start: `make run` (the embedded demo) and `make test`. Everything installs itself.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/edgeproxy.toml
STAMP  := $(VENV)/.installed

.PHONY: setup run test test-fast lint typecheck format check-config bench clean system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(STAMP)

# Tools the tests drive as real peers or checkers; installed from Debian when missing. The console's
# browser tests drive Debian's chromium (Playwright's own browser download is never used), with the
# DejaVu fonts its pages and screenshots are drawn in. gcc builds the bench's h2load client-certificate
# shim (bench/client_cert_shim.c), which tests/benchmarks checks.
system-deps:
	@missing=""; \
	for tool in curl:curl openssl:openssl promtool:prometheus nghttp:nghttp2-client h2load:nghttp2-client \
	    chromium:chromium gcc:gcc; do \
	  command -v $${tool%%:*} >/dev/null || missing="$$missing $${tool##*:}"; \
	done; \
	[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$$missing fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then apt-get update -qq && apt-get install -y -qq $$missing; fi

run: setup
	$(BIN)/edgeproxy serve -c $(CONFIG)

check-config: setup
	$(BIN)/edgeproxy check-config -c $(CONFIG)

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# Files, strictness and per-library exceptions live in pyproject.toml's [tool.mypy].
typecheck: setup
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

test: setup system-deps lint typecheck
	$(BIN)/pytest -q

test-fast: setup
	$(BIN)/pytest -q -m "not slow"

# The docs/performance.md figures, edgeproxy against nginx on this machine (bench/README.md), then what the
# idle RSS is made of (the import floor), then the handshake cost of OCSP with a warm cache, of the client
# records and of authorization rules; about 10 minutes in all on a quiet 2-core machine, 18.5 measured on a
# busy one (bench/README.md).
bench: setup
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.import_floor
	$(BIN)/python -m bench.ocsp_warm
	$(BIN)/python -m bench.client_records
	$(BIN)/python -m bench.authz

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache build src/*.egg-info
