# The README's commands. Each installs what it needs first (idempotent).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
QUICKSTART_OUT ?= runs/quickstart

.PHONY: install quickstart test clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[train,dev]'
	touch $(STAMP)

quickstart: install
	$(VENV)/bin/hybrid-edge quickstart --out $(QUICKSTART_OUT)

test: install
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	@$(PY) -m pytest -q tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo 'make test: pytest collected no tests' >&2; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) runs *.egg-info
