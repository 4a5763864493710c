"""Classify licence identifiers (the Hub's licence ids, SPDX-like) and compare their strictness."""

from __future__ import annotations

import re

from audit.model import LicenseClass

# Strictness order used for conflicts: a dataset or base model whose licence ranks
# higher than the model's own licence is a `license.conflict`.
STRICTNESS: dict[str, int] = {
    "permissive": 0,
    "copyleft": 1,
    "restricted_use": 2,
    "noncommercial": 3,
}

_PERMISSIVE = {
    "apache-2.0",
    "apache2",
    "apache",
    "mit",
    "bsd",
    "bsd-2-clause",
    "bsd-3-clause",
    "bsd-3-clause-clear",
    "bsl-1.0",
    "isc",
    "unlicense",
    "cc0-1.0",
    "cc0",
    "cc-by-2.0",
    "cc-by-2.5",
    "cc-by-3.0",
    "cc-by-4.0",
    "zlib",
    "wtfpl",
    "odc-by",
    "pddl",
    "ecl-2.0",
    "afl-3.0",
    "artistic-2.0",
    "postgresql",
    "ncsa",
    "ofl-1.1",
    "lppl-1.3c",
    "c-uda",
    "cdla-permissive-1.0",
    "cdla-permissive-2.0",
    "etalab-2.0",
    "pubdomain",
    "public-domain",
    "mit-0",
    "0bsd",
    "cc-by",
    "apple-amlr",
}
_COPYLEFT_PREFIXES = (
    "gpl",
    "agpl",
    "lgpl",
    "cc-by-sa",
    "gfdl",
    "odbl",
    "mpl",
    "epl",
    "eupl",
    "osl",
    "cdla-sharing",
)
_NONCOMMERCIAL_PATTERNS = (
    r"^cc-by-nc",
    r"\bnon-?commercial\b",
    r"\bresearch[-_ ]only\b",
    r"^deepfloyd-if",
    r"^intel-research",
    r"^apple-ascl",
    r"^fair-noncommercial",
    r"^cc-nc",
    r"^llama2-noncommercial",
)
_RESTRICTED_PATTERNS = (
    r"openrail",
    r"\brail\b",
    r"-rail-",
    r"^llama",
    r"^gemma",
    r"^bigcode",
    r"^bigscience",
    r"^creativeml",
    r"^cc-by-nd",
    r"^cc-by-.*-nd",
    r"^deepseek",
    r"^tongyi",
    r"^qwen",
    r"^falcon",
    r"^h-research",
    r"^health-ai-developer",
    r"^mistral",
    r"^nvidia-open-model",
    r"^jamba",
)
_MISSING = {"", "none", "null", "unknown", "unlicensed", "no-license", "not specified", "unspecified", "tbd"}


def normalise_license(value: str) -> str:
    """Lower-case, trim and map spaces/underscores to hyphens: `Apache 2.0` -> `apache-2.0`."""
    v = value.strip().lower()
    v = re.sub(r"[\s_]+", "-", v)
    v = {"apache-license-2.0": "apache-2.0", "apache-2": "apache-2.0", "mit-license": "mit"}.get(v, v)
    return v[:100]


def classify_license(value: str) -> LicenseClass:
    """Put one licence id in a class: permissive, copyleft, restricted_use, noncommercial, other, missing."""
    v = normalise_license(value)
    if v in _MISSING:
        return "missing"
    if v == "other":
        return "other"
    if any(re.search(p, v) for p in _NONCOMMERCIAL_PATTERNS):
        return "noncommercial"
    if any(re.search(p, v) for p in _RESTRICTED_PATTERNS):
        return "restricted_use"
    if v.startswith(_COPYLEFT_PREFIXES):
        return "copyleft"
    if v in _PERMISSIVE or v.startswith(("bsd-", "cc-by-", "cc0")):
        return "permissive"
    return "other"


def strictest(classes: list[LicenseClass]) -> LicenseClass:
    """The class a set of licences amounts to (the strictest known one wins)."""
    if not classes:
        return "missing"
    ranked = [c for c in classes if c in STRICTNESS]
    if ranked:
        return max(ranked, key=lambda c: STRICTNESS[c])
    if "other" in classes:
        return "other"
    return "missing"


def is_stricter(a: LicenseClass, b: LicenseClass) -> bool:
    """True when licence class a is known to be stricter than b."""
    return a in STRICTNESS and b in STRICTNESS and STRICTNESS[a] > STRICTNESS[b]
