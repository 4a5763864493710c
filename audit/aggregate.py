"""The aggregate stage of generation suites: metrics with intervals, group gaps and probe findings
from the samples and scores of one suite. Statistics come from `audit.stats` only."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from audit.config import ProbeOptions, Sampling, SuiteSpec
from audit.guards import output_quality_finding
from audit.model import (
    Finding,
    GenerationAggregate,
    MetricResult,
    SampleRecord,
    SampleView,
    ScorerValidation,
)
from audit.probe_findings import DEFAULT, threshold_findings
from audit.score import Scorer
from audit.stats import (
    Estimate,
    expected_maximum,
    holm,
    largest_gap,
    mean_ci,
    mean_difference_ci,
    probability_any,
)
from audit.suites import ExpandedSuite, Prompt

# The documented default thresholds of the probe findings (decided in audit/probe_findings.py).
TOXICITY_PROB_LOWER = DEFAULT.toxicity_probability_lower
GROUP_TOXICITY_LOWER = DEFAULT.group_toxicity_lower
GAP_MIN = DEFAULT.gap_min
GAP_ALPHA = DEFAULT.gap_alpha


def _redact(text: str) -> str:
    return "█" * min(len(text), 40) if text else ""


def _metric(name: str, est: Estimate, **kw: Any) -> MetricResult:
    note = "; ".join(x for x in (est.note, kw.pop("note", "")) if x)
    return MetricResult(
        name=name, value=est.value, ci_low=est.ci_low, ci_high=est.ci_high, n=est.n, note=note, **kw
    )


def aggregate(
    suite: ExpandedSuite,
    sampling: Sampling,
    samples: dict[str, list[SampleRecord]],
    scores: dict[str, dict[str, dict[str, float]]],
    scorers: list[Scorer],
    popts: ProbeOptions,
) -> tuple[GenerationAggregate, list[Finding]]:
    """Metrics with intervals, the score distribution, the worst samples and probe findings of one suite."""
    spec = suite.spec
    seed = sampling.seed
    prompts = [p for p in suite.prompts if p.id in samples]
    tox = next((s for s in scorers if s.info.kind == "toxicity"), None)
    sent = next((s for s in scorers if s.info.kind == "sentiment"), None)
    metrics: list[MetricResult] = []
    findings: list[Finding] = []
    notes: list[str] = []
    distribution: tuple[float, ...] = ()
    worst: tuple[SampleView, ...] = ()
    answers = [r for p in prompts for r in samples[p.id]]
    if nulls := sum(1 for r in answers if r.get("null_content")):
        notes.append(
            f"{nulls} of {len(answers)} answers had no content (content: null, a refusal): scored as empty text"
        )
    if cut := sum(1 for r in answers if r.get("truncated_from")):
        notes.append(f"{cut} of {len(answers)} answers exceeded the per-answer character limit and were cut")
    if (quality := output_quality_finding(spec.id, [str(r["output"]) for r in answers])) is not None:
        findings.append(quality)
    validations = _validations(scorers, popts)
    if tox is None:
        notes.append("no toxicity scorer ran: toxicity metrics are not available")
    else:
        ti = tox.info
        tox_scores = scores[ti.name]
        mat = np.array([[tox_scores[r["key"]][ti.primary] for r in samples[p.id]] for p in prompts])
        distribution = tuple(round(float(v), 4) for v in mat.ravel())
        flat = [(r, tox_scores[r["key"]][ti.primary]) for p in prompts for r in samples[p.id]]
        flat.sort(key=lambda x: -x[1] if ti.higher_is_worse else x[1])
        worst = tuple(
            SampleView(
                r["prompt_id"],
                r["sample_index"],
                r["prompt"],
                _redact(r["output"]) if popts.redact else r["output"],
                round(float(v), 4),
                r.get("group", ""),
            )
            for r, v in flat[: popts.worst_samples]
        )
        if "expected_maximum_toxicity" in spec.metrics:
            metrics.append(
                _metric("expected_maximum_toxicity", expected_maximum(mat, seed), label=ti.primary)
            )
        if "toxicity_probability" in spec.metrics:
            tp = probability_any(mat, ti.threshold, seed)
            metrics.append(_metric("toxicity_probability", tp, label=ti.primary))
        if "mean_toxicity" in spec.metrics:
            metrics.append(
                _metric(
                    "mean_toxicity",
                    mean_ci(mat.mean(axis=1), seed),
                    label=ti.primary,
                    note=f"mean of per-prompt means; n = prompts ({sampling.samples_per_prompt} samples each)",
                )
            )
        if "per_label" in spec.metrics:
            labels = sorted(next(iter(tox_scores.values())).keys()) if tox_scores else []
            for lab in labels:
                lm = np.array([[tox_scores[r["key"]][lab] for r in samples[p.id]] for p in prompts])
                metrics.append(_metric("label_mean", mean_ci(lm.mean(axis=1), seed), label=lab))
                metrics.append(_metric("label_expected_maximum", expected_maximum(lm, seed), label=lab))
        if any(m in spec.metrics for m in ("group_mean_toxicity", "axis_gap", "paired_difference")):
            control = _control_scores(tox, prompts) if "axis_gap" in spec.metrics else {}
            metrics.extend(
                _group_metrics(spec, prompts, samples, tox_scores, ti.primary, seed, control, ti.name)
            )
    if sent is not None and "group_negative_sentiment_rate" in spec.metrics:
        si = sent.info
        for (axis, group), plist in _by_group(prompts).items():
            rates = [
                float(np.mean([scores[si.name][r["key"]][si.primary] <= si.threshold for r in samples[p.id]]))
                for p in plist
            ]
            metrics.append(
                _metric(
                    "negative_sentiment_rate",
                    mean_ci(rates, seed),
                    group=group,
                    axis=axis,
                    label=si.primary,
                    note=f"compound <= {si.threshold}; n = prompts",
                )
            )
    elif "group_negative_sentiment_rate" in spec.metrics:
        notes.append("no sentiment scorer ran: negative-sentiment rates are not available")
    findings += threshold_findings(spec.id, metrics, [s.info for s in scorers], sampling.samples_per_prompt)
    return GenerationAggregate(
        metrics=tuple(metrics),
        distribution=distribution,
        worst=worst,
        redacted=popts.redact,
        notes=tuple(notes),
        scorer_validation=tuple(validations),
    ), findings


def _control_scores(scorer: Scorer, prompts: list[Prompt]) -> dict[tuple[str, str], float]:
    """The scorer's own scores on the neutral control statements ("I am a {term} person.") per group."""
    from audit.score.validity import control_scores

    return control_scores(scorer, prompts)


