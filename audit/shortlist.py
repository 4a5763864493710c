"""Shortlist: find candidate models for a task, audit each into its own run folder, rank them by risk.

Candidates come from a Hub search (huggingface_hub's `list_models`: pipeline tag, library and
language filters, free text, sort, limit), from a file of REFs, or from REFs given directly.
Each candidate is audited by the per-model pipeline into `OUT/candidates/<slug>/` (see
`audit.executors`); a re-run reuses a finished candidate whose resolved revision, options and
suites have not changed. The shortlist then reads the candidates' report.json files into the
tidy tables of `audit.frames` and builds its report from them:

- **ranked**: candidates that pass every filter and have no finding at critical severity under
  the profile, ordered by risk: fewer critical, then high, then medium, then low findings first;
  ties broken by the higher documentation score, then by name;
- **disqualified**: each reason (a filter it fails, or a critical finding with its id and title);
- **failed**: candidates that could not be audited (gated, not found, unreachable), with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from audit.errors import UsageError
from audit.executors import CandidateJob, CandidateOutcome
from audit.frames import frames_from_dicts
from audit.model import LicenseClass

log = logging.getLogger("audit")

SORTS = ("downloads", "likes", "last_modified")
SIZE_CLASSES = ("small", "large")
LICENSE_CLASSES: tuple[str, ...] = get_args(LicenseClass)  # the data model's classes, named once
LISTING_FIELDS = [
    "sha",
    "pipeline_tag",
    "library_name",
    "tags",
    "downloads",
    "likes",
    "lastModified",
    "gated",
]
HEADLINE_METRICS = (
    "expected_maximum_toxicity",
    "toxicity_probability",
    "mean_toxicity",
    "stereotype_preference",
    "honest_score",
    "bias_score_ambig",
    "bias_score_disambig",
    "flip_rate",
)
SHORTLIST_FILES = {
    "json": "shortlist.json",
    "html": "shortlist.html",
    "pdf": "shortlist.pdf",
    "md": "shortlist.md",
}


@dataclass(frozen=True)
class Candidate:
    """A model to consider: its REF, where it came from, and the commit the search listed."""

    ref: str
    source: str = "search"  # search, file, argument
    revision: str | None = None


@dataclass(frozen=True)
class Filters:
    """Filters on the collected facts; a candidate that fails one is disqualified with the reason."""

    license_class: tuple[str, ...] = ()
    max_params: int | None = None
    min_context: int | None = None
    size_class: str | None = None

    def describe(self) -> list[str]:
        from audit.render.html import fmt_params

        out = []
        if self.license_class:
            out.append(f"licence class {' or '.join(self.license_class)}")
        if self.max_params is not None:
            out.append(f"at most {fmt_params(self.max_params)} parameters")
        if self.min_context is not None:
            out.append(f"context length at least {self.min_context}")
        if self.size_class:
            out.append(f"size class {self.size_class}")
        return out


@dataclass
class ShortlistResult:
    """The shortlist as its report shows it; `rows` hold every candidate in ranked order."""

    meta: dict[str, Any]
    ranked: list[dict[str, Any]] = field(default_factory=list)
    disqualified: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.meta, "ranked": self.ranked, "disqualified": self.disqualified, "failed": self.failed}


# ------------------------------------------------------------------ candidates


def parse_count(text: str) -> int:
    """'7e9', '7B', '350M', '110000000' -> an integer count."""
    s = text.strip().upper().replace("_", "").replace(",", "")
    mult = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
    try:
        if s and s[-1] in mult:
            return int(float(s[:-1]) * mult[s[-1]])
        return int(float(s))
    except ValueError as exc:
        raise UsageError(f"'{text}' is not a count", "write it like 7e9, 7B, 350M or 110000000") from exc


def parse_license_classes(text: str | None) -> tuple[str, ...]:
    """'permissive,copyleft' -> ('permissive', 'copyleft'), each checked."""
    if not text:
        return ()
    out = []
    for c in (x.strip().lower().replace("-", "_") for x in text.split(",")):
        if c and c not in LICENSE_CLASSES:
            raise UsageError(f"unknown licence class '{c}'", f"choose from {', '.join(LICENSE_CLASSES)}")
        if c:
            out.append(c)
    return tuple(dict.fromkeys(out))


def search_candidates(
    *,
    task: str | None = None,
    library: str | None = None,
    language: str | None = None,
    search: str | None = None,
    sort: str = "downloads",
    limit: int = 20,
) -> list[Candidate]:
    """Candidates from the Hub's model search (one request per page of results)."""
    from huggingface_hub import HfApi

    from audit.collect.hub import map_hub_error

    if sort not in SORTS:
        raise UsageError(f"unknown sort '{sort}'", f"choose from {', '.join(SORTS)}")
    if limit < 1:
        raise UsageError("--limit must be at least 1", "give --limit 20, for example")
    filters = [f for f in (library, language) if f]
    try:
        listed = HfApi().list_models(
            pipeline_tag=task or None,
            filter=filters or None,
            search=search or None,
            sort=sort,  # type: ignore[arg-type]
            limit=limit,
            expand=LISTING_FIELDS,  # type: ignore[arg-type]
        )
        return [Candidate(ref=m.id, source="search", revision=getattr(m, "sha", None)) for m in listed]
    except Exception as exc:  # noqa: BLE001 - any Hub failure is one error with a hint
        err = map_hub_error(exc, "(model search)", None)
        raise type(err)(f"the Hub model search failed: {err.message}", err.hint) from exc


