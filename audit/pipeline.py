"""The pipeline: collect -> analyse -> (sample -> score -> aggregate, coming with the probe engine) -> render.

Every stage reads and writes the run directory, so `render` reruns from a finished
audit without touching the model. Reports are rendered in memory first and then
written atomically: a failure never leaves a half-written report behind.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import time
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from audit import __version__
from audit.analyze import analyse, verdict
from audit.collect import collect, parse_ref
from audit.collect.hub import offline_mode
from audit.config import AuditOptions
from audit.fsutil import atomic_write
from audit.model import SCHEMA_VERSION, AuditReport, ModelRef, RunInfo
from audit.progress import Progress, SilentProgress
from audit.render import renderer
from audit.serialize import load_report_dir

DEFAULT_FORMATS = ("json", "html", "pdf", "md")
_LIBS = ("huggingface_hub", "pydantic", "PyYAML", "Jinja2", "markdown-it-py", "nh3", "weasyprint", "rich")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape the report."""
    out = {"python": platform.python_version()}
    for lib in _LIBS:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "not installed"
    return out


def hub_endpoint() -> str:
    """The Hub endpoint in use, with any credentials in the URL removed."""
    raw = os.environ.get("HF_ENDPOINT", "https://huggingface.co").strip()
    parts = urlsplit(raw)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _utc(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "")


def audit_model(
    ref: str | ModelRef,
    options: AuditOptions | None = None,
    *,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> AuditReport:
    """Collect and analyse one model; returns the report (nothing is written)."""
    options = options or AuditOptions()
    model_ref = ref if isinstance(ref, ModelRef) else parse_ref(ref)
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()
    collected = collect(model_ref, options, progress or SilentProgress())
    if model_ref.name:
        collected = replace(collected, card=replace(collected.card, subject=model_ref.name))
    findings = analyse(collected, options, now=now)
    finished = dt.datetime.now(dt.timezone.utc)
    run = RunInfo(
        tool_version=__version__,
        started_at=_utc(started),
        finished_at=_utc(finished),
        duration_s=round(time.monotonic() - t0, 3),
        inputs={"ref": model_ref.raw, "options": options.model_dump(mode="json")},
        resolved_revision=collected.card.resolved_revision,
        library_versions=library_versions(),
        hub_endpoint=hub_endpoint(),
        offline=offline_mode(),
    )
    return AuditReport(
        schema_version=SCHEMA_VERSION,
        run=run,
        subject=model_ref,
        card=collected.card,
        base_models=collected.base_models,
        datasets=collected.datasets,
        findings=findings,
        probes=(),
        verdict=verdict(findings),
    )


def slug(text: str) -> str:
    """A file-system-safe name: `org/name` -> `org__name`."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text.replace("/", "__")).strip("._")
    return s[:120] or "model"


def default_out_dir(report: AuditReport, base: Path = Path("reports")) -> Path:
    """`reports/<slug>-<revision>/` (revision: the first 12 characters of the commit, or 'local')."""
    rev = (report.run.resolved_revision or "local")[:12]
    return base / f"{slug(report.card.subject)}-{slug(rev)}"


def write_report(
    report: AuditReport, out_dir: Path, formats: list[str] | tuple[str, ...] = DEFAULT_FORMATS
) -> list[Path]:
    """Render every format in memory, then write each file atomically. report.json is always written."""
    wanted = list(dict.fromkeys(["json", *formats]))
    rendered: list[tuple[Path, bytes]] = []
    for fmt in wanted:
        fn, filename = renderer(fmt)
        rendered.append((out_dir / filename, fn(report)))
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, data in rendered:
        atomic_write(path, data)
    return [p for p, _ in rendered]


def render_dir(folder: Path, formats: list[str]) -> list[Path]:
    """Re-render a finished audit from its report.json, without collecting again."""
    report = load_report_dir(folder)
    outputs = []
    for fmt in formats:
        fn, filename = renderer(fmt)
        if fmt == "json":
            continue  # report.json is the source of truth; never rewrite it from itself
        outputs.append((folder / filename, fn(report)))
    for path, data in outputs:
        atomic_write(path, data)
    return [p for p, _ in outputs]
