"""report.json in and out, and the published JSON Schema (pydantic over the dataclasses)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from audit.errors import ReportNotFoundError, UsageError
from audit.model import SCHEMA_VERSION, AuditReport

KNOWN_SCHEMA_VERSIONS: tuple[str, ...] = ("1.0", SCHEMA_VERSION)  # the report versions this tool reads


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring an older report.json to the current schema (in memory; the file is not changed).

    1.0 -> 1.1: a probe's `protocol` was a dict whose shape changed with the method; it is now typed,
    `{"kind": "generation", ...}` or `{"kind": "method", "method": ..., "settings": {...}}`.
    """
    if data.get("schema_version") == "1.0":
        for probe in data.get("probes") or []:
            proto = probe.get("protocol") if isinstance(probe, dict) else None
            if not isinstance(proto, dict) or not proto:
                probe["protocol"] = None
            elif "samples_per_prompt" in proto:
                probe["protocol"] = {"kind": "generation", **proto}
            else:
                probe["protocol"] = {"kind": "method", "method": probe.get("suite", ""), "settings": proto}
        data["schema_version"] = SCHEMA_VERSION
    return data


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


def check_schema_version(text: str | bytes, source: str = "report.json") -> None:
    """Refuse a report whose `schema_version` this version of the tool does not know."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UsageError(
            f"{source} is not JSON ({str(exc)[:120]})", "re-run `model-audit run` to produce a fresh report"
        ) from exc
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version not in KNOWN_SCHEMA_VERSIONS:
        shown = repr(version)[:40] if version is not None else "none"
        raise UsageError(
            f"{source} has schema_version {shown}; this version of model-audit reads "
            f"{', '.join(KNOWN_SCHEMA_VERSIONS)}",
            "render it with the model-audit version that wrote it, or re-run `model-audit run`",
        )


def report_from_json(text: str | bytes, source: str = "report.json") -> AuditReport:
    """Validate and load a report; a clear UsageError when it is not one of ours."""
    check_schema_version(text, source)
    try:
        return _adapter().validate_python(migrate(json.loads(text)))
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        msg = errors[0]["msg"] if errors else ""
        raise UsageError(
            f"{source} is not a valid audit report ({exc.error_count()} errors; first at '{where}': {msg})",
            "re-run `model-audit run` to produce a fresh report",
        ) from exc


def load_report_dir(folder: Path) -> AuditReport:
    """Load report.json from a finished run directory."""
    path = folder / "report.json"
    if not path.is_file():
        raise ReportNotFoundError(f"no report.json in {folder}", "give the folder a `model-audit run` wrote")
    if path.is_symlink():  # never follow a link out of the run folder (it may point at an endless device)
        raise UsageError(f"{path} is a symbolic link", "a run folder holds only the files model-audit wrote")
    return report_from_json(path.read_bytes(), str(path))


def report_schema() -> dict[str, Any]:
    """JSON Schema of report.json."""
    schema: dict[str, Any] = _adapter().json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "model-risk-audit report"
    return schema
