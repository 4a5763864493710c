"""CLI commands for governance: gate, compare, diff, verify (kept apart from cli.py to stay small)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from audit.errors import UsageError

EXIT_OK, EXIT_GATE = 0, 1


def add_parsers(sub: Any) -> None:
    """Register gate, compare, diff and verify."""
    g = sub.add_parser(
        "gate",
        help="apply a policy to a finished audit; exit 1 on fail or inconclusive",
        description="Apply a policy to a finished audit and print the decision. gate only reads the "
        "audit folder: it never rewrites report.*, manifest.json or the content hash. It writes JUnit "
        "(--junit), a JSON decision (--out) and a gated copy of the report (--render DIR) only where "
        "asked. Exit 0 on pass or warn, 1 on fail or inconclusive (an interval too wide to decide).",
    )
    g.add_argument("report", type=Path, metavar="REPORT", help="a run directory (or its report.json)")
    g.add_argument("--policy", required=True, metavar="FILE", help="policy YAML, or `default`")
    g.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML (one test case per rule)")
    _profile_flag(g, "re-weigh the findings first (default: the profile the audit recorded)")
    g.add_argument("--out", type=Path, metavar="FILE", help="write the decision as JSON")
    g.add_argument(
        "--render",
        type=Path,
        metavar="DIR",
        help="write a copy of the report with the gate section (html, pdf, md, json) to DIR",
    )

    cp = sub.add_parser("compare", help="side-by-side report of several models (run directories or REFs)")
    cp.add_argument(
        "items", nargs="+", metavar="A", help="run directories or model references (at least two)"
    )
    cp.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    cp.add_argument("--format", default="html,pdf,md", metavar="LIST", help="comma-separated: html,pdf,md")
    _profile_flag(cp, "weigh every model's findings under this profile (default: as each audit recorded)")

    df = sub.add_parser("diff", help="what changed between two finished audits")
    df.add_argument("old", type=Path, metavar="OLD")
    df.add_argument("new", type=Path, metavar="NEW")
    df.add_argument("--json", action="store_true", help="print the drift as JSON")
    _profile_flag(df, "weigh both audits under this profile (default: the new audit's)")

    vf = sub.add_parser("verify", help="check a run directory against its manifest; exit 1 on any change")
    vf.add_argument("dir", type=Path, metavar="DIR")


def _profile_flag(p: Any, help_text: str) -> None:
    p.add_argument(
        "--profile",
        metavar="NAME|FILE",
        help=f"research, internal, customer-facing or a profile YAML; {help_text}",
    )


def _weighed(report: Any, profile: str | None) -> Any:
    """The report re-weighed under --profile (unchanged without it: the profile the audit recorded)."""
    if not profile:
        return report
    from audit.profiles import apply_profile

    return apply_profile(report, profile)


def add_run_flags(r: Any) -> None:
    """--policy, --junit, --baseline and --if-changed on `model-audit run`."""
    gv = r.add_argument_group("governance")
    gv.add_argument(
        "--policy", metavar="FILE", help="gate the audit against a policy (FILE or `default`); exit 1 on fail"
    )
    gv.add_argument("--junit", type=Path, metavar="FILE", help="write the policy outcome as JUnit XML")
    gv.add_argument(
        "--baseline", type=Path, metavar="DIR", help="a previous run directory: report the drift since it"
    )
    gv.add_argument(
        "--if-changed",
        type=Path,
        metavar="DIR",
        help="exit at once (0) when revision, suites, policy and profile equal this baseline run's",
    )


def gate_exit(report: Any, junit: Path | None) -> int:
    """Print the decision (and write JUnit when given a path); exit 1 when the gate failed or is inconclusive."""
    if report.gate is None:
        return EXIT_OK
    from audit.fsutil import atomic_write
    from audit.gate import junit_xml

    if junit is not None:
        atomic_write(junit, junit_xml(report.gate, report.subject.display))
    print(decision_text(report.gate))
    return EXIT_GATE if report.gate.verdict in ("fail", "inconclusive") else EXIT_OK


def decision_text(gate: Any) -> str:
    """'policy default: FAIL (1 failing rule: finding:x)', then one line per rule that did not pass."""
    from audit.format import plural

    failed = [o for o in gate.rules if o.verdict == "fail"]
    unsure = [o for o in gate.rules if o.verdict == "inconclusive"]
    warned = [o for o in gate.rules if o.verdict == "warn"]
    parts = [
        f"{plural(len(failed), 'failing rule')}" if failed else "",
        f"{plural(len(unsure), 'inconclusive rule')}" if unsure else "",
        f"{plural(len(warned), 'warning')}" if warned else "",
    ]
    profile = getattr(gate, "profile", "") or "none recorded"
    head = f"policy {gate.policy} (profile {profile}): {gate.verdict.upper()}"
    summary = "; ".join(x for x in parts if x)
    lines = [head + (f" ({summary})" if summary else "")]
    for o in [*failed, *unsure, *warned]:
        lines.append(f"  {o.verdict.upper():<12} {o.rule}: {o.message}")
    return "\n".join(lines)


def cmd_gate(args: argparse.Namespace) -> int:
    """Apply a policy to a finished audit. Reads the folder, never writes into it."""
    from dataclasses import asdict, replace

    from audit.fsutil import atomic_write
    from audit.pipeline import apply_policy, write_report
    from audit.serialize import load_report_dir

    folder = args.report.parent if args.report.name == "report.json" else args.report
    if not folder.is_dir():
        raise UsageError(
            f"{folder} does not exist or is not a folder", "give the run folder of a finished audit"
        )
    src = folder.resolve()
    for target, flag in ((args.junit, "--junit"), (args.out, "--out")):
        if target is not None and target.resolve().parent == src:
            raise UsageError(
                f"{flag} {target} is inside the audit folder",
                "gate never writes into the audit folder: write it elsewhere",
            )
    if args.render is not None and args.render.resolve() == src:
        raise UsageError(
            f"--render {args.render} is the audit folder itself",
            "gate never rewrites the audit: render the gated copy into another folder",
        )
    original = load_report_dir(folder)
    report = apply_policy(_weighed(original, args.profile), args.policy)
    assert report.gate is not None
    if args.out is not None:
        decision = {
            "subject": report.subject.display,
            "report": str(folder),
            "content_hash": original.integrity.content_hash if original.integrity else None,
            "exit_code": EXIT_GATE if report.gate.verdict in ("fail", "inconclusive") else EXIT_OK,
            **asdict(report.gate),
        }
        atomic_write(args.out, (json.dumps(decision, indent=2, default=str) + "\n").encode())
    if args.render is not None:
        copy = replace(report, integrity=None)
        for path in write_report(copy, args.render, ["html", "pdf", "md"]):
            print(f"wrote {path}")
    return gate_exit(report, args.junit)


def cmd_compare(args: argparse.Namespace) -> int:
    from audit.compare import compare, render_compare
    from audit.pipeline import audit_model
    from audit.render import parse_formats
    from audit.serialize import load_report_dir

    if len(args.items) < 2:
        raise UsageError("compare needs at least two models", "model-audit compare A B [C ...] --out DIR")
    formats = parse_formats(args.format)
    from audit.config import AuditOptions

    options = AuditOptions(profile=args.profile or "internal")
    reports = []
    for item in args.items:
        p = Path(item)
        r = load_report_dir(p) if (p / "report.json").is_file() else audit_model(item, options)
        reports.append(_weighed(r, args.profile))
    for path in render_compare(compare(reports), args.out, formats):
        print(f"wrote {path}")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from audit.drift import diff_reports
    from audit.profiles import apply_profile, profile_ref
    from audit.serialize import load_report_dir

    old, new = load_report_dir(args.old), load_report_dir(args.new)
    profile = args.profile or profile_ref(new)  # both audits weighed under one profile: like for like
    old, new = apply_profile(old, profile), apply_profile(new, profile)
    d = diff_reports(
        old,
        new,
        baseline=str(args.old),
        old_dir=args.old,
        new_dir=args.new,
    )
    if args.json:
        print(json.dumps(asdict(d), indent=2, default=str))
        return EXIT_OK
    print(f"profile: {profile}")
    print(
        f"revision: {(d.old_revision or 'local')[:12]} -> {(d.new_revision or 'local')[:12]}"
        + (" (changed)" if d.revision_changed else " (unchanged)")
    )
    print(f"licence changed: {'yes' if d.license_changed else 'no'}")
    for c in d.metadata_changes:
        print(f"  metadata {c}")
    print(
        f"sections added: {', '.join(d.sections_added) or 'none'}; removed: {', '.join(d.sections_removed) or 'none'}"
    )
    print(
        f"findings new: {', '.join(d.findings_new) or 'none'}; resolved: {', '.join(d.findings_resolved) or 'none'}"
    )
    for m in d.metrics:
        flag = "WORSE" if m.significant and m.worse else ("better" if m.significant else "n.s.")
        p = f"{m.p_value:.4g}" if m.p_value is not None else "n/a"
        print(f"  {m.suite}/{m.metric} {m.group}: {m.old:.4f} -> {m.new:.4f} p={p} {flag}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from audit.format import plural
    from audit.manifest import verify

    problems = verify(args.dir)
    if problems:
        for p in problems:
            print(p)
        sys.stderr.write(
            f"error: {args.dir} does not match its manifest ({plural(len(problems), 'problem')})\n"
        )
        return EXIT_GATE
    print(f"{args.dir}: every file matches manifest.json and the report's content hash")
    return EXIT_OK
