"""Tamper evidence: an integrity hash inside the report and a manifest of every file in the run directory.

`Integrity.content_hash` = sha256 over the report JSON (with `integrity` empty) and the run's
samples.jsonl and scores.jsonl; the HTML, PDF and Markdown show it. `manifest.json` lists the
sha256 of every artifact, the configuration hash and the tool and library versions.
`model-audit verify DIR` detects any changed, missing or added file and a content hash that no
longer matches.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from audit import __version__
from audit.fsutil import sha256_file
from audit.model import AuditReport, Integrity
from audit.serialize import report_to_dict

MANIFEST = "manifest.json"
DATA_FILES = ("samples.jsonl", "scores.jsonl")


def _canonical(report: AuditReport) -> bytes:
    data = report_to_dict(replace(report, integrity=None))
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def content_hash(report: AuditReport, run_dir: Path) -> Integrity:
    """The integrity record of a report and the data files beside it."""
    parts = [f"report:{hashlib.sha256(_canonical(report)).hexdigest()}"]
    covers = ["report.json"]
    for name in DATA_FILES:
        if (run_dir / name).exists():
            parts.append(f"{name}:{sha256_file(run_dir / name)}")
            covers.append(name)
    return Integrity(hashlib.sha256("\n".join(parts).encode()).hexdigest(), tuple(covers))


def list_artifacts(run_dir: Path) -> list[str]:
    out = []
    for root, dirs, files in os.walk(run_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), run_dir).replace(os.sep, "/")
            if rel != MANIFEST and not f.startswith("."):
                out.append(rel)
    return sorted(out)


def build_manifest(report: AuditReport, run_dir: Path) -> dict[str, Any]:
    """manifest.json's content for a run directory."""
    inputs = json.dumps(report.run.inputs, sort_keys=True, default=str).encode()
    return {
        "tool": "model-risk-audit",
        "tool_version": __version__,
        "schema_version": report.schema_version,
        "subject": report.subject.display,
        "resolved_revision": report.run.resolved_revision,
        "config_hash": hashlib.sha256(inputs).hexdigest(),
        "content_hash": report.integrity.content_hash if report.integrity else None,
        "library_versions": report.run.library_versions,
        "files": {name: sha256_file(run_dir / name) for name in list_artifacts(run_dir)},
    }


def verify(run_dir: Path) -> list[str]:
    """Problems found in a run directory (empty when every file is as the manifest says)."""
    from audit.serialize import report_from_json

    path = run_dir / MANIFEST
    if not path.is_file():
        return [f"no {MANIFEST} in {run_dir}"]
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        listed: dict[str, str] = manifest["files"]
    except (ValueError, KeyError, TypeError):
        return [f"{MANIFEST} is not readable"]
    problems = []
    present = set(list_artifacts(run_dir))
    for name, digest in sorted(listed.items()):
        if name not in present:
            problems.append(f"missing: {name}")
        elif sha256_file(run_dir / name) != digest:
            problems.append(f"changed: {name}")
    problems.extend(f"added: {name}" for name in sorted(present - set(listed)))
    if (run_dir / "report.json").is_file():
        try:
            report = report_from_json((run_dir / "report.json").read_bytes())
            recomputed = content_hash(report, run_dir).content_hash
            if report.integrity is None or report.integrity.content_hash != recomputed:
                problems.append(
                    "content hash: report.json or its data files do not match the hash inside the report"
                )
            if manifest.get("content_hash") != recomputed:
                problems.append("content hash: does not match manifest.json")
        except Exception as exc:  # noqa: BLE001 - a tampered report may not even parse
            problems.append(f"report.json does not load: {type(exc).__name__}")
    return problems
