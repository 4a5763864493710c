"""report.json in and out, and the published JSON Schema (pydantic over the dataclasses)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from audit.errors import ReportNotFoundError, UsageError
from audit.model import AuditReport


@lru_cache(maxsize=1)
def _adapter() -> TypeAdapter[AuditReport]:
    return TypeAdapter(AuditReport)


def report_to_dict(report: AuditReport) -> dict[str, Any]:
    """The report as JSON-safe data."""
    data: dict[str, Any] = _adapter().dump_python(report, mode="json")
    return data


def report_to_json(report: AuditReport) -> str:
    """The complete record, as written to report.json."""
    return json.dumps(report_to_dict(report), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def report_from_json(text: str | bytes, source: str = "report.json") -> AuditReport:
    """Validate and load a report; a clear UsageError when it is not one of ours."""
    try:
        return _adapter().validate_json(text)
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        msg = errors[0]["msg"] if errors else ""
        raise UsageError(
            f"{source} is not a valid audit report ({exc.error_count()} errors; first at '{where}': {msg})",
            "re-run `model-audit run` to produce a fresh report",
        ) from None


def load_report_dir(folder: Path) -> AuditReport:
    """Load report.json from a finished run directory."""
    path = folder / "report.json"
    if not path.is_file():
        raise ReportNotFoundError(f"no report.json in {folder}", "give the folder a `model-audit run` wrote")
    return report_from_json(path.read_bytes(), str(path))


def report_schema() -> dict[str, Any]:
    """JSON Schema of report.json."""
    schema: dict[str, Any] = _adapter().json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "model-risk-audit report"
    return schema
