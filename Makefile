# auditbook: `make demo` and `make test` work on a fresh machine (they create .venv themselves).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo lab test test-fast bench venv clean docs lock

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/auditbook demo

# the analyst's workbook: JupyterLab on 127.0.0.1 over notebooks/, the store read-only (DB=<url>, or the
# demo's / $AUDITBOOK_DB's); prints the link with its token
lab: $(STAMP)
	$(BIN)/auditbook lab $(if $(DB),--db "$(DB)")

# every tier (tests/unit, tests/integration, tests/e2e): needs Chromium, PostgreSQL and promtool
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

# the unit tier alone: no server, no process, no socket (about 40 s on 2 cores)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile tests/unit

bench: $(STAMP)
	$(BIN)/python bench/scan.py

clean:
	rm -rf $(VENV) var .pytest_cache

# requirements.txt: every package pinned with its SHA-256 hashes, generated from requirements.in by
# pip-tools (itself pinned, in a venv of its own). Run after editing requirements.in.
lock:
	test -x .venv-lock/bin/pip-compile || ($(PY) -m venv .venv-lock && .venv-lock/bin/pip install --quiet pip-tools==7.6.2)
	.venv-lock/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
		--no-emit-find-links --output-file requirements.txt requirements.in
