"""Where the shipped templates/ and probes/ live: inside the wheel, or at the repo root in a checkout."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for cand in (_PKG / "_data" / name, _PKG.parent / name):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"the {name}/ folder is missing from this installation of model-risk-audit")


def templates_dir() -> Path:
    """The Jinja templates and CSS."""
    return _find("templates")


def probes_dir() -> Path:
    """The probe suite definitions (YAML)."""
    return _find("probes")


def policies_dir() -> Path:
    """The shipped policies (default.yaml)."""
    return _find("policies")
