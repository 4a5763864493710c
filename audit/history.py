"""Re-audit history: how one model changed over its scheduled re-audits.

`build_history(dirs)` reads the run folders of one model's re-audits (any order; they are put in
the order they finished), builds their tables with `audit.frames` (facts, findings, metrics),
and runs the drift rules (`audit.drift.diff_reports`) between each audit and the one before it.
`render_history` writes history.html / history.pdf / history.md / history.json: revision by
revision the licence, the findings by severity and every metric with its 95% interval, as tables
and as SVG trend charts on which each change the drift rules flag is marked (a licence change or
new findings on the findings chart; a significant worsening on the metric's own chart).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from audit.errors import UsageError
from audit.model import SEVERITIES, AuditReport, DriftResult

SEVERITY_ORDER = tuple(s.value for s in reversed(SEVERITIES))  # critical first
SEVERITY_COLOURS = {
    "critical": "#7a0916",
    "high": "#b42318",
    "medium": "#c4720a",
    "low": "#3d6db5",
    "info": "#6b7280",
}
MAX_METRIC_CHARTS = 40
MAX_SERIES = 8
HISTORY_FILES = {"json": "history.json", "html": "history.html", "pdf": "history.pdf", "md": "history.md"}


@dataclass
class Revision:
    """One re-audit: when, which commit, licence, findings by severity, and what drift flagged since the last."""

    index: int
    label: str  # "2026-01-05 · 1a2b3c4"
    folder: str
    finished_at: str
    revision: str | None
    license: str | None
    license_class: str | None
    rating: str | None
    counts: dict[str, int]
    flags: list[str] = field(default_factory=list)


@dataclass
class MetricSeries:
    """One metric (suite, name, axis, group, label) across the audits; None where an audit lacks it."""

    suite: str
    metric: str
    where: str
    values: list[float | None]
    ci_low: list[float | None]
    ci_high: list[float | None]
    n: list[int | None]
    flagged: list[bool]  # drift found a significant worsening at this audit


@dataclass
class History:
    """Everything the history renderers show."""

    subject: str
    revisions: list[Revision]
    series: list[MetricSeries]
    drifts: list[DriftResult | None]


def _load(dirs: Sequence[Path]) -> list[tuple[Path, AuditReport]]:
    from audit.serialize import load_report_dir

    items = [(d.parent if d.name == "report.json" else d, None) for d in dirs]
    loaded = [(d, load_report_dir(d)) for d, _ in items]
    subjects = {r.card.subject for _, r in loaded}
    if len(subjects) > 1:
        raise UsageError(
            f"these run folders audit {len(subjects)} different models ({', '.join(sorted(subjects)[:4])})",
            "give the re-audits of one model; use `model-audit compare` to put models side by side",
        )
    loaded.sort(key=lambda item: (item[1].run.finished_at, item[1].run.started_at, str(item[0])))
    return loaded


def build_history(dirs: Sequence[Path]) -> History:
    """Read the re-audits, order them by time, tabulate them (audit.frames) and diff each with the one before."""
    from audit.drift import diff_reports
    from audit.frames import frames

    if not dirs:
        raise UsageError("history needs run folders", "model-audit history DIR [DIR ...] --out DIR")
    loaded = _load(dirs)
    labels = [f"#{i + 1}" for i in range(len(loaded))]
    tables = frames([d for d, _ in loaded], labels=labels)
    facts = {r["audit"]: r for r in tables["facts"].to_dict("records")}
    drifts: list[DriftResult | None] = [None]
    for (od, old), (nd, new) in zip(loaded, loaded[1:], strict=False):
        drifts.append(diff_reports(old, new, baseline=str(od), old_dir=od, new_dir=nd))
    revisions = []
    for i, ((folder, report), label) in enumerate(zip(loaded, labels, strict=True)):
        f = facts[label]
        d = drifts[i]
        flags = []
        if d is not None:
            if d.license_changed:
                flags.append(
                    f"licence changed: {', '.join(loaded[i - 1][1].card.licenses) or 'none'} -> "
                    f"{', '.join(report.card.licenses) or 'none'}"
                )
            if d.findings_new:
                flags.append(f"new findings: {', '.join(d.findings_new)}")
            worse = [m for m in d.metrics if m.significant and m.worse]
            for m in worse:
                flags.append(
                    f"{m.suite}/{m.metric} {m.group} worse: {m.old:.3f} -> {m.new:.3f} (p {m.p_value:.3g})"
                )
        rev = report.run.resolved_revision
        revisions.append(
            Revision(
                index=i,
                label=f"{report.run.finished_at[:10]} · {(rev or 'local')[:7]}",
                folder=str(folder),
                finished_at=report.run.finished_at,
                revision=rev,
                license=_str(f["license"]),
                license_class=_str(f["license_class"]),
                rating=_str(f["rating"]),
                counts={s: int(f[f"findings_{s}"]) for s in SEVERITY_ORDER},
                flags=flags,
            )
        )
    series = _series(tables["metrics"], labels, drifts)
    return History(subject=loaded[-1][1].card.subject, revisions=revisions, series=series, drifts=drifts)


def _str(v: Any) -> str | None:
    import pandas as pd

    return None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v)


def _num(v: Any) -> float | None:
    import pandas as pd

    return None if v is None or v is pd.NA or pd.isna(v) else float(v)


def _series(metrics: Any, labels: list[str], drifts: list[DriftResult | None]) -> list[MetricSeries]:
    import pandas as pd

    if metrics.empty:
        return []
    m = metrics.copy()
    for col in ("axis", "group", "label"):
        m[col] = m[col].fillna("")
    keys = list(dict.fromkeys(zip(m["suite"], m["metric"], m["axis"], m["group"], m["label"], strict=True)))
    index = {label: i for i, label in enumerate(labels)}
    out = []
    grouped = {k: g for k, g in m.groupby(["suite", "metric", "axis", "group", "label"], sort=False)}
    for key in keys:
        suite, metric, axis, group, label = (str(x) for x in key)
        where = " ".join(x for x in (axis, group, label) if x)
        vals: list[float | None] = [None] * len(labels)
        lo: list[float | None] = [None] * len(labels)
        hi: list[float | None] = [None] * len(labels)
        n: list[int | None] = [None] * len(labels)
        for r in grouped[key].to_dict("records"):
            i = index[r["audit"]]
            vals[i], lo[i], hi[i] = _num(r["value"]), _num(r["ci_low"]), _num(r["ci_high"])
            n[i] = None if pd.isna(r["n"]) else int(r["n"])
        flagged = [
            bool(
                d is not None
                and any(
                    c.significant and c.worse and c.suite == suite and c.metric == metric and c.group == where
                    for c in d.metrics
                )
            )
            for d in drifts
        ]
        out.append(MetricSeries(suite, metric, where, vals, lo, hi, n, flagged))
    return out


# ------------------------------------------------------------------ charts


def _svg(fig: Any) -> Markup:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = re.sub(r"<\?xml[^>]*\?>", "", buf.getvalue())
    text = re.sub(r"<!DOCTYPE[^>]*>", "", text, flags=re.S)
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    return Markup(text.strip())


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_RC = {
    "svg.fonttype": "path",
    "font.size": 8,
    "svg.hashsalt": "model-risk-audit",
    "text.parse_math": False,  # `$` in a label stays a dollar sign
}


def findings_chart(h: History) -> Markup:
    """Stacked bars of findings by severity per re-audit; flagged re-audits marked with a red line and a number."""
    plt = _plt()
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(6.6, 2.6))
        x = list(range(len(h.revisions)))
        bottom = [0] * len(x)
        for sev in reversed(SEVERITY_ORDER):
            vals = [r.counts[sev] for r in h.revisions]
            ax.bar(x, vals, bottom=bottom, color=SEVERITY_COLOURS[sev], label=sev, width=0.6)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        top = max(bottom + [1])
        for r in h.revisions:
            if r.flags:
                ax.axvline(r.index - 0.45, color="#b42318", linestyle="--", linewidth=1)
                ax.text(r.index - 0.42, top * 1.02, f"! {len(r.flags)}", color="#b42318", fontsize=7)
        ax.set_ylim(0, top * 1.15)
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xticks(x)
        ax.set_xticklabels([r.label for r in h.revisions], fontsize=6.5, rotation=20, ha="right")
        ax.set_ylabel("findings")
        ax.legend(fontsize=6.5, ncol=5, loc="upper left", bbox_to_anchor=(0, -0.32), frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return _svg(fig)


def metric_chart(h: History, series: Sequence[MetricSeries]) -> Markup:
    """One metric over the re-audits: a line per group with 95% interval whiskers; flagged points ringed red."""
    plt = _plt()
    palette = ["#3d6db5", "#c4720a", "#1f7a3f", "#7a0916", "#6b7280", "#8a5cc2", "#0e7490", "#a16207"]
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(6.6, 2.3))
        x = list(range(len(h.revisions)))
        for k, s in enumerate(series[:MAX_SERIES]):
            colour = palette[k % len(palette)]
            pts = [(i, v, s.ci_low[i], s.ci_high[i]) for i, v in enumerate(s.values) if v is not None]
            if not pts:
                continue
            xs = [p[0] for p in pts]
            ys = [p[1] for p in pts]
            lo = [p[1] - p[2] if p[2] is not None else 0.0 for p in pts]
            hi = [p[3] - p[1] if p[3] is not None else 0.0 for p in pts]
            ax.errorbar(
                xs,
                ys,
                yerr=[lo, hi],
                color=colour,
                marker="o",
                markersize=3,
                linewidth=1,
                capsize=2,
                label=s.where or s.metric,
            )
            for i, v, _, _ in pts:
                if s.flagged[i]:
                    ax.plot(
                        [i],
                        [v],
                        marker="o",
                        markersize=10,
                        markerfacecolor="none",
                        markeredgecolor="#b42318",
                        markeredgewidth=1.5,
                    )
                    ax.annotate(
                        "worse",
                        (i, v),
                        textcoords="offset points",
                        xytext=(6, 6),
                        color="#b42318",
                        fontsize=7,
                    )
        ax.set_xticks(x)
        ax.set_xticklabels([r.label for r in h.revisions], fontsize=6.5, rotation=20, ha="right")
        ax.set_xlim(-0.5, len(x) - 0.5)
        ax.set_ylabel(series[0].metric.replace("_", " "))
        if len(series) > 1 or series[0].where:
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return _svg(fig)


def charts(h: History) -> dict[str, Any]:
    """The findings chart and one chart per (suite, metric) with its groups as lines."""
    by_metric: dict[tuple[str, str], list[MetricSeries]] = {}
    for s in h.series:
        by_metric.setdefault((s.suite, s.metric), []).append(s)
    metric_charts = [
        {
            "suite": suite,
            "metric": metric,
            "svg": metric_chart(h, group),
            "flagged": any(any(s.flagged) for s in group),
        }
        for (suite, metric), group in list(by_metric.items())[:MAX_METRIC_CHARTS]
    ]
    return {"findings": findings_chart(h) if h.revisions else None, "metrics": metric_charts}


# ------------------------------------------------------------------ rendering


def to_dict(h: History) -> dict[str, Any]:
    """history.json: the revisions, the metric series and the drift between consecutive re-audits."""
    return {
        "schema": "model-audit-history/1",
        "subject": h.subject,
        "revisions": [asdict(r) for r in h.revisions],
        "metrics": [asdict(s) for s in h.series],
        "drift": [asdict(d) if d is not None else None for d in h.drifts],
    }


def html(h: History, *, for_print: bool = False) -> str:
    """The history page as HTML (self-contained: inline CSS and SVG, no fetches)."""
    from audit.render.html import environment
    from audit.resources import templates_dir

    css = (templates_dir() / "report.css").read_text(encoding="utf-8")
    return (
        environment()
        .get_template("history.html.j2")
        .render(h=h, charts=charts(h), css=css, for_print=for_print)
    )


def markdown(h: History) -> str:
    """history.md: revision by revision, licence, findings by severity and what drift flagged."""
    from audit.render.markdown import md_escape

    lines = [
        f"## Re-audit history: {md_escape(h.subject)}",
        "",
        "| # | Finished | Revision | Licence | crit/high/med/low/info | Rating | Flagged by drift rules |",
        "|---:|---|---|---|---|---|---|",
    ]
    for r in h.revisions:
        c = "/".join(str(r.counts[s]) for s in SEVERITY_ORDER)
        lines.append(
            f"| {r.index + 1} | {md_escape(r.finished_at)} | `{md_escape((r.revision or 'local')[:12])}` | "
            f"{md_escape(r.license or 'none')} ({md_escape(r.license_class or 'missing')}) | {c} | "
            f"{md_escape(r.rating or '')} | {md_escape('; '.join(r.flags) or '–')} |"
        )
    if h.series:
        lines += ["", "### Metrics (value [95% CI] per re-audit)", ""]
        lines.append("| Suite / metric | " + " | ".join(f"#{r.index + 1}" for r in h.revisions) + " |")
        lines.append("|---|" + "---|" * len(h.revisions))
        for s in h.series:
            cells = []
            for i, v in enumerate(s.values):
                if v is None:
                    cells.append("–")
                    continue
                ci = (
                    f" [{s.ci_low[i]:.3f}, {s.ci_high[i]:.3f}]"
                    if s.ci_low[i] is not None and s.ci_high[i] is not None
                    else ""
                )
                cells.append(f"{'**' if s.flagged[i] else ''}{v:.3f}{ci}{'**' if s.flagged[i] else ''}")
            lines.append(
                f"| {md_escape(f'{s.suite} {s.metric} {s.where}'.strip())} | " + " | ".join(cells) + " |"
            )
    lines += [
        "",
        "<sub>model-risk-audit history · bold: significantly worse than the re-audit before</sub>",
        "",
    ]
    return "\n".join(lines)


def render_history(h: History, out: Path, formats: Sequence[str]) -> list[Path]:
    """Write history.json (always) and the asked-for formats; rendered in memory, then written atomically."""
    from audit.fsutil import atomic_write
    from audit.shortlist import _pdf

    unknown = [f for f in formats if f not in HISTORY_FILES]
    if unknown:
        raise UsageError(f"history has no '{unknown[0]}' format", "use --format html,pdf,json,md")
    rendered: list[tuple[Path, bytes]] = [
        (out / HISTORY_FILES["json"], (json.dumps(to_dict(h), indent=2, default=str) + "\n").encode())
    ]
    if "html" in formats:
        rendered.append((out / HISTORY_FILES["html"], html(h).encode()))
    if "pdf" in formats:
        rendered.append((out / HISTORY_FILES["pdf"], _pdf(html(h, for_print=True))))
    if "md" in formats:
        rendered.append((out / HISTORY_FILES["md"], markdown(h).encode()))
    out.mkdir(parents=True, exist_ok=True)
    for path, data in rendered:
        atomic_write(path, data)
    return [p for p, _ in rendered]
