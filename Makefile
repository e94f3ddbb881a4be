# make install | make run | make test | make lint | make bench
# Finds a Python >= 3.12 (PATH first, then pyenv's versions), creates .venv and installs the project.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080
RULES ?= rules.yaml

define find_python
for c in python3.13 python3.12 python3 python; do \
  p=$$(command -v $$c 2>/dev/null) || continue; \
  $$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null && { echo $$p; exit 0; }; \
done; \
for p in $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do \
  $$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null && { echo $$p; exit 0; }; \
done; \
echo "No Python >= 3.12 found on PATH or in pyenv" >&2; exit 1
endef

.PHONY: install browser run web test test-tools lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || { py=$$($(find_python)) && echo "Using $$py" && $$py -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,report,report-duckdb]'
	@touch $(STAMP)

run: install
	$(VENV)/bin/mitmdump --listen-host $(HOST) -p $(PORT) -s addon/ai_proxy.py --set ai_rules=$(RULES)

web: install
	$(VENV)/bin/mitmweb --listen-host $(HOST) -p $(PORT) -s addon/ai_proxy.py --set ai_rules=$(RULES)

# The one browser check (tests/test_e2e_mitmweb.py) uses the distribution's Chromium and tesseract: installed
# where apt-get can (as root), otherwise that test is skipped.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v tesseract >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -q --no-install-recommends chromium tesseract-ocr >/dev/null \
	      || echo "could not install chromium/tesseract-ocr: the browser check will be skipped"; \
	  else echo "no chromium/tesseract (apt-get install chromium tesseract-ocr): the browser check will be skipped"; fi; }

test: install browser test-tools
	$(VENV)/bin/ruff check addon tests bench
	$(PY) -m pytest -q

# Programs some tests use from the distribution's packages, installed where we can (root and apt); the tests that
# need one skip cleanly without it. haproxy: several proxy processes behind one port (tests/test_e2e_processes.py).
test-tools:
	@command -v haproxy >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  timeout 180 apt-get install -y -qq haproxy >/dev/null 2>&1 && echo "installed haproxy"; } || true

lint: install
	$(VENV)/bin/ruff check addon tests bench
	$(VENV)/bin/ruff format --check addon tests bench

bench: install
	$(PY) bench/bench_chat.py

clean:
	rm -rf $(VENV) .pytest_cache
