"""The pipeline: collect -> analyse -> (sample -> score -> aggregate, coming with the probe engine) -> render.

Every stage reads and writes the run directory, so `render` reruns from a finished
audit without touching the model. Reports are rendered in memory first and then
written atomically: a failure never leaves a half-written report behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import re
import time
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from audit import __version__
from audit.analyze import analyse, verdict
from audit.collect import collect, parse_ref
from audit.collect.hub import offline_mode
from audit.config import AuditOptions, ProbeOptions, SuiteSpec
from audit.fsutil import atomic_write
from audit.model import SCHEMA_VERSION, AuditReport, ModelRef, ProbeResult, RunInfo
from audit.progress import Progress, SilentProgress
from audit.render import renderer
from audit.serialize import load_report_dir
from audit.suites import builtin_suites, resolve_suite

DEFAULT_FORMATS = ("json", "html", "pdf", "md")
_LIBS = (
    "huggingface_hub",
    "pydantic",
    "PyYAML",
    "Jinja2",
    "markdown-it-py",
    "nh3",
    "weasyprint",
    "rich",
    # Libraries that compute probe results.
    "torch",
    "transformers",
    "sentence-transformers",
    "numpy",
    "scipy",
    "detoxify",
)


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape the report."""
    out = {"python": platform.python_version()}
    for lib in _LIBS:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "not installed"
    return out


def recorded_ref(ref: ModelRef) -> ModelRef:
    """The reference as the report records it: a local path as the user typed it when relative, else
    only the folder's or file's name, so no absolute path into the user's environment is written."""
    if not ref.path or not Path(ref.path).is_absolute():
        return ref
    typed = Path(ref.raw)
    if not typed.is_absolute():
        with contextlib.suppress(OSError):
            if typed.resolve() == Path(ref.path).resolve():
                return replace(ref, path=ref.raw)
    return replace(ref, path=Path(ref.path).name)


def hub_endpoint() -> str:
    """The Hub endpoint in use, with any credentials in the URL removed."""
    from audit.redact import redact_url

    raw = os.environ.get("HF_ENDPOINT", "https://huggingface.co").strip()
    parts = urlsplit(redact_url(raw))
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
        offline=options.offline or offline_mode(),
    )
    report = AuditReport(
        schema_version=SCHEMA_VERSION,
        run=run,
        subject=recorded_ref(model_ref),
        card=collected.card,
        base_models=collected.base_models,
        datasets=collected.datasets,
        findings=findings,
        probes=(),
        verdict=verdict(findings),
    )
    from audit.profiles import apply_profile  # weighs the findings for the use (audit/profiles.py)

    return apply_profile(report, options.profile)


def _no_card_report(model_ref: ModelRef, options: AuditOptions, reason: str) -> AuditReport:
    """The card side of an audit of a model served by an endpoint with no Hub card: says so, does not fail."""
    from audit.analyze import no_card_finding
    from audit.model import CardFacts

    card = CardFacts(
        subject=model_ref.name or model_ref.raw,
        source="endpoint",
        has_card=False,
        readable=False,
        problems=(reason,),
    )
    finding = no_card_finding(card)
    now = _utc(dt.datetime.now(dt.timezone.utc))
    run = RunInfo(
        tool_version=__version__,
        started_at=now,
        finished_at=now,
        duration_s=0.0,
        inputs={"ref": model_ref.raw, "options": options.model_dump(mode="json")},
        resolved_revision=None,
        library_versions=library_versions(),
        hub_endpoint=hub_endpoint(),
        offline=options.offline or offline_mode(),
    )
    findings = (finding,)
    return AuditReport(SCHEMA_VERSION, run, model_ref, card, (), (), findings, (), verdict(findings))


