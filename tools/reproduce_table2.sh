#!/usr/bin/env bash
# The Table 2 driver: tools/reproduce_table2.py (its docstring says what it does). PY names the
# python that runs the experiments (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${DRIVER_PY:-${PY:-.venv/bin/python}}" tools/reproduce_table2.py "$@"
