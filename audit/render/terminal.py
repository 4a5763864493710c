"""Facts and findings as rich tables on the terminal (card text is shown as plain Text, never as markup)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from audit.format import fmt_params, plural
from audit.model import AuditReport
from audit.profiles import profile_line
from audit.render.board import board, evidence_view, headline_text

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
        ("Profile", profile_line(report)),
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
    b = board(report)
    if b.suites:
        probes = Table(title="What the probes measured")
        probes.add_column("suite", no_wrap=True)
        probes.add_column("headline")
        probes.add_column("flagged")
        for s in b.suites:
            head = headline_text(s.headline) if s.headline else "no metric"
            if s.headline and s.headline.status_text:
                head += f" · {s.headline.status_text}"
            if s.invalid:
                head = f"INVALID: {s.invalid}"
            flagged = "; ".join(s.flagged) or "none"
            if s.inconclusive:
                flagged += f" (undecided: {'; '.join(s.inconclusive)})"
            probes.add_row(Text(s.suite), Text(head), Text(flagged))
        console.print(probes)
    table = Table(title=f"Findings ({plural(len(report.findings), 'finding')})")
    longest = max((len(f.id) for f in report.findings), default=2)
    table.add_column("severity", no_wrap=True)
    # Ids are what users type into waivers: never cut, never wrapped; the title wraps instead.
    table.add_column("id", no_wrap=True, min_width=longest, overflow="fold")
    table.add_column("title", ratio=2)
    table.add_column("evidence", ratio=3)
    for f in report.findings:
        shown, more = evidence_view(f.evidence, 3)
        ev = "; ".join(shown) + (f"; and {more} more" if more else "")
        table.add_row(
            Text(f.severity.value, style=SEV_STYLE[f.severity.value]), Text(f.id), Text(f.title), Text(ev)
        )
    console.print(table)
