# Two commands on a fresh machine: `make reproduce` (the main job: Table 2 and the paper's
# figures at tiny scale on the embedded data) and `make test` (ruff + the whole test suite).
# Both create or reuse .venv inside the repository. `make demo` is the quick codec-only job.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test lint reproduce demo clean

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest -q -n 2 --dist loadfile tests

reproduce: $(STAMP)
	bash tools/reproduce_table2.sh --scale=tiny

demo: $(STAMP)
	bash tools/reproduce.sh

clean:
	rm -rf $(VENV) runs
