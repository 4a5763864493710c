"""report.html: one self-contained file (inline CSS, no scripts, no external fetches)."""

from __future__ import annotations

import re
from collections import OrderedDict
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from audit.format import fmt_ci, fmt_num, fmt_p, fmt_p_value, fmt_params, plural
from audit.model import AuditReport, Finding, Severity
from audit.render.board import board, evidence_view, headline_text, probe_tables
from audit.render.safe_markdown import markdown_to_safe_html

__all__ = ["clean_text", "fmt_num", "fmt_params", "group_findings", "render_html", "render_html_text"]
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


def break_at_dots(text: object) -> Markup:
    """An id that may break only after its dots and colons (never mid-word), escaped."""
    out = str(escape(str(text)))
    return Markup(out.replace(".", ".<wbr>").replace(":", ":<wbr>"))


def group_findings(findings: tuple[Finding, ...]) -> OrderedDict[str, list[Finding]]:
    """Findings by category: the category with the most severe finding first (ties in the catalogue's order
    of concern: measured behaviour, licence, drift, security, data, documentation, ...), and within each
    category by severity. A reader never meets a low finding before a medium one of another category."""
    from audit.findings import catalogue

    concern = list(catalogue().categories) + [c for c in CATEGORY_ORDER if c not in catalogue().categories]
    by_cat: dict[str, list[Finding]] = {}
    for f in findings:
        by_cat.setdefault(f.category, []).append(f)

    def key(cat: str) -> tuple[int, int, str]:
        worst = max(f.severity.rank for f in by_cat[cat])
        return (-worst, concern.index(cat) if cat in concern else len(concern), cat)

    groups: OrderedDict[str, list[Finding]] = OrderedDict()
    for cat in sorted(by_cat, key=key):
        groups[cat] = sorted(by_cat[cat], key=lambda f: (-f.severity.rank, f.id))
    return groups


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
    env.filters["breakdots"] = break_at_dots
    env.filters["pval"] = fmt_p_value
    env.filters["ci"] = lambda m: fmt_ci(m.ci_low, m.ci_high)
    env.globals["fmt_p"] = fmt_p
    env.globals["plural"] = plural
    env.globals["evidence_view"] = evidence_view
    env.globals["headline_text"] = headline_text
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
    by_id: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_id.setdefault(f.id, []).append(f)
    return {
        "tables": tables,
        "board": board(report),
        "finding_ids": by_id,
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
