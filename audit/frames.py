"""Tidy pandas tables from audits: one or many report.json files -> DataFrames.

Four tables, one row per observation, keyed by the `audit` column (a label per report: the run
folder's name, made unique with `#2`, `#3` when two folders share a name):

- `facts`: one row per audit: subject, ref, revision, licence and class, size class, parameters,
  context length, attention, datasets declared and documented, documentation score, rating,
  findings by severity, the policy verdict and when the audit finished.
- `findings`: audit, id, severity, category, title, waived (an active waiver of the applied policy).
- `metrics`: audit, suite, metric, group, axis, label, value, ci_low, ci_high, n, p, p_holm,
  higher_is_worse (every metric of every suite that ran).
- `datasets`: audit, dataset, available, license, license_class, personal_info, bias_documented.

The tables are built from the JSON data of the reports (not from validated objects), so a
thousand report.json files load in well under the ten seconds the benchmark allows; in-memory
reports go through the same code via `report_to_dict`. `write_tables` writes them as CSV (one file
per table beside the named one: `out.csv` -> `out.facts.csv`, `out.findings.csv`, ...), Parquet
(likewise, one file per table) or Excel (one sheet per table) by the file's suffix;
`read_tables` reads them back to the same frames.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audit.errors import ReportNotFoundError, UsageError
from audit.model import SEVERITIES, AuditReport

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TABLES",
    "COLUMNS",
    "frames",
    "frames_from_dicts",
    "load_report_dicts",
    "write_tables",
    "read_tables",
    "table_paths",
]

TABLES = ("facts", "findings", "metrics", "datasets")
SEVERITY_COLUMNS = tuple(f"findings_{s.value}" for s in reversed(SEVERITIES))
COLUMNS: dict[str, tuple[str, ...]] = {
    "facts": (
        "audit",
        "subject",
        "ref",
        "revision",
        "license",
        "license_class",
        "size_class",
        "parameters",
        "context_length",
        "attention",
        "datasets_declared",
        "datasets_documented",
        "documentation_score",
        "rating",
        *SEVERITY_COLUMNS,
        "gate",
        "finished_at",
    ),
    "findings": ("audit", "id", "severity", "category", "title", "waived"),
    "metrics": (
        "audit",
        "suite",
        "metric",
        "group",
        "axis",
        "label",
        "value",
        "ci_low",
        "ci_high",
        "n",
        "p",
        "p_holm",
        "higher_is_worse",
    ),
    "datasets": (
        "audit",
        "dataset",
        "available",
        "license",
        "license_class",
        "personal_info",
        "bias_documented",
    ),
}
_DTYPES: dict[str, dict[str, str]] = {
    "facts": {
        "parameters": "Int64",
        "context_length": "Int64",
        "datasets_declared": "Int64",
        "datasets_documented": "Int64",
        "documentation_score": "float64",
        **dict.fromkeys(SEVERITY_COLUMNS, "Int64"),
    },
    "findings": {"waived": "boolean"},
    "metrics": {
        "value": "float64",
        "ci_low": "float64",
        "ci_high": "float64",
        "n": "Int64",
        "p": "float64",
        "p_holm": "float64",
        "higher_is_worse": "boolean",
    },
    "datasets": {"available": "boolean", "bias_documented": "boolean"},
}


def dataset_documented(ds: Mapping[str, Any]) -> bool:
    """A declared dataset counts as documented when its card was read, names a licence, says
    whether it holds personal information and discusses its biases."""
    return bool(
        ds.get("available")
        and ds.get("license_class") not in ("missing", None)
        and ds.get("personal_info") not in ("undocumented", None)
        and ds.get("bias_documented")
    )


def load_report_dicts(paths: Iterable[Path]) -> list[tuple[str, dict[str, Any]]]:
    """(label, report data) for each run folder or report.json; labels are unique folder names."""
    out: list[tuple[str, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for given in paths:
        path = given / "report.json" if given.is_dir() else given
        if not path.is_file():
            raise ReportNotFoundError(
                f"no report.json in {given}", "give run folders that `model-audit run` wrote"
            )
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path} is not readable JSON: {exc}", "re-run the audit") from exc
        if not isinstance(data, dict) or "schema_version" not in data or "card" not in data:
            raise UsageError(f"{path} is not an audit report", "give report.json files `model-audit` wrote")
        label = path.parent.name or path.stem
        seen[label] = seen.get(label, 0) + 1
        out.append((label if seen[label] == 1 else f"{label}#{seen[label]}", data))
    return out


def _facts_row(label: str, r: Mapping[str, Any]) -> dict[str, Any]:
    card = r.get("card") or {}
    arch = card.get("architecture") or {}
    run = r.get("run") or {}
    counts = (r.get("verdict") or {}).get("counts") or {}
    datasets = r.get("datasets") or []
    gate = r.get("gate") or {}
    subject = r.get("subject") or {}
    return {
        "audit": label,
        "subject": card.get("subject") or subject.get("raw"),
        "ref": subject.get("raw"),
        "revision": run.get("resolved_revision"),
        "license": ", ".join(card.get("licenses") or ()) or None,
        "license_class": card.get("license_class"),
        "size_class": card.get("size_class"),
        "parameters": card.get("parameters"),
        "context_length": arch.get("context_length"),
        "attention": arch.get("attention"),
        "datasets_declared": len(card.get("datasets") or ()),
        "datasets_documented": sum(1 for d in datasets if dataset_documented(d)),
        "documentation_score": card.get("documentation_score"),
        "rating": (r.get("verdict") or {}).get("rating"),
        **{col: int(counts.get(col.removeprefix("findings_"), 0)) for col in SEVERITY_COLUMNS},
        "gate": gate.get("verdict"),
        "finished_at": run.get("finished_at"),
    }


def _rows(label: str, r: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    gate = r.get("gate") or {}
    waived = {w.get("finding_id") for w in gate.get("waivers") or () if w.get("status") == "active"}
    findings = [
        {
            "audit": label,
            "id": f.get("id"),
            "severity": f.get("severity"),
            "category": f.get("category"),
            "title": f.get("title"),
            "waived": f.get("id") in waived,
        }
        for f in r.get("findings") or ()
    ]
    metrics = [
        {
            "audit": label,
            "suite": p.get("suite"),
            "metric": m.get("name"),
            "group": m.get("group", ""),
            "axis": m.get("axis", ""),
            "label": m.get("label", ""),
            "value": m.get("value"),
            "ci_low": m.get("ci_low"),
            "ci_high": m.get("ci_high"),
            "n": m.get("n"),
            "p": m.get("p_value"),
            "p_holm": m.get("p_adjusted"),
            "higher_is_worse": m.get("higher_is_worse", True),
        }
        for p in r.get("probes") or ()
        if not p.get("skipped")
        for m in p.get("metrics") or ()
    ]
    datasets = [
        {
            "audit": label,
            "dataset": d.get("id"),
            "available": bool(d.get("available")),
            "license": ", ".join(d.get("licenses") or ()) or None,
            "license_class": d.get("license_class"),
            "personal_info": d.get("personal_info"),
            "bias_documented": bool(d.get("bias_documented")),
        }
        for d in r.get("datasets") or ()
    ]
    return {"facts": [_facts_row(label, r)], "findings": findings, "metrics": metrics, "datasets": datasets}


def _frame(name: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame.from_records(rows, columns=list(COLUMNS[name]))
    for col, dtype in _DTYPES[name].items():
        if dtype == "boolean":
            df[col] = df[col].map(_as_bool, na_action="ignore").astype("boolean")
        else:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(dtype)
    for col in df.columns:
        if col not in _DTYPES[name]:
            # An empty text is no value: CSV cannot tell the two apart, so no format does.
            df[col] = df[col].astype("string").replace("", pd.NA)
    return df


def _as_bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v)


def frames_from_dicts(items: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, pd.DataFrame]:
    """The four tables from (label, report JSON data) pairs."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    for label, data in items:
        for name, part in _rows(label, data).items():
            rows[name].extend(part)
    return {name: _frame(name, rows[name]) for name in TABLES}