def run_audit(
    ref: str | ModelRef,
    options: AuditOptions | None = None,
    probe_options: ProbeOptions | None = None,
    *,
    out_dir: Path | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
    locks: contextlib.ExitStack | None = None,
    name: str | None = None,
) -> tuple[AuditReport, Path]:
    """The whole pipeline: collect -> analyse -> sample -> score -> aggregate. Returns the report and its run dir.

    With `locks`, the run folder's lock is taken (and held by the stack) as soon as the folder is
    known, before anything is written: the caller keeps it until the report is written.
    """
    from audit.errors import AuditError, InvalidRefError
    from audit.sample import is_remote

    options = options or AuditOptions()
    popts = probe_options or ProbeOptions()
    check_plugins(popts)  # a misspelt backend, scorer or option fails before any request or model load
    model_ref = ref if isinstance(ref, ModelRef) else None
    t0 = time.monotonic()
    try:
        model_ref = model_ref or parse_ref(str(ref))
        if name:
            model_ref = replace(model_ref, name=name)
        report = audit_model(model_ref, options, progress=progress, now=now)
    except (InvalidRefError, AuditError) as exc:
        if not popts.suites or not is_remote(popts.backend):
            raise
        # An endpoint model name that is not a Hub id: the card part of the report says there is no card.
        model_ref = model_ref or ModelRef(raw=str(ref), kind="hub", name=name or str(ref))
        report = _no_card_report(model_ref, options, f"no Hub card: {getattr(exc, 'message', exc)}")
    out = out_dir or default_out_dir(report)
    if locks is not None:
        from audit.runlock import RunFolderLock

        locks.enter_context(RunFolderLock(out))
    from audit.sample.hf import detect_kind
    from audit.suites import select_suites

    arch = report.card.architecture
    kind = detect_kind(report.card.pipeline_tag, report.card.library_name, arch.architectures if arch else ())
    if kind is None and is_remote(popts.backend):
        kind = "text-generation"  # an endpoint generates text
    requested = list(popts.suites)
    from audit.guards import check_suite_kinds, invalid_model_check

    check_suite_kinds(requested, kind, popts.force_suite)
    automatic = not requested and popts.auto_suites
    suites = requested or (select_suites(kind) if automatic else [])
    if not suites:
        return report, out
    from audit.findings import finding
    from audit.probe import ProbeRunner, SubjectModel

    source = model_ref.repo_id if model_ref.kind == "hub" else model_ref.path
    subject = SubjectModel(
        ref=report.card.subject, source=source, revision=report.run.resolved_revision, kind=kind
    )
    runner = ProbeRunner(subject, popts, out, progress=progress, hub_cache=options.cache_dir)
    probes, extra = [], []
    try:
        for suite in suites:
            try:
                result, findings = runner.run_suite(suite)
                result, findings = invalid_model_check(result, findings, runner)
            except AuditError as exc:
                if not automatic:
                    raise
                # Chosen by the model's kind, not by the user: a suite that cannot run is reported, not fatal.
                result, findings = (
                    _skipped(
                        resolve_suite(suite), f"{exc.message} ({exc.hint})" if exc.hint else exc.message
                    ),
                    [],
                )
            probes.append(result)
            extra.extend(findings)
        if automatic:
            probes.extend(
                _skipped(spec, f"not for {kind} models (suite applies to {', '.join(spec.model_kinds)})")
                for spec in builtin_suites().values()
                if spec.id not in suites
            )
    finally:
        runner.close()
    if popts.trust_remote_code and popts.backend == "hf":
        extra.append(
            finding(
                "run.trust_remote_code",
                subject=report.card.subject,
                evidence=(f"model {source} at revision {subject.revision or 'unpinned'}",),
            )
        )
    findings_all = tuple(sorted(report.findings + tuple(extra), key=lambda f: (-f.severity.rank, f.id)))
    popts = popts.model_copy(update={"suites": suites})
    run = replace(
        report.run,
        duration_s=round(time.monotonic() - t0, 3),
        finished_at=_utc(dt.datetime.now(dt.timezone.utc)),
        inputs={**report.run.inputs, "probes": recorded_probe_options(popts)},
    )
    report = replace(
        report, run=run, probes=tuple(probes), findings=findings_all, verdict=verdict(findings_all)
    )
    from audit.profiles import apply_profile  # probe findings and probe-data licences weighed too

    return apply_profile(report, options.profile), out


def check_plugins(popts: ProbeOptions) -> None:
    """Validate the backend, the --scorer specs and their options against the plugin registries (exit 2)."""
    from audit.registry import BACKENDS, SCORERS
    from audit.score import parse_scorer_spec

    if popts.suites or popts.auto_suites:
        BACKENDS.validate_options(popts.backend, popts.backend_options)
    for text in popts.scorers or []:
        name, opts = parse_scorer_spec(text)
        SCORERS.validate_options(name, opts)


