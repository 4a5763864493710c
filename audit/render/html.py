"""report.html: one self-contained file (inline CSS, no scripts, no external fetches)."""

from __future__ import annotations

import re
from collections import OrderedDict
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from audit.model import AuditReport, Finding, Severity
from audit.render.safe_markdown import markdown_to_safe_html
from audit.resources import templates_dir

CATEGORY_ORDER = (
    "license",
    "security",
    "data",
    "documentation",
    "access",
    "provenance",
    "deployment",
    "probe",
)
CATEGORY_LABEL = {
    "license": "Licence",
    "security": "Security",
    "data": "Training data",
    "documentation": "Documentation",
    "access": "Access",
    "provenance": "Provenance",
    "deployment": "Deployment and size",
    "probe": "Probe results",
}


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def clean_text(text: object, limit: int = 2000) -> str:
    """Model output for display: control characters replaced (they are invalid in HTML/XML), length bounded."""
    s = _CONTROL.sub("\ufffd", str(text))
    return s if len(s) <= limit else s[:limit] + "…"


def fmt_num(v: float | None, digits: int = 3) -> str:
    """A metric value for tables: fixed digits, '–' for none."""
    if v is None:
        return "–"
    return f"{v:.{digits}f}"


def fmt_p(v: float | None) -> str:
    """A p-value: '< 0.001' below a thousandth."""
    if v is None:
        return "–"
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def fmt_params(n: int | None) -> str:
    """22713216 -> '22.7M'."""
    if n is None:
        return "unknown"
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def group_findings(findings: tuple[Finding, ...]) -> OrderedDict[str, list[Finding]]:
    """Findings by category, in a fixed reading order."""
    groups: OrderedDict[str, list[Finding]] = OrderedDict()
    cats = list(CATEGORY_ORDER) + sorted({f.category for f in findings} - set(CATEGORY_ORDER))
    for cat in cats:
        items = [f for f in findings if f.category == cat]
        if items:
            groups[cat] = sorted(items, key=lambda f: (-f.severity.rank, f.id))
    return groups


GROUP_METRICS = {"group_mean_toxicity": "toxicity", "negative_sentiment_rate": "negative"}
GAP_METRICS = {"axis_gap": "gap", "paired_difference": "paired"}


def probe_tables(probe: Any) -> dict[str, Any]:
    """Metrics regrouped for reading: one row per group, one row per axis gap, and the rest as they are."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    gaps: dict[str, dict[str, Any]] = {}
    other = []
    for m in probe.metrics:
        if m.name in GROUP_METRICS:
            groups.setdefault((m.axis, m.group), {})[GROUP_METRICS[m.name]] = m
        elif m.name in GAP_METRICS:
            gaps.setdefault(m.axis, {})[GAP_METRICS[m.name]] = m
        else:
            other.append(m)
    return {"groups": sorted(groups.items()), "gaps": sorted(gaps.items()), "other": other}


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja environment: autoescape on, templates only from our own folder."""
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = markdown_to_safe_html
    env.filters["params"] = fmt_params
    env.filters["clean"] = clean_text
    env.filters["num"] = fmt_num
    env.filters["pval"] = fmt_p
    env.globals["category_label"] = lambda c: CATEGORY_LABEL.get(c, c.title())
    env.globals["severities"] = [s.value for s in reversed(Severity)]
    return env


def html_context(report: AuditReport, *, for_print: bool = False) -> dict[str, Any]:
    """Everything the template needs, computed in Python rather than in the template."""
    card = report.card
    present = [s for s in card.sections if s.present]
    missing = [s for s in card.sections if not s.present]
    from audit.render.charts import distribution_chart, group_chart

    charts = {
        p.suite: {
            "distribution": distribution_chart(p),
            "groups": group_chart(p),
            "effects": group_chart(p, "effect_size", by_axis=True),
        }
        for p in report.probes
    }
    tables = {p.suite: probe_tables(p) for p in report.probes}
    return {
        "tables": tables,
        "r": report,
        "charts": charts,
        "card": card,
        "groups": group_findings(report.findings),
        "present_sections": present,
        "missing_sections": missing,
        "for_print": for_print,
        "css": (templates_dir() / "report.css").read_text(encoding="utf-8"),
        "revision": (report.run.resolved_revision or "local")[:12],
    }


def render_html_text(report: AuditReport, *, for_print: bool = False) -> str:
    """The report as an HTML string."""
    return environment().get_template("report.html.j2").render(**html_context(report, for_print=for_print))


def render_html(report: AuditReport) -> bytes:
    """report.html as UTF-8 bytes."""
    return render_html_text(report).encode("utf-8")
