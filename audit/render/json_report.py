"""report.json: the complete record."""

from __future__ import annotations

from audit.model import AuditReport
from audit.serialize import report_to_json


def render_json(report: AuditReport) -> bytes:
    """The complete report as UTF-8 JSON."""
    return report_to_json(report).encode("utf-8")
