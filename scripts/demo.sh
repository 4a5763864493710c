#!/usr/bin/env bash
# Set up, then run the offline demo audit of the bundled all-MiniLM-L6-v2 snapshot -> reports/demo/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/model-audit demo "$@"
