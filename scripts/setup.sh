#!/usr/bin/env bash
# Create .venv and install model-risk-audit with the demo and test extras.
# torch is installed first from the CPU pin: otherwise pip resolves torch>=2 to a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[demo,models,probes,test,azure,scale,int8]"
  # Reference implementations for the metric cross-checks (tests only). wefe pins numpy<=1.26 and
  # scipy<1.13 although its WEAT runs on current ones, so it is installed without its pins.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check gensim plotly semantic_version Unidecode pandas requests tqdm scikit-learn
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps "wefe==1.0.1" "honest==0.2.1"
  rm -f "$VENV"/.installed-* && touch "$stamp"
fi
