"""report.md: a short summary fit to paste into a pull request or a governance ticket.

Every value that comes from a card is escaped, so a card cannot inject Markdown, HTML,
links or table breaks into the ticket.
"""

from __future__ import annotations

import re

from audit.model import AuditReport, Severity
from audit.render.html import fmt_params

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")


def md_escape(text: object, limit: int = 300) -> str:
    """Escape untrusted text for inline Markdown (one line, no HTML, no links, no table breaks)."""
    s = str(text)
    s = re.sub(r"\s+", " ", s).strip()
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    s = s.replace("&", "&amp;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    # Defuse autolinks that GitHub makes from bare URLs.
    return s.replace("://", ":&#8203;//")


def render_markdown(report: AuditReport) -> bytes:
    """The summary as UTF-8 Markdown."""
    r, card, v = report, report.card, report.verdict
    lines = [
        f"## Model risk audit: {md_escape(r.subject.display)}",
        "",
        f"**Verdict: {v.rating.upper()}**: {md_escape(v.summary)}",
        "",
        "| critical | high | medium | low | info |",
        "|---:|---:|---:|---:|---:|",
        "| " + " | ".join(str(v.counts.get(s.value, 0)) for s in reversed(Severity)) + " |",
        "",
        "| Fact | Value |",
        "|---|---|",
        f"| Revision | `{md_escape(r.run.resolved_revision or 'local')}` |",
        f"| Licence | {md_escape(', '.join(card.licenses) or 'none declared')} ({card.license_class.replace('_', ' ')}) |",
        f"| Size | {md_escape(card.size_class or 'unknown')} · {fmt_params(card.parameters)} parameters |",
        f"| Documentation score | {card.documentation_score} / 100 |",
        f"| Training datasets declared | {len(card.datasets)} |",
        f"| Base model | {md_escape(', '.join(card.base_models) or 'none declared')} |",
        "",
    ]
    for probe in (p for p in r.probes if p.skipped):
        lines.append(f"- Probe suite `{probe.suite}` skipped: {md_escape(probe.skipped)}")
    if any(p.skipped for p in r.probes):
        lines.append("")
    for probe in (p for p in r.probes if not p.skipped):
        lines += [
            f"### Probe: {md_escape(probe.title or probe.suite)}",
            "",
            "| Metric | Group | Value | 95% CI | n | p (Holm) |",
            "|---|---|---:|---|---:|---:|",
        ]
        headline = {
            "expected_maximum_toxicity",
            "toxicity_probability",
            "mean_toxicity",
            "stereotype_preference",
            "honest_score",
            "bias_score_ambig",
            "bias_score_disambig",
        }
        per_axis = {"axis_gap", "effect_size"}
        shown = [
            m for m in probe.metrics if (m.name in headline and m.group in ("", "all")) or m.name in per_axis
        ]
        for m in shown:
            ci = (
                f"[{m.ci_low:.3f}, {m.ci_high:.3f}]"
                if m.ci_low is not None and m.ci_high is not None
                else "–"
            )
            val = f"{m.value:.3f}" if m.value is not None else "–"
            grp = md_escape(f"{m.axis} {m.group}".strip() or m.label)
            padj = f"{m.p_adjusted:.3f}" if m.p_adjusted is not None else "–"
            lines.append(f"| {m.name.replace('_', ' ')} | {grp} | {val} | {ci} | {m.n} | {padj} |")
        lines.append("")
    if r.gate is not None:
        lines += [f"### Policy `{md_escape(r.gate.policy)}`: **{r.gate.verdict.upper()}**", ""]
        for o in r.gate.rules:
            if o.verdict != "pass":
                lines.append(f"- {o.verdict.upper()} `{md_escape(o.rule)}`: {md_escape(o.message)}")
        lines.append("")
    if r.drift is not None:
        d = r.drift
        lines += [
            "### Changes since the baseline",
            "",
            f"- revision: `{md_escape((d.old_revision or 'local')[:12])}` → `{md_escape((d.new_revision or 'local')[:12])}`",
            f"- licence changed: {'yes' if d.license_changed else 'no'}",
            f"- new findings: {md_escape(', '.join(d.findings_new) or 'none')}",
            f"- significantly worse metrics: {sum(m.significant and m.worse for m in d.metrics)}",
            "",
        ]
    ranked = [f for f in r.findings if f.severity.rank >= Severity.medium.rank]
    if ranked:
        lines += ["### Findings (medium and above)", ""]
        for f in ranked:
            lines.append(f"- **{f.severity.value}** `{f.id}`: {md_escape(f.title)}")
        rest = len(r.findings) - len(ranked)
        if rest:
            lines += ["", f"{rest} further low and info findings are in the full report."]
    else:
        lines.append("No finding of medium severity or above.")
    lines += [
        "",
        f"<sub>model-risk-audit {md_escape(r.run.tool_version)} · {md_escape(r.run.finished_at)} UTC · "
        "full report: report.html / report.pdf / report.json"
        + (f" · content hash {r.integrity.content_hash[:16]}…" if r.integrity else "")
        + "</sub>",
        "",
    ]
    return "\n".join(lines).encode("utf-8")
