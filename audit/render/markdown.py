"""report.md: a short summary fit to paste into a pull request or a governance ticket.

Every value that comes from a card is escaped, so a card cannot inject Markdown, HTML,
links or table breaks into the ticket.
"""

from __future__ import annotations

import re

from audit.format import fmt_num, fmt_params, plural
from audit.frameworks import frameworks_markdown
from audit.model import AuditReport, ProbeResult, Severity
from audit.profiles import profile_line
from audit.render.board import Legend, MetricRow, board, headline_text, probe_tables
from audit.render.html import group_findings

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


def md_code(text: object, *, in_table: bool = False) -> str:
    """Untrusted text as an inline code span that no backtick in it can break (CommonMark fences).

    Nothing inside is backslash-escaped (code spans show backslashes literally); the fence is one
    backtick longer than the longest run in the text, padded with spaces when the text starts or ends
    with one. In a table cell a pipe is written `\\|`, which GFM tables read as a literal pipe.
    """
    s = re.sub(r"\s+", " ", str(text)).strip()
    if in_table:
        s = s.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _cell(text: object) -> str:
    return md_escape(text) if str(text) else "–"


def render_markdown(report: AuditReport) -> bytes:
    """The summary as UTF-8 Markdown."""
    r, card, v = report, report.card, report.verdict
    b = board(report)
    lines = [
        f"## Model risk audit: {md_escape(r.subject.display)}",
        "",
        f"**Verdict: {v.rating.upper()}**: {md_escape(v.summary)}",
        "",
        f"Use-context profile: {md_escape(profile_line(r))}",
        "",
    ]
    if b.reasons:
        lines += ["Why:", ""]
        lines += [f"- {md_escape(line)}" for line in b.reasons]
        lines.append("")
    counts = ", ".join(f"{v.counts.get(s.value, 0)} {s.value}" for s in reversed(Severity))
    lines += [
        "| Fact | Value |",
        "|---|---|",
        f"| Revision | {md_code(r.run.resolved_revision or 'local', in_table=True)} |",
        f"| Licence | {md_escape(', '.join(card.licenses) or 'none declared')} ({card.license_class.replace('_', ' ')}) |",
        f"| Size | {md_escape(card.size_class or 'unknown')} · {fmt_params(card.parameters)} parameters |",
        f"| Training data | {md_escape(b.data_situation)} |",
        f"| Documentation score | {card.documentation_score} / 100 |",
        f"| Base model | {md_escape(', '.join(card.base_models) or 'none declared')} |",
        f"| Findings | {counts} |",
        "",
        "### What the probes measured",
        "",
    ]
    if not b.suites:
        lines += ["No probe suite ran: this audit says nothing about how the model behaves.", ""]
    for s in b.suites:
        lines.append(f"**{md_escape(s.title)}** ({md_code(s.suite)}): {md_escape(s.measures)}")
        lines.append("")
        if s.invalid:
            lines.append(f"- **INVALID**: {md_escape(s.invalid)}")
        if s.headline is not None:
            status = f" · {md_escape(s.headline.status_text)}" if s.headline.status_text else ""
            lines.append(
                f"- Headline: {md_escape(headline_text(s.headline))}{status}. Good: {md_escape(s.good)}."
            )
        lines.append(f"- Flagged: {md_escape('; '.join(s.flagged) or 'none')}")
        if s.inconclusive:
            lines.append(f"- Undecided (interval too wide): {md_escape('; '.join(s.inconclusive))}")
        if s.controls:
            lines.append(f"- Control (not a finding): {md_escape(', '.join(s.controls))}")
        lines.append("")
    skipped = ", ".join(md_code(sid) for sid, _ in b.skipped)
    lines += [
        f"Not tested by this audit: {md_escape('; '.join(b.not_tested))}"
        + (f"; suites not run: {skipped}" if skipped else "")
        + ".",
        "",
    ]
    for probe in (p for p in r.probes if p.skipped):
        lines.append(f"- Probe suite {md_code(probe.suite)} skipped: {md_escape(probe.skipped)}")
    if any(p.skipped for p in r.probes):
        lines.append("")
    for probe in (p for p in r.probes if not p.skipped):
        lines += _probe_lines(probe)
    if r.gate is not None:
        lines += [f"### Policy {md_code(r.gate.policy)}: **{r.gate.verdict.upper()}**", ""]
        for o in r.gate.rules:
            if o.verdict != "pass":
                lines.append(f"- {o.verdict.upper()} {md_code(o.rule)}: {md_escape(o.message)}")
        lines.append("")
    if r.drift is not None:
        d = r.drift
        lines += [
            "### Changes since the baseline",
            "",
            f"- revision: {md_code((d.old_revision or 'local')[:12])} → {md_code((d.new_revision or 'local')[:12])}",
            f"- licence changed: {'yes' if d.license_changed else 'no'}",
            f"- new findings: {', '.join(md_code(x) for x in d.findings_new) or 'none'}",
            f"- significantly worse metrics: {sum(m.significant and m.worse for m in d.metrics)}",
            "",
        ]
    if r.card.catalog is not None:  # what the Azure AI Foundry catalog entry states (never guessed)
        c = r.card.catalog
        lines += [
            "### Catalog entry (Azure AI Foundry)",
            "",
            f"- asset: {md_code(c.asset_id)}",
            f"- licence: {md_escape(c.license or 'not stated by the catalog')}",
            f"- task: {md_escape(c.task or 'not stated by the catalog')}",
            f"- author: {md_escape(c.author or 'not stated by the catalog')}",
            f"- created: {md_escape(c.created_at or 'not stated by the catalog')}",
        ]
        if c.hub_model_id:
            lines.append(f"- Hub original: {md_code(c.hub_model_id)}")
        if c.not_stated:
            lines.append(f"- not stated: {md_escape(', '.join(c.not_stated))}")
        lines.append("")
    ranked = [f for f in r.findings if f.severity.rank >= Severity.medium.rank]
    if ranked:
        lines += ["### Findings (medium and above)", ""]
        for items in group_findings(tuple(ranked)).values():
            for f in items:
                lines.append(
                    f"- **{f.severity.value}** {md_code(f.id)}: {md_escape(f.title)}: {md_escape(f.detail)}"
                )
        rest = len(r.findings) - len(ranked)
        if rest:
            lines += ["", f"{plural(rest, 'further low or info finding')} in the full report."]
    else:
        lines.append("No finding of medium severity or above.")
    int8 = [(p, sc, q) for p in r.probes for sc in p.scorers if (q := sc.quantization) is not None]
    if int8:  # methodology: int8 scoring's agreement with float, and any fallback
        lines += ["", "### Methodology: int8 scoring", ""]
        for probe, sc, q in int8:
            lines.append(
                f"- int8 scoring ({md_code(sc.name)}, {md_code(probe.suite)}): {q.used} used; {md_escape(q.runtime)}. "
                f"Agreement on {q.n} calibration texts: Pearson r {fmt_num(q.pearson_r, 4)}, largest absolute "
                f"difference {fmt_num(q.max_abs_diff, 4)}, {fmt_num(q.same_side)} on the same side of {q.threshold} "
                f"(floor: {md_escape(q.floor)})" + (f". **{md_escape(q.note)}**" if q.note else "")
            )
    lines += ["", *frameworks_markdown(r)]
    lines += [
        "",
        f"<sub>model-risk-audit {md_escape(r.run.tool_version)} · {md_escape(r.run.finished_at)} UTC · "
        "full report: report.html / report.pdf / report.json"
        + (f" · content hash {r.integrity.content_hash[:16]}…" if r.integrity else "")
        + "</sub>",
        "",
    ]
    return "\n".join(lines).encode("utf-8")


