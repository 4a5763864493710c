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
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

from audit import __version__
from audit.errors import UsageError
from audit.fsutil import file_kind, open_regular
from audit.model import AuditReport, Integrity
from audit.serialize import report_to_dict

MANIFEST = "manifest.json"
DATA_FILES = ("samples.jsonl", "scores.jsonl")


def _canonical(report: AuditReport) -> bytes:
    data = report_to_dict(replace(report, integrity=None))
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def hash_regular(path: Path) -> str:
    """sha256 of a regular file; a link, FIFO or device is refused (OSError), never followed or opened."""
    h = hashlib.sha256()
    with open_regular(path) as (fh, _):
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_regular(path: Path) -> bytes:
    """A regular file's bytes; a link, FIFO or device is refused (OSError)."""
    with open_regular(path) as (fh, _):
        return fh.read()


def content_hash(report: AuditReport, run_dir: Path, check_folder: bool = True) -> Integrity:
    """The integrity record of a report and the data files beside it.

    With `check_folder` (the writers' first step) a folder holding links, FIFOs or devices is
    refused before anything is written."""
    if check_folder:
        list_artifacts(run_dir)
    parts = [f"report:{hashlib.sha256(_canonical(report)).hexdigest()}"]
    covers = ["report.json"]
    for name in DATA_FILES:
        if os.path.lexists(run_dir / name):
            parts.append(f"{name}:{_hash_or_refuse(run_dir, name)}")
            covers.append(name)
    return Integrity(hashlib.sha256("\n".join(parts).encode()).hexdigest(), tuple(covers))


def scan(run_dir: Path) -> tuple[list[str], list[str]]:
    """(regular files, refused entries) of a run directory, dotfiles included, links never followed.

    Refused entries are symbolic links (to files or folders), FIFOs, devices and sockets, each
    described in a line."""
    files: list[str] = []
    refused: list[str] = []
    for root, dirs, names in os.walk(run_dir, followlinks=False):
        for d in list(dirs):
            if os.path.islink(os.path.join(root, d)):
                rel = os.path.relpath(os.path.join(root, d), run_dir).replace(os.sep, "/")
                refused.append(f"{rel} is a symbolic link")
                dirs.remove(d)
        dirs.sort()
        for f in sorted(names):
            path = os.path.join(root, f)
            rel = os.path.relpath(path, run_dir).replace(os.sep, "/")
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue  # removed while we looked
            if stat.S_ISREG(mode):
                if rel != MANIFEST:
                    files.append(rel)
            else:
                refused.append(f"{rel} is {file_kind(mode)}")
    return sorted(files), refused


def list_artifacts(run_dir: Path) -> list[str]:
    """Every regular file of a run directory (dotfiles included) but manifest.json.

    Raises UsageError when the folder holds links, FIFOs, devices or sockets: they are never hashed."""
    files, refused = scan(run_dir)
    if refused:
        raise UsageError(
            f"{run_dir} holds entries that are not regular files: {'; '.join(refused[:5])}",
            "remove them: a run folder holds only the files model-audit wrote",
        )
    return files


def _hash_or_refuse(run_dir: Path, name: str) -> str:
    try:
        return hash_regular(run_dir / name)
    except OSError as exc:
        raise UsageError(
            f"cannot hash {run_dir / name}: {exc.strerror or exc}",
            "remove it: a run folder holds only the files model-audit wrote",
        ) from exc


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
        "files": {name: _hash_or_refuse(run_dir, name) for name in list_artifacts(run_dir)},
    }


def verify(run_dir: Path) -> list[str]:
    """Problems found in a run directory (empty when every file is as the manifest says).

    Dotfiles count; links, FIFOs, devices and sockets are problems and are never opened. A missing
    folder is a UsageError."""
    from audit.serialize import report_from_json

    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such folder", "give the folder a `model-audit run` wrote")
    path = run_dir / MANIFEST
    try:
        manifest = json.loads(read_regular(path).decode("utf-8"))
        listed: dict[str, str] = manifest["files"]
        if not isinstance(listed, dict):
            raise TypeError
    except FileNotFoundError:
        return [f"no {MANIFEST} in {run_dir}"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return [f"{MANIFEST} is not a readable manifest"]
    files, refused = scan(run_dir)
    problems = [f"refused: {r} (not hashed)" for r in refused]
    present = set(files)
    for name, digest in sorted(listed.items()):
        if name not in present:
            if not any(r.startswith(f"{name} is ") for r in refused):
                problems.append(f"missing: {name}")
        else:
            try:
                if hash_regular(run_dir / name) != digest:
                    problems.append(f"changed: {name}")
            except OSError:
                problems.append(f"unreadable: {name}")
    problems.extend(f"added: {name}" for name in sorted(present - set(listed)))
    if "report.json" in present:
        try:
            report = report_from_json(read_regular(run_dir / "report.json"))
            recomputed = content_hash(report, run_dir, check_folder=False).content_hash
            if report.integrity is None or report.integrity.content_hash != recomputed:
                problems.append(
                    "content hash: report.json or its data files do not match the hash inside the report"
                )
            if manifest.get("content_hash") != recomputed:
                problems.append("content hash: does not match manifest.json")
        except Exception as exc:  # noqa: BLE001 - a tampered report may not even parse
            problems.append(f"report.json does not load: {type(exc).__name__}")
    return problems
