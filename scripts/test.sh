#!/usr/bin/env bash
# Set up, then lint, type-check and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check audit tests
.venv/bin/python -m ruff format --check audit tests
.venv/bin/python -m mypy
.venv/bin/python -m pytest "$@"