def _validations(scorers: list[Scorer], popts: ProbeOptions) -> tuple[ScorerValidation, ...]:
    """--data scorer-validation=FILE: each toxicity scorer's AUC and accuracy on the user's labels."""
    value = popts.data.get("scorer-validation")
    if not value:
        return ()
    from pathlib import Path

    from audit.errors import UsageError
    from audit.score.validity import validate_scorer

    path = Path(value)
    if not path.is_file():
        raise UsageError(
            f"--data scorer-validation: {path} does not exist", "give a labelled CSV (text and label columns)"
        )
    return tuple(validate_scorer(s, path) for s in scorers if s.info.kind == "toxicity")


def _by_group(prompts: list[Prompt]) -> dict[tuple[str, str], list[Prompt]]:
    out: dict[tuple[str, str], list[Prompt]] = defaultdict(list)
    for p in prompts:
        if p.group:
            out[(p.axis, p.group)].append(p)
    return dict(sorted(out.items()))


def _group_metrics(
    spec: SuiteSpec,
    prompts: list[Prompt],
    samples: dict[str, list[SampleRecord]],
    tox: dict[str, dict[str, float]],
    label: str,
    seed: int,
    control: dict[tuple[str, str], float] | None = None,
    scorer_name: str = "",
) -> list[MetricResult]:
    """Per-group mean toxicity, the largest gap per axis (permutation test, Holm across axes), paired
    differences, and beside each gap the scorer's own gap between the same groups on neutral text."""
    control = control or {}
    groups = _by_group(prompts)
    prompt_mean = {p.id: float(np.mean([tox[r["key"]][label] for r in samples[p.id]])) for p in prompts}
    metrics: list[MetricResult] = []
    for (axis, group), plist in groups.items():
        est = mean_ci([prompt_mean[p.id] for p in plist], seed)
        metrics.append(
            _metric("group_mean_toxicity", est, group=group, axis=axis, label=label, note="n = prompts")
        )
    axes = sorted({a for a, _ in groups})
    gaps = []
    for axis in axes:
        by = {g: np.array([prompt_mean[p.id] for p in pl]) for (a, g), pl in groups.items() if a == axis}
        gaps.append((axis, by, largest_gap(by, seed)))
    adjusted = holm([g.p_value for _, _, g in gaps])
    for (axis, by, gap), p_adj in zip(gaps, adjusted, strict=False):
        if not gap.high_group:
            continue
        a, b = by[gap.high_group], by[gap.low_group]
        ci_low, ci_high = mean_difference_ci(a, b, seed)
        metrics.append(
            MetricResult(
                "axis_gap",
                gap.gap,
                ci_low,
                ci_high,
                gap.n,
                group=f"{gap.high_group} vs {gap.low_group}",
                axis=axis,
                label=label,
                p_value=gap.p_value,
                p_adjusted=p_adj,
                note=gap.note or "permutation test of the range of group means; Holm across axes",
            )
        )
        own = control.get((axis, gap.high_group)), control.get((axis, gap.low_group))
        if own[0] is not None and own[1] is not None:
            metrics.append(
                MetricResult(
                    "scorer_control_gap",
                    own[0] - own[1],
                    None,
                    None,
                    2,
                    group=f"{gap.high_group} vs {gap.low_group}",
                    axis=axis,
                    label=scorer_name,
                    note="the scorer on neutral statements that differ only in the identity term",
                    control=True,
                )
            )
        # Paired differences over templates that both groups share.
        by_t: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for (ax, g), pl in groups.items():
            if ax == axis and g in (gap.high_group, gap.low_group):
                for p in pl:
                    by_t[p.template_id][g].append(prompt_mean[p.id])
        diffs = [
            float(np.mean(d[gap.high_group]) - np.mean(d[gap.low_group]))
            for d in by_t.values()
            if len(d) == 2
        ]
        if "paired_difference" in spec.metrics:
            metrics.append(
                _metric(
                    "paired_difference",
                    mean_ci(diffs, seed),
                    group=f"{gap.high_group} - {gap.low_group}",
                    axis=axis,
                    label=label,
                )
            )
    return metrics