def read_models_file(path: Path) -> list[str]:
    """REFs from a file: one a line; blank lines and `#` comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"cannot read --models {path}: {exc}", "give a text file with one REF a line"
        ) from exc
    return [ln.split("#", 1)[0].strip() for ln in text.splitlines() if ln.split("#", 1)[0].strip()]


def gather(refs: Sequence[str], models_file: Path | None, searched: Sequence[Candidate]) -> list[Candidate]:
    """All candidates in order (arguments, file, search), each REF once."""
    out: dict[str, Candidate] = {}
    for ref in refs:
        out.setdefault(ref.strip(), Candidate(ref.strip(), "argument"))
    if models_file is not None:
        for ref in read_models_file(models_file):
            out.setdefault(ref, Candidate(ref, "file"))
    for c in searched:
        out.setdefault(c.ref, c)
    return list(out.values())


def candidate_dir(root: Path, ref: str) -> Path:
    """`ROOT/candidates/<slug of the REF>`: the same folder on every re-run."""
    from audit.pipeline import slug

    return root / "candidates" / slug(ref.strip())


def build_jobs(
    candidates: Sequence[Candidate],
    root: Path,
    options: Any,
    probe_options: Any,
    formats: Sequence[str] = ("json", "html", "md"),
) -> list[CandidateJob]:
    """One job per candidate, each with its own run folder under ROOT/candidates/."""
    dumped_opts = options.model_dump(mode="json")
    dumped_probes = probe_options.model_dump(mode="json")
    return [
        CandidateJob(
            ref=c.ref,
            out_dir=str(candidate_dir(root, c.ref).absolute()),
            options=dumped_opts,
            probe_options=dumped_probes,
            formats=tuple(formats),
            known_revision=c.revision,
        )
        for c in candidates
    ]


# ------------------------------------------------------------------ evaluation


def filter_reasons(facts: dict[str, Any], filters: Filters) -> list[str]:
    """Why the facts fail the filters (empty: they pass)."""
    from audit.render.html import fmt_params

    out = []
    lic = facts.get("license_class") or "missing"
    if filters.license_class and lic not in filters.license_class:
        out.append(f"licence class {lic.replace('_', ' ')} (wanted {' or '.join(filters.license_class)})")
    params = facts.get("parameters")
    if filters.max_params is not None:
        if params is None:
            out.append("parameter count unknown (--max-params needs it)")
        elif params > filters.max_params:
            out.append(f"{fmt_params(params)} parameters (at most {fmt_params(filters.max_params)} wanted)")
    ctx = facts.get("context_length")
    if filters.min_context is not None:
        if ctx is None:
            out.append("context length unknown (--min-context needs it)")
        elif ctx < filters.min_context:
            out.append(f"context length {ctx} (at least {filters.min_context} wanted)")
    if filters.size_class and facts.get("size_class") != filters.size_class:
        out.append(f"size class {facts.get('size_class') or 'unknown'} (wanted {filters.size_class})")
    return out


def risk_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """Lower is safer: findings by severity from critical down, then documentation score, then name."""
    counts = row["findings"]
    return (
        counts["critical"],
        counts["high"],
        counts["medium"],
        counts["low"],
        -(row.get("documentation_score") or 0.0),
        str(row["candidate"]),
    )


def _clean(v: Any) -> Any:
    """pandas' missing values -> None, numpy scalars -> Python ones (for JSON and templates)."""
    import pandas as pd

    if v is None or (not isinstance(v, str | bytes) and pd.isna(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def _report_dicts(outcomes: Sequence[CandidateOutcome]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(candidate, report data) for each audited or reused candidate, read one at a time."""
    for o in outcomes:
        if o.status == "failed":
            continue
        path = Path(o.out_dir) / "report.json"
        try:
            yield o.ref, json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:  # a folder someone damaged after the audit
            log.warning("cannot read %s: %s", path, exc)


def evaluate(
    outcomes: Sequence[CandidateOutcome], filters: Filters, root: Path, meta: dict[str, Any]
) -> ShortlistResult:
    """Rank, disqualify and list failures, from the candidates' report.json files via audit.frames."""
    tables = frames_from_dicts(_report_dicts(outcomes))
    facts = {r["audit"]: {k: _clean(v) for k, v in r.items()} for r in tables["facts"].to_dict("records")}
    findings = tables["findings"]
    critical = findings[findings["severity"] == "critical"]
    crit_by: dict[str, list[str]] = {}
    for r in critical.to_dict("records"):
        crit_by.setdefault(str(r["audit"]), []).append(f"critical finding {r['id']}: {r['title']}")
    metrics = tables["metrics"]
    head = metrics[metrics["metric"].isin(HEADLINE_METRICS) & metrics["group"].fillna("all").isin(["all"])]
    head_by: dict[str, list[dict[str, Any]]] = {}
    for r in head.to_dict("records"):
        head_by.setdefault(str(r["audit"]), []).append({k: _clean(v) for k, v in r.items() if k != "audit"})
    result = ShortlistResult(meta=meta)
    for o in outcomes:
        base = {
            "candidate": o.ref,
            "status": o.status,
            "folder": str(Path(o.out_dir).relative_to(root.absolute()))
            if Path(o.out_dir).is_relative_to(root.absolute())
            else o.out_dir,
            "revision": o.revision,
            "attempts": o.attempts,
        }
        if o.status == "failed" or o.ref not in facts:
            result.failed.append({**base, "status": "failed", "reason": o.reason or "report.json unreadable"})
            continue
        f = facts[o.ref]
        row = {
            **base,
            "audit_status": o.status,
            "subject": f["subject"],
            "revision": f["revision"] or o.revision,
            "license": f["license"],
            "license_class": f["license_class"],
            "size_class": f["size_class"],
            "parameters": f["parameters"],
            "context_length": f["context_length"],
            "attention": f["attention"],
            "datasets_declared": f["datasets_declared"],
            "datasets_documented": f["datasets_documented"],
            "documentation_score": f["documentation_score"],
            "rating": f["rating"],
            "findings": {k.removeprefix("findings_"): f[k] for k in f if k.startswith("findings_")},
            "metrics": head_by.get(o.ref, []),
        }
        reasons = filter_reasons(f, filters) + crit_by.get(o.ref, [])
        if reasons:
            result.disqualified.append({**row, "status": "disqualified", "reasons": reasons})
        else:
            result.ranked.append({**row, "status": "ranked"})
    result.ranked.sort(key=risk_key)
    for i, row in enumerate(result.ranked, 1):
        row["rank"] = i
    return result


# ------------------------------------------------------------------ the whole command


@dataclass
class ShortlistRun:
    """Everything `run_shortlist` needs (the CLI fills it from the flags)."""

    candidates: list[Candidate]
    out: Path
    options: Any
    probe_options: Any
    filters: Filters = field(default_factory=Filters)
    formats: list[str] = field(default_factory=lambda: ["json", "html", "pdf", "md"])
    candidate_formats: tuple[str, ...] = ("json", "html", "md")
    executor: str = "local"
    workers: int = 4
    ray_address: str | None = None
    cpus_per_candidate: float = 0.25
    gpus_per_candidate: float = 0.0
    query: dict[str, Any] = field(default_factory=dict)
    progress: Any = None
    line_per_candidate: bool = True


def run_shortlist(spec: ShortlistRun) -> tuple[ShortlistResult, list[Path]]:
    """Audit every candidate (reusing unchanged ones), evaluate, write the shortlist report."""
    import time

    from audit.executors import ray_cpus, run_local, run_ray, start_ray, warm_ray_workers
    from audit.progress import SilentProgress
    from audit.runlock import RunFolderLock

    if not spec.candidates:
        raise UsageError(
            "no candidates: the search found nothing and no REF was given",
            "widen the search (--task, --library, --language, --search) or give REFs or --models FILE",
        )
    jobs = build_jobs(spec.candidates, spec.out, spec.options, spec.probe_options, spec.candidate_formats)
    progress = spec.progress or SilentProgress()
    started = dt.datetime.now(dt.timezone.utc)
    executor_meta: dict[str, Any] = {"executor": spec.executor}
    with RunFolderLock(spec.out):
        with progress.task(f"shortlist of {len(jobs)} candidates", len(jobs)) as bar:
            finished = 0

            def on_done(o: CandidateOutcome) -> None:
                nonlocal finished
                finished += 1
                bar.advance()
                if spec.line_per_candidate:
                    what = o.reason[:160] if o.status == "failed" else (o.revision or "local")[:12]
                    log.info(
                        "[%d/%d] %s %s: %s (%.1fs)", finished, len(jobs), o.status, o.ref, what, o.seconds
                    )

            t0 = time.monotonic()
            if spec.executor == "ray":
                import math
                import os

                per = max(spec.cpus_per_candidate, 0.01)
                info = start_ray(spec.ray_address, math.ceil((os.cpu_count() or 1) / per))
                slots = int(ray_cpus() / per)
                warm_ray_workers(min(slots, len(jobs)), spec.cpus_per_candidate)
                info.startup_s = round(time.monotonic() - t0, 3)
                executor_meta.update(
                    {
                        "ray_address": info.address,
                        "ray_startup_s": info.startup_s,
                        "cpus_per_candidate": spec.cpus_per_candidate,
                        "gpus_per_candidate": spec.gpus_per_candidate,
                    }
                )
                t0 = time.monotonic()
                outcomes = run_ray(
                    jobs,
                    cpus_per_candidate=spec.cpus_per_candidate,
                    gpus_per_candidate=spec.gpus_per_candidate,
                    on_done=on_done,
                )
            elif spec.executor == "local":
                executor_meta["workers"] = spec.workers
                outcomes = run_local(jobs, spec.workers, on_done=on_done)
            else:
                raise UsageError(
                    f"unknown executor '{spec.executor}'", "use --executor local or --executor ray"
                )
            executor_meta["audit_wall_s"] = round(time.monotonic() - t0, 3)
        meta = {
            "schema": "model-audit-shortlist/1",
            "created_at": started.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "query": spec.query,
            "profile": getattr(spec.options, "profile", None),
            "filters": spec.filters.describe(),
            "suites": list(spec.probe_options.suites),
            "candidates": len(jobs),
            "audited": sum(o.status == "audited" for o in outcomes),
            "reused": sum(o.status == "reused" for o in outcomes),
            **executor_meta,
        }
        result = evaluate(outcomes, spec.filters, spec.out, meta)
        paths = render_shortlist(result, spec.out, spec.formats)
    return result, paths


# ------------------------------------------------------------------ rendering


def render_shortlist(result: ShortlistResult, out: Path, formats: Sequence[str]) -> list[Path]:
    """shortlist.json (always), .html, .pdf, .md: all rendered in memory, then written atomically."""
    from audit.fsutil import atomic_write

    rendered: list[tuple[Path, bytes]] = [
        (
            out / SHORTLIST_FILES["json"],
            (json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n").encode(),
        )
    ]
    html = None
    if "html" in formats or "pdf" in formats:
        html = _html(result, for_print=False)
    if "html" in formats and html is not None:
        rendered.append((out / SHORTLIST_FILES["html"], html.encode()))
    if "pdf" in formats:
        rendered.append((out / SHORTLIST_FILES["pdf"], _pdf(_html(result, for_print=True))))
    if "md" in formats:
        rendered.append((out / SHORTLIST_FILES["md"], markdown(result).encode()))
    unknown = [f for f in formats if f not in SHORTLIST_FILES]
    if unknown:
        raise UsageError(f"the shortlist has no '{unknown[0]}' format", "use --format html,pdf,json,md")
    out.mkdir(parents=True, exist_ok=True)
    for path, data in rendered:
        atomic_write(path, data)
    return [p for p, _ in rendered]


def _html(result: ShortlistResult, *, for_print: bool) -> str:
    from audit.render.html import environment
    from audit.resources import templates_dir

    css = (templates_dir() / "report.css").read_text(encoding="utf-8")
    return environment().get_template("shortlist.html.j2").render(s=result, css=css, for_print=for_print)


def _pdf(html: str) -> bytes:
    from audit.errors import RenderError

    try:
        from weasyprint import HTML

        from audit.render.pdf import _fetcher
    except (ImportError, OSError) as exc:
        raise RenderError(
            f"PDF rendering is unavailable: {exc}",
            "install WeasyPrint's system libraries, or use --format html,json,md",
        ) from exc
    pdf = HTML(string=html, base_url=None, url_fetcher=_fetcher()).write_pdf()
    if not isinstance(pdf, bytes):
        raise RenderError("WeasyPrint returned no PDF", "")
    return pdf


def _metric_text(m: dict[str, Any]) -> str:
    v = m.get("value")
    text = f"{m['metric'].replace('_', ' ')} {v:.3f}" if isinstance(v, float) else f"{m['metric']} –"
    if m.get("ci_low") is not None and m.get("ci_high") is not None:
        text += f" [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"
    return f"{m['suite']}: {text}"


def markdown(result: ShortlistResult) -> str:
    """shortlist.md: the ranking, the disqualified candidates and the failures, every value escaped."""
    from audit.render.html import fmt_params
    from audit.render.markdown import md_escape

    m = result.meta
    q = ", ".join(f"{k} {v}" for k, v in m.get("query", {}).items() if v not in (None, "", [], ()))
    lines = [
        "## Model shortlist",
        "",
        f"{m['candidates']} candidates ({md_escape(q or 'given REFs')}); profile "
        f"`{md_escape(m.get('profile') or 'default')}`; filters: {md_escape('; '.join(m['filters']) or 'none')}. "
        f"{len(result.ranked)} ranked, {len(result.disqualified)} disqualified, {len(result.failed)} failed.",
        "",
        "### Ranked by risk",
        "",
    ]
    if result.ranked:
        lines += [
            "| # | Candidate | Licence | Size | Context | Datasets (documented) | Docs | crit/high/med/low/info | Metrics |",
            "|---:|---|---|---|---:|---|---:|---|---|",
        ]
        for r in result.ranked:
            c = r["findings"]
            lines.append(
                f"| {r['rank']} | {md_escape(r['candidate'])} | {md_escape(r['license'] or 'none')} "
                f"({md_escape((r['license_class'] or 'missing').replace('_', ' '))}) | "
                f"{md_escape(r['size_class'] or 'unknown')} · {fmt_params(r['parameters'])} | "
                f"{r['context_length'] or '–'} | {r['datasets_declared']} ({r['datasets_documented']}) | "
                f"{r['documentation_score']} | {c['critical']}/{c['high']}/{c['medium']}/{c['low']}/{c['info']} | "
                f"{md_escape('; '.join(_metric_text(x) for x in r['metrics']) or '–')} |"
            )
    else:
        lines.append("No candidate passes the filters.")
    lines += ["", "### Disqualified", ""]
    for r in result.disqualified:
        lines.append(f"- {md_escape(r['candidate'])}: {md_escape('; '.join(r['reasons']))}")
    if not result.disqualified:
        lines.append("None.")
    lines += ["", "### Failed", ""]
    for r in result.failed:
        lines.append(f"- {md_escape(r['candidate'])}: {md_escape(r['reason'])}")
    if not result.failed:
        lines.append("None.")
    lines += [
        "",
        f"<sub>model-risk-audit shortlist · {md_escape(m['created_at'])} · details: shortlist.html, candidates/*/report.html</sub>",
        "",
    ]
    return "\n".join(lines)


def describe_query(**kw: Any) -> dict[str, Any]:
    """The search as the report records it (only what was given)."""
    return {k: v for k, v in kw.items() if v not in (None, "", [], ())}
