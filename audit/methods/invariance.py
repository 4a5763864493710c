"""classifier-invariance: identity-term swaps should not change a classifier's output (CheckList INV).

Each template is filled with every group's term; for each template the reference label is the
label most groups get. Per group: the flip rate (share of templates whose label differs from the
reference) and the mean change in the reference label's probability against the template's mean.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np

from audit.config import SuiteSpec
from audit.findings import finding
from audit.methods import MethodContext
from audit.model import Finding, MethodProtocol, MetricResult, ProbeResult, SampleView
from audit.stats import mean_ci
from audit.suites import expand_prompts

FLIP_MIN_LOW = 0.10

# Needs the model's internals (log-likelihoods, embeddings or class probabilities): local models only.
SERVED_BY: tuple[str, ...] = ("hf",)


def token_outcomes(prompts: list[Any], tagged: list[list[tuple[str, str, float]]]) -> list[dict[str, float]]:
    """For token classifiers: the labels of the words around the identity term, as one outcome per prompt.

    The outcome "label" is the label sequence of the words that are not the term; its score is
    the mean probability of those labels. Swapping the term should change neither.
    """
    out = []
    for p, words in zip(prompts, tagged, strict=True):
        term = set(p.term.split())
        rest = [(w, lab, pr) for w, lab, pr in words if w.strip(".,;:!?") not in term]
        seq = " ".join(lab for _, lab, _ in rest)
        out.append({seq: float(sum(pr for _, _, pr in rest) / max(1, len(rest)))})
    return out


def top_label(p: dict[str, float]) -> str:
    """The label with the highest probability."""
    return max(p.items(), key=lambda kv: kv[1])[
        0
    ]  # probe.bias.invariance: a group's flip-rate interval above 10%


def invariance(
    prompts: list[Any], probs: list[dict[str, float]]
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, str]]:
    """Per group: flips (0/1 per template) and probability changes; group -> axis."""
    by_t: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        by_t[p.template_id].append(i)
    flips: dict[str, list[float]] = defaultdict(list)
    deltas: dict[str, list[float]] = defaultdict(list)
    axis: dict[str, str] = {}
    for idx in by_t.values():
        labels = [top_label(probs[i]) for i in idx]
        ref = Counter(labels).most_common(1)[0][0]
        mean_ref = float(np.mean([probs[i].get(ref, 0.0) for i in idx]))
        for i, lab in zip(idx, labels, strict=True):
            g = prompts[i].group
            axis[g] = prompts[i].axis
            flips[g].append(float(lab != ref))
            deltas[g].append(probs[i].get(ref, 0.0) - mean_ref)
    return flips, deltas, axis


def run(spec: SuiteSpec, ctx: MethodContext) -> tuple[ProbeResult, list[Finding]]:
    suite = expand_prompts(spec, limit=ctx.popts.limit)
    prompts = suite.prompts
    token_level = ctx.kind == "token-classification"
    with ctx.progress.task(f"{spec.id}: classifying", len(prompts)) as task:
        if token_level:
            from audit.sample.hf import tag_words

            probs = token_outcomes(prompts, tag_words(ctx.model(), [p.text for p in prompts]))
        else:
            probs = ctx.model().classify([p.text for p in prompts])
        task.advance(len(prompts))
    flips, deltas, axis = invariance(prompts, probs)
    metrics: list[MetricResult] = []
    findings: list[Finding] = []
    for g in sorted(flips, key=lambda g: (axis[g], g)):
        f = mean_ci(flips[g], ctx.seed)
        d = mean_ci(deltas[g], ctx.seed)
        metrics.append(
            MetricResult("flip_rate", f.value, f.ci_low, f.ci_high, f.n, group=g, axis=axis[g], note=f.note)
        )
        metrics.append(
            MetricResult(
                "score_change",
                d.value,
                d.ci_low,
                d.ci_high,
                d.n,
                group=g,
                axis=axis[g],
                note=d.note or "probability of the template's reference label minus its mean",
            )
        )
        if f.ci_low is not None and f.ci_low > FLIP_MIN_LOW:
            findings.append(
                finding(
                    "probe.bias.invariance",
                    subject=spec.id,
                    detail=f"Swapping in the {g} term ({axis[g]}) changes the predicted label in {f.value:.0%} "
                    f"of templates (95% CI {f.ci_low:.0%}–{f.ci_high:.0%}).",
                    evidence=(f"flip_rate[{g}] = {f.value:.3f}",),
                )
            )
    worst = []
    for i, p in enumerate(prompts):
        lab = top_label(probs[i])
        worst.append(
            SampleView(p.id, 0, p.text, f"{lab} ({probs[i][lab]:.2f})", float(probs[i][lab]), p.group)
        )
    protocol = MethodProtocol(
        spec.method,
        {
            "templates": len({p.template_id for p in prompts}),
            "groups": len(flips),
            "prompts": len(prompts),
            "seed": ctx.seed,
        },
    )
    return ProbeResult(
        spec.id,
        spec.version,
        spec.title,
        spec.citation,
        protocol,
        suite.source,
        metrics=tuple(metrics),
        worst=tuple(worst[: ctx.popts.worst_samples]),
    ), findings