def _metric_table(rows: list[MetricRow], with_p: bool, invalid: bool, first: str) -> list[str]:
    head = f"| Metric | Direction | {first} | Group | Value | 95% CI | n |"
    sep = "|---|---|---|---|---:|---|---:|"
    if with_p:
        head += " raw p | Holm-adjusted p |"
        sep += "---:|---:|"
    head += " Assessment |"
    sep += "---|"
    out = [head, sep]
    for row in rows:
        m = row.metric
        axis, group = (m.axis, m.group) if m.axis else ("", m.group or m.label)
        assessment = "invalid" if invalid else (row.status_text or "–")
        if row.detectable and row.status != "finding" and not invalid:
            assessment += f" (detectable ≥ {row.detectable})"
        cells = [row.title, row.direction, _cell(axis), _cell(group), row.value, row.ci, str(row.n)]
        if with_p:
            cells += [row.p_raw, row.p_adjusted]
        cells.append(md_escape(assessment) if row.control is False else "control")
        out.append("| " + " | ".join(c if c else "–" for c in cells) + " |")
    return out


def _probe_lines(probe: ProbeResult) -> list[str]:
    """One probe: metrics with direction and assessment, controls apart, gaps next to the scorer's own gap."""
    t = probe_tables(probe)
    lines = [f"### Probe: {md_escape(probe.title or probe.suite)}", ""]
    if probe.invalid:
        lines += [f"**INVALID METRICS**: {md_escape(probe.invalid)}", ""]
    first = "Test" if any(m.name == "effect_size" for m in probe.metrics) else "Axis"
    other: list[MetricRow] = t["other"]  # type: ignore[assignment]
    controls: list[MetricRow] = t["controls"]  # type: ignore[assignment]
    with_p = bool(t["with_p"])
    # A summary for a ticket: overall values, per-test values and anything flagged or undecided;
    # per-label and per-category details stay in report.html.
    brief = [
        r
        for r in other
        if not r.name.startswith("label_")
        and (
            r.metric.group in ("", "all")
            or r.name == "effect_size"
            or r.status in ("finding", "inconclusive")
        )
    ]
    if brief:
        lines += _metric_table(brief, with_p, bool(probe.invalid), first)
        lines.append("")
    if len(brief) < len(other):
        lines += [f"{plural(len(other) - len(brief), 'further metric row')} in report.html.", ""]
    if controls:
        lines += ["Controls (check the instrument, not the model; never a finding):", ""]
        lines += _metric_table(controls, with_p, bool(probe.invalid), first)
        lines.append("")
    gaps: list[tuple[str, dict[str, MetricRow]]] = t["gaps"]  # type: ignore[assignment]
    if gaps:
        lines += [
            "| Axis | Groups | Gap | 95% CI | Scorer's own gap on neutral text | raw p | Holm-adjusted p | Assessment |",
            "|---|---|---:|---|---:|---:|---:|---|",
        ]
        for axis, g in gaps:
            gap, ctl = g.get("gap"), g.get("control")
            if gap is None:
                continue
            status = "invalid" if probe.invalid else (gap.status_text or "–")
            lines.append(
                f"| {_cell(axis.replace('_', ' '))} | {_cell(gap.metric.group)} | {gap.value} | {gap.ci} | "
                f"{ctl.value if ctl else '–'} | {gap.p_raw} | {gap.p_adjusted} | {md_escape(status)} |"
            )
        lines.append("")
    shown = {r.name for r in brief + controls} | {r.name for _, g in gaps for r in g.values()}
    legends: list[Legend] = [lg for lg in t["legends"] if lg.name in shown]  # type: ignore[attr-defined]
    if legends:
        lines += ["What the numbers mean:", ""]
        for lg in legends:
            extra = f"; {lg.threshold}" if lg.threshold else ""
            src = f" Threshold: {lg.threshold_source}." if lg.threshold_source else ""
            good = f" Good: {lg.good}." if lg.good else ""
            lines.append(
                f"- **{md_escape(lg.title)}** ({md_escape(lg.direction + extra)}): "
                f"{md_escape(lg.meaning + good + src, limit=1000)}"
            )
        lines += [
            "",
            "Inconclusive: the 95% interval straddles the threshold, so this sample cannot decide (never a pass).",
            "",
        ]
    return lines
