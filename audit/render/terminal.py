"""Facts and findings as rich tables on the terminal (card text is shown as plain Text, never as markup)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from audit.model import AuditReport
from audit.render.html import fmt_params

SEV_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}


def print_report(report: AuditReport, console: Console | None = None) -> None:
    """Print the summary, key facts and every finding."""
    console = console or Console()
    card, v = report.card, report.verdict
    facts = Table(title=Text(f"Model risk audit: {report.subject.display}"), show_header=False)
    facts.add_column("fact", style="bold")
    facts.add_column("value")
    rows = [
        ("Verdict", f"{v.rating}: {v.summary}"),
        ("Revision", report.run.resolved_revision or "local"),
        ("Licence", f"{', '.join(card.licenses) or 'none declared'} ({card.license_class})"),
        ("Size", f"{card.size_class or 'unknown'} · {fmt_params(card.parameters)} parameters"),
        ("Documentation score", f"{card.documentation_score} / 100"),
        ("Datasets declared", str(len(card.datasets))),
        ("Base model", ", ".join(card.base_models) or "none declared"),
    ]
    for k, val in rows:
        facts.add_row(Text(k), Text(val))
    console.print(facts)
    table = Table(title="Findings")
    for col in ("severity", "id", "title", "evidence"):
        table.add_column(col)
    for f in report.findings:
        ev = "; ".join(f.evidence[:3]) + (" …" if len(f.evidence) > 3 else "")
        table.add_row(
            Text(f.severity.value, style=SEV_STYLE[f.severity.value]), Text(f.id), Text(f.title), Text(ev)
        )
    console.print(table)
