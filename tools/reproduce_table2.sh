#!/usr/bin/env bash
# The Table 2 driver: tools/reproduce_table2.py (its docstring says what it does). It runs in
# .venv/bin/python (DRIVER_PY) and forks each experiment from itself; PY=/other/python runs each
# experiment in that interpreter instead.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${DRIVER_PY:-${PY:-.venv/bin/python}}" tools/reproduce_table2.py "$@"
