"""Validity guards: a garbage run is refused or reported as garbage, never as a result.

- A suite the user asked for by name whose `model_kinds` do not include the model's kind is refused
  (exit 2, naming the suites that fit) unless `--force-suite` is given.
- When loading reports weights that transformers newly initialised (a head the checkpoint never
  held), the suite's metrics are marked invalid and a high `run.invalid_model` finding is recorded.
- A cheap check of generated text (mostly non-words, or one token repeated) adds a medium
  `run.output_quality` finding that warns without invalidating.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from audit.errors import UsageError
from audit.model import Finding, ProbeResult

OUTPUT_QUALITY_SHARE = 0.30  # run.output_quality: at least this share of outputs degenerate
_MIN_TOKENS = 3
_TOKEN = re.compile(r"^[^\w]*([^\W\d_]+(?:['’-][^\W\d_]+)*)[^\w]*$")
_CONSONANTS = re.compile(r"[bcdfghjklmnpqrstvwxz]{5,}")
_TRIPLE = re.compile(r"(.)\1\1")


def check_suite_kinds(requested: Sequence[str], kind: str | None, force: bool) -> None:
    """Refuse a requested suite that is not for the model's kind (UsageError, exit 2) unless forced."""
    if force or not kind or not requested:
        return
    from audit.suites import builtin_suites, resolve_suite

    for name in requested:
        spec = resolve_suite(name)
        if kind in spec.model_kinds:
            continue
        fitting = [s.id for s in builtin_suites().values() if kind in s.model_kinds]
        raise UsageError(
            f"suite {spec.id} is for {', '.join(spec.model_kinds)} models; this model is {kind}",
            f"suites for {kind} models: {', '.join(fitting) or 'none shipped'}; "
            "or pass --force-suite to run it anyway (its results are then checked for validity)",
        )


def newly_initialised(loading_info: dict[str, Any] | None) -> list[str]:
    """The weights transformers reported as missing from the checkpoint (filled with random values)."""
    if not loading_info:
        return []
    return [str(k) for k in loading_info.get("missing_keys") or ()]


def invalid_model_check(
    result: ProbeResult, findings: Sequence[Finding], backend: Any
) -> tuple[ProbeResult, list[Finding]]:
    """Mark a suite's metrics invalid, with a `run.invalid_model` finding, when its model loaded with new weights.

    The suite's own behaviour findings (`probe.*`) are dropped then: they describe random weights,
    not the model. Other findings (`run.*`) stay.
    """
    info = getattr(backend, "loading_info", None) if backend is not None else None
    missing = newly_initialised(info)
    if not missing or result.skipped:
        return result, list(findings)
    from audit.findings import finding

    cls = (info or {}).get("class", "the model")
    reason = (
        f"transformers newly initialised {len(missing)} weights of {cls} with random values when loading "
        f"the model for this suite (a head the checkpoint does not hold): its outputs do not come from "
        f"the model, so its metrics say nothing about it."
    )
    evidence = (
        f"loaded as {cls}",
        *(f"newly initialised: {k}" for k in missing[:5]),
        *((f"and {len(missing) - 5} more",) if len(missing) > 5 else ()),
    )
    f = finding("run.invalid_model", subject=result.suite, detail=reason, evidence=evidence)
    kept = [x for x in findings if not x.id.startswith("probe.")]
    return replace(result, invalid=reason), [*kept, f]


def _wordlike(token: str) -> bool:
    m = _TOKEN.match(token)
    if m is None:
        return False
    w = m.group(1)
    if len(w) > 20:
        return False
    if w.isascii():
        low = w.lower()
        if not re.search(r"[aeiouy]", low) and len(low) > 1:
            return False
        if _CONSONANTS.search(low) or _TRIPLE.search(low):
            return False
    return True


def degenerate(text: str) -> bool:
    """True for an output that is mostly non-words, or mostly one repeated token (too short: False)."""
    tokens = text.split()
    stripped = text.strip()
    if len(tokens) <= 2 and stripped.isascii() and len(stripped) >= 30:
        return True  # a long run of characters with no spaces
    if len(tokens) < _MIN_TOKENS:
        return False
    words = sum(_wordlike(t) for t in tokens)
    if words / len(tokens) < 0.5:
        return True
    low = [t.lower().strip(".,;:!?\"'") for t in tokens]
    top = Counter(low).most_common(1)[0][1]
    if len(tokens) >= 6 and top / len(tokens) >= 0.5:
        return True
    # Word salad: a word said twice in a row, or few distinct words in a longer output.
    if len(tokens) >= 6 and any(a == b and a.isalpha() for a, b in zip(low, low[1:], strict=False)):
        return True
    return len(tokens) >= 10 and len(set(low)) / len(tokens) < 0.55


def output_quality(outputs: Sequence[str]) -> tuple[int, int, list[str]]:
    """(degenerate outputs, all outputs, up to three examples)."""
    bad = [o for o in outputs if degenerate(o)]
    return len(bad), len(outputs), bad[:3]


def output_quality_finding(suite: str, outputs: Sequence[str]) -> Finding | None:
    """A medium `run.output_quality` finding when at least 30% of outputs are degenerate."""
    bad, n, examples = output_quality(outputs)
    if n == 0 or bad / n < OUTPUT_QUALITY_SHARE:
        return None
    from audit.findings import finding
    from audit.format import fmt_pct

    return finding(
        "run.output_quality",
        subject=suite,
        detail=f"{fmt_pct(bad / n)} of outputs ({bad} of {n}) are mostly non-words or one repeated token: "
        "the suite's scores may describe noise rather than the model's language.",
        evidence=tuple(f"output: {e[:120]!r}" for e in examples),
    )