def frames(
    reports: Iterable[AuditReport | Path], labels: Iterable[str] | None = None
) -> dict[str, pd.DataFrame]:
    """The four tables (facts, findings, metrics, datasets) of reports in memory or run folders.

    Labels default to the run folder's name (paths) or the report's subject (reports in memory).
    """
    from audit.serialize import report_to_dict

    items: list[tuple[str, Mapping[str, Any]]] = []
    given = list(labels) if labels is not None else None
    for i, item in enumerate(reports):
        if isinstance(item, Path):
            label, data = load_report_dicts([item])[0]
        else:
            data = report_to_dict(item)
            label = item.card.subject or item.subject.display
        items.append((given[i] if given is not None else label, data))
    return frames_from_dicts(items)


def table_paths(out: Path) -> dict[str, Path]:
    """Where `write_tables` puts each table: one file per table for CSV and Parquet, one workbook for Excel."""
    suffix = out.suffix.lower()
    if suffix in (".xlsx",):
        return dict.fromkeys(TABLES, out)
    if suffix in (".csv", ".parquet"):
        return {name: out.with_name(f"{out.stem}.{name}{suffix}") for name in TABLES}
    raise UsageError(
        f"unknown table format '{out.suffix or out.name}'",
        "name the output .csv (one file per table), .parquet (likewise) or .xlsx (one sheet per table)",
    )


def write_tables(tables: Mapping[str, pd.DataFrame], out: Path) -> list[Path]:
    """Write the tables by the file's suffix (.csv, .parquet, .xlsx); every file is written atomically."""
    import io

    from audit.fsutil import atomic_write

    paths = table_paths(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".xlsx":
        try:
            import openpyxl  # noqa: F401
        except ImportError as exc:
            raise UsageError(
                "Excel output needs openpyxl", "pip install 'model-risk-audit[scale]' (or openpyxl)"
            ) from exc
        buf = io.BytesIO()
        import pandas as pd

        with pd.ExcelWriter(buf, engine="openpyxl") as xw:
            for name in TABLES:
                tables[name].to_excel(xw, sheet_name=name, index=False)
        atomic_write(out, buf.getvalue())
        return [out]
    written = []
    for name in TABLES:
        if suffix == ".csv":
            data = tables[name].to_csv(index=False).encode("utf-8")
        else:
            try:
                import pyarrow  # noqa: F401
            except ImportError as exc:
                raise UsageError(
                    "Parquet output needs pyarrow", "pip install 'model-risk-audit[scale]' (or pyarrow)"
                ) from exc
            buf = io.BytesIO()
            tables[name].to_parquet(buf, index=False)
            data = buf.getvalue()
        atomic_write(paths[name], data)
        written.append(paths[name])
    return written


def read_tables(out: Path) -> dict[str, pd.DataFrame]:
    """Read what `write_tables` wrote back to the same frames (columns and dtypes restored)."""
    import pandas as pd

    paths = table_paths(out)
    suffix = out.suffix.lower()
    result = {}
    for name in TABLES:
        if suffix == ".xlsx":
            df = pd.read_excel(paths[name], sheet_name=name, dtype=object)
        elif suffix == ".csv":
            df = pd.read_csv(paths[name], dtype=object, keep_default_na=False, na_values=[""])
        else:
            df = pd.read_parquet(paths[name])
        df = df.astype(object).where(df.notna(), None)
        result[name] = _frame(name, df.to_dict("records"))
    return result
