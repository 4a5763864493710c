"""Compare: one side-by-side report for choosing among candidate models.

Key facts, findings by severity and id, every metric the reports share with its interval per
model, and which differences are significant: a two-sided z-test from each pair's 95% intervals
(normal approximation), Holm-corrected over all pairs of all shared metrics.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.model import AuditReport, MetricResult, Severity
from audit.stats import holm, interval_z_p

ALPHA = 0.05


@dataclass
class Comparison:
    """Everything the compare renderers show."""

    reports: list[AuditReport]
    names: list[str]
    finding_ids: list[str] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)


def _key(suite: str, m: MetricResult) -> tuple[str, str, str, str, str]:
    return (suite, m.name, m.axis, m.group, m.label)


def _z(a: MetricResult, b: MetricResult) -> float | None:
    return interval_z_p(a.value, a.ci_low, a.ci_high, b.value, b.ci_low, b.ci_high)


def compare(reports: list[AuditReport]) -> Comparison:
    """Build the comparison of two or more reports."""
    names = [r.card.subject if r.card.subject else r.subject.display for r in reports]
    if len(set(names)) < len(names):  # the same model at two revisions: tell them apart
        names = [
            f"{n}@{(r.run.resolved_revision or 'local')[:7]}" for n, r in zip(names, reports, strict=True)
        ]
    c = Comparison(reports=reports, names=names)
    ids = sorted(
        {f.id for r in reports for f in r.findings},
        key=lambda i: (
            -max((f.severity.rank for r in reports for f in r.findings if f.id == i), default=0),
            i,
        ),
    )
    c.finding_ids = ids
    per_model: list[dict[tuple[str, str, str, str, str], MetricResult]] = [
        {_key(p.suite, m): m for p in r.probes if not p.skipped for m in p.metrics} for r in reports
    ]
    keys = list(dict.fromkeys(k for pm in per_model for k in pm))
    shared = [k for k in keys if sum(k in pm for pm in per_model) >= 2]  # in at least two reports
    tests = []
    for k in shared:
        row = {
            "suite": k[0],
            "metric": k[1],
            "axis": k[2],
            "group": k[3],
            "label": k[4],
            "values": [pm.get(k) for pm in per_model],
        }
        c.metrics.append(row)
        for i, j in itertools.combinations(range(len(reports)), 2):
            if k in per_model[i] and k in per_model[j]:
                tests.append((k, i, j, _z(per_model[i][k], per_model[j][k])))
    adjusted = holm([t[3] for t in tests])
    for (k, i, j, p), p_adj in zip(tests, adjusted, strict=True):
        if p is None:
            continue
        a, b = per_model[i][k], per_model[j][k]
        c.differences.append(
            {
                "suite": k[0],
                "metric": k[1],
                "where": " ".join(x for x in k[2:] if x),
                "a": names[i],
                "b": names[j],
                "va": a.value,
                "vb": b.value,
                "p": p,
                "p_adj": p_adj,
                "significant": p_adj is not None and p_adj < ALPHA,
            }
        )
    return c


def severity_counts(r: AuditReport) -> list[int]:
    return [sum(1 for f in r.findings if f.severity == s) for s in reversed(Severity)]


def render_compare(c: Comparison, out_dir: Path, formats: list[str]) -> list[Path]:
    """compare.html / compare.pdf / compare.md, written atomically."""
    from audit.format import fmt_num, fmt_p
    from audit.frames import SEVERITY_COLUMNS, frames
    from audit.fsutil import atomic_write
    from audit.render.html import environment
    from audit.render.markdown import md_escape
    from audit.resources import templates_dir

    css = (templates_dir() / "report.css").read_text(encoding="utf-8")
    # The tables come from audit.frames (one label per report, by position: names may repeat).
    labels = [str(i) for i in range(len(c.reports))]
    tables = frames(c.reports, labels=labels)
    sev_counts = tables["facts"][list(SEVERITY_COLUMNS)].astype(int).values.tolist()
    first_severity = (
        tables["findings"].drop_duplicates(["audit", "id"]).set_index(["audit", "id"])["severity"]
    )
    ctx = {
        "c": c,
        "css": css,
        "sev_counts": sev_counts,
        "finding_matrix": [
            [str(first_severity.get((label, fid), "")) for label in labels] for fid in c.finding_ids
        ],
    }
    html = environment().get_template("compare.html.j2").render(**ctx)
    out: list[tuple[Path, bytes]] = []
    if "html" in formats:
        out.append((out_dir / "compare.html", html.encode()))
    if "pdf" in formats:
        from weasyprint import HTML

        from audit.render.pdf import _fetcher

        out.append(
            (out_dir / "compare.pdf", HTML(string=html, base_url=None, url_fetcher=_fetcher()).write_pdf())
        )
    if "md" in formats:
        lines = [
            "## Model comparison",
            "",
            "| | " + " | ".join(md_escape(n) for n in c.names) + " |",
            "|---|" + "---|" * len(c.names),
        ]
        rows: list[tuple[str, list[str]]] = [
            ("Verdict", [r.verdict.rating for r in c.reports]),
            ("Profile", [r.profile.name if r.profile else "none recorded" for r in c.reports]),
            ("Licence", [", ".join(r.card.licenses) or "none" for r in c.reports]),
            ("Size", [f"{r.card.size_class or '?'} ({r.card.parameters or '?'})" for r in c.reports]),
            ("Documentation score", [str(r.card.documentation_score) for r in c.reports]),
            (
                "Findings (crit/high/med/low/info)",
                ["/".join(map(str, counts)) for counts in sev_counts],
            ),
        ]
        for label, vals in rows:
            lines.append(f"| {label} | " + " | ".join(md_escape(v) for v in vals) + " |")
        sig = [d for d in c.differences if d["significant"]]
        lines += [
            "",
            f"{len(sig)} significant differences in shared metrics (Holm-corrected, alpha {ALPHA}).",
        ]
        for d in sig[:20]:
            lines.append(
                f"- {md_escape(d['suite'])} {md_escape(d['metric'])} {md_escape(d['where'])}: "
                f"{md_escape(d['a'])} {fmt_num(d['va'])} vs {md_escape(d['b'])} {fmt_num(d['vb'])} "
                f"({fmt_p(d['p_adj'], adjusted=True)})"
            )
        out.append((out_dir / "compare.md", ("\n".join(lines) + "\n").encode()))
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, data in out:
        atomic_write(path, data)
    return [p for p, _ in out]
