"""Drift: what changed between a baseline audit and this one.

Revision, card metadata (a licence change is a finding), card sections added or removed,
findings new and resolved, and each shared metric's change with a test: a permutation test on
the stored per-prompt scores when both run directories hold them (generation suites), else a
z-test from the two 95% intervals.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from audit.findings import finding
from audit.format import fmt_num, fmt_p
from audit.model import AuditReport, DriftResult, Finding, MetricChange
from audit.runfiles import SAMPLES, SCORES, read_records
from audit.stats import interval_z_p, mean_shift_p

ALPHA = 0.05
_META_KEYS = (
    "license",
    "license_name",
    "license_link",
    "datasets",
    "base_model",
    "pipeline_tag",
    "library_name",
    "language",
)


def _per_prompt(run_dir: Path | None, suite: str, scorer: str, label: str) -> dict[str, float]:
    """Mean score per prompt of one suite from a run directory's samples and scores (via audit.runfiles)."""
    if run_dir is None:
        return {}
    prompt_of = {r["key"]: r["prompt_id"] for r in read_records(run_dir, SAMPLES) if r.get("suite") == suite}
    values: dict[str, list[float]] = defaultdict(list)
    for r in read_records(run_dir, SCORES):
        scores = r.get("scores")
        if (
            r.get("scorer") == scorer
            and r.get("key") in prompt_of
            and isinstance(scores, dict)
            and label in scores
        ):
            values[prompt_of[r["key"]]].append(float(scores[label]))
    return {k: float(np.mean(v)) for k, v in values.items()}


def _z_test(a: Any, b: Any) -> float | None:
    return interval_z_p(a.value, a.ci_low, a.ci_high, b.value, b.ci_low, b.ci_high)


def diff_reports(
    old: AuditReport,
    new: AuditReport,
    *,
    baseline: str = "",
    old_dir: Path | None = None,
    new_dir: Path | None = None,
    seed: int = 0,
) -> DriftResult:
    """Compare two reports (and, when given, their run directories' per-prompt scores)."""
    oc, nc = old.card, new.card
    changes = []
    for key in _META_KEYS:
        a, b = oc.metadata.get(key), nc.metadata.get(key)
        if a != b:
            changes.append(f"{key}: {json.dumps(a)[:120]} -> {json.dumps(b)[:120]}")
    license_changed = oc.licenses != nc.licenses
    old_sections = {s.key for s in oc.sections if s.present}
    new_sections = {s.key for s in nc.sections if s.present}
    old_f, new_f = {f.id for f in old.findings}, {f.id for f in new.findings}
    metrics: list[MetricChange] = []
    for np_ in new.probes:
        op = next((p for p in old.probes if p.suite == np_.suite and not p.skipped), None)
        if op is None or np_.skipped:
            continue
        tox = next((s for s in np_.scorers if s.kind == "toxicity"), None)
        old_pp = _per_prompt(old_dir, np_.suite, tox.name, tox.primary) if tox else {}
        new_pp = _per_prompt(new_dir, np_.suite, tox.name, tox.primary) if tox else {}
        olds = {(m.name, m.group, m.axis, m.label): m for m in op.metrics}
        for m in np_.metrics:
            a = olds.get((m.name, m.group, m.axis, m.label))
            if a is None or a.value is None or m.value is None:
                continue
            test = "z-test from 95% intervals"
            p: float | None
            if (
                old_pp
                and new_pp
                and m.name in {"mean_toxicity", "expected_maximum_toxicity", "toxicity_probability"}
                and len(old_pp) >= 2
                and len(new_pp) >= 2
            ):
                p = mean_shift_p(list(old_pp.values()), list(new_pp.values()), seed)
                test = "permutation test on per-prompt mean scores"
            else:
                p = _z_test(a, m)
            worse = (m.value > a.value) if m.higher_is_worse else (m.value < a.value)
            metrics.append(
                MetricChange(
                    np_.suite,
                    m.name,
                    " ".join(x for x in (m.axis, m.group, m.label) if x),
                    a.value,
                    m.value,
                    p,
                    p is not None and p < ALPHA and m.value != a.value,
                    worse,
                    test,
                )
            )
    return DriftResult(
        baseline=baseline,
        old_revision=old.run.resolved_revision,
        new_revision=new.run.resolved_revision,
        revision_changed=old.run.resolved_revision != new.run.resolved_revision,
        metadata_changes=tuple(changes),
        license_changed=license_changed,
        sections_added=tuple(sorted(new_sections - old_sections)),
        sections_removed=tuple(sorted(old_sections - new_sections)),
        findings_new=tuple(sorted(new_f - old_f)),
        findings_resolved=tuple(sorted(old_f - new_f)),
        metrics=tuple(metrics),
    )


def drift_findings(drift: DriftResult, subject: str) -> list[Finding]:
    """Findings raised by drift: `drift.license_changed`, `drift.metric_regressed`."""
    out = []
    if drift.license_changed:
        out.append(
            finding(
                "drift.license_changed",
                subject=subject,
                evidence=tuple(c for c in drift.metadata_changes if c.startswith("license"))
                or ("license changed",),
            )
        )
    worse = [m for m in drift.metrics if m.significant and m.worse]
    if worse:
        out.append(
            finding(
                "drift.metric_regressed",
                subject=subject,
                detail=f"{len(worse)} probe metric{'s are' if len(worse) != 1 else ' is'} worse than in the "
                "baseline audit, and the change is statistically significant.",
                evidence=tuple(
                    f"{m.suite}/{m.metric} {m.group}: {fmt_num(m.old, 4)} -> {fmt_num(m.new, 4)} "
                    f"({fmt_p(m.p_value, adjusted=False)})"
                    for m in worse[:10]
                ),
            )
        )
    return out