def recorded_probe_options(popts: ProbeOptions) -> dict[str, object]:
    """Probe options as the report records them: credentials in URLs and secret-named options masked."""
    from audit.redact import redact_options

    dumped = popts.model_dump(mode="json")
    dumped["backend_options"] = redact_options(dict(popts.backend_options))
    dumped["data"] = redact_options(dict(popts.data))
    return dumped


def _skipped(spec: SuiteSpec, reason: str) -> ProbeResult:
    """A suite the automatic selection did not run, and why."""
    return ProbeResult(
        suite=spec.id, version=spec.version, title=spec.title, citation=spec.citation, skipped=reason
    )


def slug(text: str) -> str:
    """A file-system-safe name: `org/name` -> `org__name`. A name that loses characters (non-ASCII,
    dots only) gets a short hash of itself, so different names never share a folder."""
    flat = text.replace("/", "__")
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", flat).strip("._")
    if s != flat:
        import hashlib

        s = f"{s[:110] or 'model'}-{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    return s[:120]


def out_dir_arg(text: str) -> Path:
    """`--out DIR` (an argparse type): not empty, and not an existing file."""
    import argparse

    if not text.strip():
        raise argparse.ArgumentTypeError("--out is empty: give a folder, e.g. --out reports/my-audit")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder: give a new or existing folder")
    return path


def default_out_dir(report: AuditReport, base: Path = Path("reports")) -> Path:
    """`reports/<slug>-<revision>/` (revision: the first 12 characters of the commit, or 'local')."""
    rev = (report.run.resolved_revision or "local")[:12]
    return base / f"{slug(report.card.subject)}-{slug(rev)}"


def write_report(
    report: AuditReport, out_dir: Path, formats: list[str] | tuple[str, ...] = DEFAULT_FORMATS
) -> list[Path]:
    """Render every format in memory, then write each file atomically, then manifest.json.

    report.json is always written. The report carries an integrity hash over itself and the
    run's samples and scores; manifest.json lists the sha256 of every file in the folder.
    """
    from audit.manifest import MANIFEST, build_manifest, content_hash

    out_dir.mkdir(parents=True, exist_ok=True)
    report = replace(report, integrity=content_hash(report, out_dir))
    wanted = list(dict.fromkeys(["json", *formats]))
    rendered: list[tuple[Path, bytes]] = []
    for fmt in wanted:
        fn, filename = renderer(fmt)
        rendered.append((out_dir / filename, fn(report)))
    for path, data in rendered:
        atomic_write(path, data)
    atomic_write(out_dir / MANIFEST, (json.dumps(build_manifest(report, out_dir), indent=2) + "\n").encode())
    return [p for p, _ in rendered]


def render_dir(folder: Path, formats: list[str]) -> list[Path]:
    """Re-render a finished audit from its report.json (without collecting again); the manifest is renewed."""
    from audit.runlock import RunFolderLock

    with RunFolderLock(folder):
        report = load_report_dir(folder)
        wanted = [f for f in formats if f != "json"]
        paths = write_report(report, folder, wanted)
    return [p for p in paths if p.name != "report.json" or "json" in formats]


def apply_baseline(report: AuditReport, baseline_dir: Path, run_dir: Path | None) -> AuditReport:
    """Add drift against a baseline run directory, and the drift findings, to a report."""
    from audit.analyze import verdict as _verdict
    from audit.drift import diff_reports, drift_findings
    from audit.profiles import apply_profile, profile_ref

    old = apply_profile(load_report_dir(baseline_dir), profile_ref(report))  # like for like: the same profile
    drift = diff_reports(old, report, baseline=str(baseline_dir), old_dir=baseline_dir, new_dir=run_dir)
    findings = tuple(
        sorted(
            report.findings + tuple(drift_findings(drift, report.card.subject)),
            key=lambda f: (-f.severity.rank, f.id),
        )
    )
    with_drift = replace(report, drift=drift, findings=findings, verdict=_verdict(findings))
    return apply_profile(with_drift, profile_ref(report))


