"""CLI commands for work at scale: shortlist, table, history (kept apart from cli.py to stay small)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

EXIT_OK = 0
log = logging.getLogger("audit")


def add_parsers(sub: Any) -> None:
    """Register shortlist, table and history."""
    from audit.cli import _options_args

    s = sub.add_parser(
        "shortlist", help="search and audit candidate models for a task; rank them by risk under a profile"
    )
    s.add_argument("refs", nargs="*", metavar="REF", help="candidates given directly (any REF kind)")
    q = s.add_argument_group("candidates")
    q.add_argument("--task", metavar="TAG", help="Hub search: pipeline tag (e.g. text-classification)")
    q.add_argument("--library", metavar="NAME", help="Hub search: library (e.g. transformers)")
    q.add_argument("--language", metavar="CODE", help="Hub search: language (e.g. en)")
    q.add_argument("--search", metavar="TEXT", help="Hub search: text in the repo id")
    q.add_argument("--sort", choices=["downloads", "likes", "last_modified"], default="downloads")
    q.add_argument("--limit", type=int, default=20, metavar="N", help="at most N search results (20)")
    q.add_argument("--models", type=Path, metavar="FILE", help="a file of REFs, one a line (# comments)")
    q.add_argument(
        "--catalog",
        metavar="azureml://registries/NAME",
        help="search an Azure AI Foundry catalog registry instead of the Hub (--task, --search, --limit)",
    )
    f = s.add_argument_group("filters (a candidate that fails one is disqualified, with the reason)")
    f.add_argument(
        "--license-class", metavar="LIST", help="allowed licence classes, e.g. permissive,copyleft"
    )
    f.add_argument("--max-params", metavar="N", help="at most N parameters (7e9, 7B, 350M)")
    f.add_argument("--min-context", type=int, metavar="N", help="context length at least N tokens")
    f.add_argument("--size-class", choices=["small", "large"], help="small or large language model")
    f.add_argument(
        "--profile",
        metavar="NAME|FILE",
        help="use-context profile (research, internal, customer-facing or a FILE); a critical finding disqualifies",
    )
    p = s.add_argument_group("probes (as in `run`; without --suite, card audits only)")
    p.add_argument("--suite", action="append", default=[], metavar="NAME", help="probe suite (repeatable)")
    p.add_argument(
        "--backend", metavar="NAME", help="a registered backend (hf by default): see `model-audit suites`"
    )
    p.add_argument("--backend-option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--scorer", action="append", default=None, metavar="NAME[:k=v,...]")
    p.add_argument("--samples", type=int, metavar="K", help="samples per prompt")
    p.add_argument("--prompt-limit", type=int, metavar="N", help="seeded subset of N prompts")
    p.add_argument("--seed", type=int, metavar="S")
    p.add_argument("--data", action="append", default=[], metavar="KEY=PATH")
    x = s.add_argument_group("execution")
    x.add_argument("--workers", type=int, default=8, metavar="N", help="concurrent candidate audits (8)")
    x.add_argument("--executor", choices=["local", "ray"], default="local", help="local threads or Ray tasks")
    x.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster (ray://HOST:10001, HOST:6379 or auto); default: local",
    )
    x.add_argument(
        "--cpus-per-candidate", type=float, default=0.25, metavar="C", help="Ray CPUs per card audit (0.25)"
    )
    x.add_argument(
        "--gpus-per-candidate",
        type=float,
        default=0.0,
        metavar="G",
        help="Ray GPUs per candidate with probes (0)",
    )
    s.add_argument(
        "--out", type=Path, metavar="DIR", help="shortlist folder (default reports/shortlist-<task>/)"
    )
    s.add_argument(
        "--format", default="html,pdf,json,md", metavar="LIST", help="comma-separated: html,pdf,json,md"
    )
    _options_args(s)

    t = sub.add_parser("table", help="export audits as tidy tables (facts, findings, metrics, datasets)")
    t.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="run folders (or report.json files)")
    t.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE",
        help="FILE.csv (one file per table: FILE.facts.csv, ...), FILE.parquet (likewise) or FILE.xlsx (one sheet each)",
    )

    h = sub.add_parser("history", help="how one model changed over its re-audits: tables and trend charts")
    h.add_argument(
        "dirs", nargs="+", type=Path, metavar="DIR", help="run folders of one model's re-audits, any order"
    )
    h.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    h.add_argument(
        "--format", default="html,pdf,md", metavar="LIST", help="comma-separated: html,pdf,json,md"
    )


def _audit_options(args: argparse.Namespace) -> Any:
    """AuditOptions from the collection flags and --profile, exactly as `run` builds them."""
    from audit.cli import _options

    return _options(args)


def _probe_options(args: argparse.Namespace) -> Any:
    from audit.cli import build_options
    from audit.config import ProbeOptions
    from audit.sample import parse_backend_options

    return build_options(
        ProbeOptions,
        {
            "suites": args.suite,
            "auto_suites": False,
            "backend": args.backend,
            "backend_options": parse_backend_options(args.backend_option),
            "scorers": args.scorer,
            "samples": args.samples,
            "limit": args.prompt_limit,
            "seed": args.seed,
            "data": parse_backend_options(args.data),
        },
    )


def cmd_shortlist(args: argparse.Namespace) -> int:
    from audit import shortlist as sl
    from audit.pipeline import slug
    from audit.render import parse_formats

    formats = parse_formats(args.format)
    if args.executor == "ray":
        from audit.executors import import_ray

        import_ray()  # says how to install it before anything is searched or audited
    filters = sl.Filters(
        license_class=sl.parse_license_classes(args.license_class),
        max_params=sl.parse_count(args.max_params) if args.max_params else None,
        min_context=args.min_context,
        size_class=args.size_class,
    )
    options, popts = _audit_options(args), _probe_options(args)
    query = sl.describe_query(
        task=args.task, library=args.library, language=args.language, search=args.search
    )
    searched: list[sl.Candidate] = []
    if args.catalog:  # Azure ML registry models at their latest versions (audit/collect/azure.py)
        from audit.collect.azure import list_catalog_models, parse_catalog_ref

        refs = list_catalog_models(
            parse_catalog_ref(args.catalog),
            task=args.task,
            search=args.search,
            limit=args.limit,
            options=options,
        )
        searched = [sl.Candidate(ref=r, source="catalog", revision=r.rsplit("/", 1)[1]) for r in refs]
        query.update({"catalog": args.catalog, "limit": args.limit})
    elif query or not (args.refs or args.models):
        searched = sl.search_candidates(
            task=args.task,
            library=args.library,
            language=args.language,
            search=args.search,
            sort=args.sort,
            limit=args.limit,
        )
        query.update({"sort": args.sort, "limit": args.limit})
    candidates = sl.gather(args.refs, args.models, searched)
    out = args.out or Path("reports") / f"shortlist-{slug(args.task or args.search or 'models')}"
    from audit.progress import SilentProgress, default_progress

    ci = not sys.stderr.isatty() or bool(os.environ.get("CI"))
    spec = sl.ShortlistRun(
        candidates=candidates,
        out=out,
        options=options,
        probe_options=popts,
        filters=filters,
        formats=formats,
        executor=args.executor,
        workers=args.workers,
        ray_address=args.ray_address,
        cpus_per_candidate=args.cpus_per_candidate,
        gpus_per_candidate=args.gpus_per_candidate,
        query=query,
        progress=SilentProgress() if args.quiet or ci else default_progress(),
        line_per_candidate=ci and not args.quiet,
    )
    result, paths = sl.run_shortlist(spec)
    m = result.meta
    print(
        f"shortlist of {m['candidates']} candidates: {len(result.ranked)} ranked, "
        f"{len(result.disqualified)} disqualified, {len(result.failed)} failed "
        f"({m['audited']} audited, {m['reused']} reused)"
    )
    for r in result.ranked[:5]:
        c = r["findings"]
        print(f"  {r['rank']}. {r['candidate']}: {c['high']} high, {c['medium']} medium, {c['low']} low")
    for p in paths:
        print(f"  wrote {p}")
    return EXIT_OK


def cmd_table(args: argparse.Namespace) -> int:
    from audit.frames import frames_from_dicts, load_report_dicts, table_paths, write_tables

    table_paths(args.out)  # an unknown suffix fails before anything is read
    tables = frames_from_dicts(load_report_dicts(args.dirs))
    for path in write_tables(tables, args.out):
        print(f"wrote {path}")
    print(", ".join(f"{name}: {len(df)} rows" for name, df in tables.items()))
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from audit.history import build_history, render_history
    from audit.render import parse_formats

    formats = parse_formats(args.format)
    hist = build_history(args.dirs)
    for path in render_history(hist, args.out, formats):
        print(f"wrote {path}")
    return EXIT_OK