def apply_policy(report: AuditReport, policy: str | Path) -> AuditReport:
    """Evaluate a policy file (or `default`) against a report and attach the result."""
    from audit.frameworks import framework_coverage
    from audit.gate import evaluate, load_policy

    pol, sha = load_policy(policy)
    gated = replace(
        report, gate=evaluate(report, pol, pol.name if str(policy) != "default" else "default", sha)
    )
    return replace(gated, frameworks=framework_coverage(gated))  # the gate is evidence (MANAGE 1.1)


def fingerprint(report: AuditReport, suites: list[str], policy: str | Path | None) -> dict[str, str | None]:
    """What --if-changed compares: the model revision, the suites' definitions, the policy file and the profile."""
    import hashlib

    parts = []
    for name in sorted(suites):
        try:
            parts.append(resolve_suite(name).model_dump_json())
        except Exception:  # noqa: BLE001 - a suite file that went away still has a name
            parts.append(name)
    suite_hash = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    pol = None
    if policy is not None:
        from audit.gate import load_policy

        pol = load_policy(policy)[1]
    revision = report.run.resolved_revision or report.card.resolved_revision
    if revision is None:  # a local folder: its file list and card metadata stand for the revision
        revision = (
            "local:"
            + hashlib.sha256(
                json.dumps(
                    [report.card.files, report.card.metadata, report.card.card_bytes],
                    sort_keys=True,
                    default=str,
                ).encode()
            ).hexdigest()[:16]
        )
    profile = f"{report.profile.name}:{report.profile.sha256[:16]}" if report.profile else None
    return {"revision": revision, "suites": suite_hash, "policy": pol, "profile": profile}


@dataclass(frozen=True)
class RunPlan:
    """What `model-audit run` does around the audit: formats, policy, baseline, --if-changed, JUnit."""

    formats: tuple[str, ...] = DEFAULT_FORMATS
    policy: str | None = None
    baseline: Path | None = None
    if_changed: Path | None = None
    junit: Path | None = None


@dataclass(frozen=True)
class RunOutcome:
    """The audit written (or None when --if-changed found nothing new), and the files written."""

    report: AuditReport | None
    out_dir: Path | None
    paths: tuple[Path, ...] = ()


def unchanged_since(
    baseline_dir: Path, ref: str | ModelRef, options: AuditOptions, popts: ProbeOptions, policy: str | None
) -> bool:
    """--if-changed: True when the baseline run saw the same revision, suites, policy and profile."""
    base = load_report_dir(baseline_dir)
    suites = base.run.inputs.get("probes", {}).get("suites", []) or popts.suites
    current = fingerprint(audit_model(ref, options), list(suites), policy)
    return bool(base.run.inputs.get("fingerprint") == current)


def finish_run(report: AuditReport, out: Path, *, policy: str | None, baseline: Path | None) -> AuditReport:
    """Record the fingerprint, add drift (baseline) and the gate (policy)."""
    suites_run = list(report.run.inputs.get("probes", {}).get("suites", []))
    inputs = {**report.run.inputs, "fingerprint": fingerprint(report, suites_run, policy)}
    report = replace(report, run=replace(report.run, inputs=inputs))
    if baseline is not None:
        report = apply_baseline(report, baseline, out)
    if policy:
        report = apply_policy(report, policy)
    return report


def execute_run(
    ref: str | ModelRef,
    options: AuditOptions,
    popts: ProbeOptions,
    plan: RunPlan,
    *,
    out_dir: Path | None = None,
    name: str | None = None,
    progress: Progress | None = None,
) -> RunOutcome:
    """`model-audit run`: the whole pipeline under the run folder's lock, then the report, drift and gate."""
    if plan.if_changed is not None and unchanged_since(plan.if_changed, ref, options, popts, plan.policy):
        return RunOutcome(None, None)
    with contextlib.ExitStack() as locks:  # the run folder's lock, from the first write to the last
        report, out = run_audit(
            ref, options, popts, out_dir=out_dir, progress=progress, locks=locks, name=name
        )
        report = finish_run(report, out, policy=plan.policy, baseline=plan.baseline)
        paths = write_report(report, out, plan.formats)
    if plan.junit is not None and report.gate is not None:
        from audit.gate import junit_xml

        atomic_write(plan.junit, junit_xml(report.gate, report.subject.display))
    return RunOutcome(report, out, tuple(paths))
