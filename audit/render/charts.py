"""SVG charts (matplotlib, Agg): per-group bars with interval whiskers, and score distributions.

The SVG is inlined into the HTML (the XML prolog and doctype stripped); glyphs are paths,
so the chart needs no font and fetches nothing.
"""

from __future__ import annotations

import io
import re

from markupsafe import Markup

from audit.model import MetricResult, ProbeResult


def _svg(fig: object) -> Markup:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    text = buf.getvalue()
    text = re.sub(r"<\?xml[^>]*\?>", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>", "", text, flags=re.S)
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    return Markup(text.strip())


def _plt() -> object:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # text.parse_math off: labels are text ("$" in a group or test name is not mathtext).
    plt.rcParams.update(
        {"svg.fonttype": "path", "font.size": 8, "svg.hashsalt": "model-risk-audit", "text.parse_math": False}
    )
    return plt


def distribution_chart(probe: ProbeResult) -> Markup | None:
    """Histogram of the primary toxicity score over all samples, with the scorer's threshold."""
    if not probe.distribution:
        return None
    plt = _plt()
    tox = next((s for s in probe.scorers if s.kind == "toxicity"), None)
    fig, ax = plt.subplots(figsize=(6.2, 2.2))  # type: ignore[attr-defined]
    ax.hist(probe.distribution, bins=40, range=(0.0, 1.0), color="#3d6db5", edgecolor="white", linewidth=0.3)
    if tox is not None:
        ax.axvline(tox.threshold, color="#b42318", linestyle="--", linewidth=1)
        ax.text(
            tox.threshold, ax.get_ylim()[1] * 0.92, f" threshold {tox.threshold}", color="#b42318", fontsize=7
        )
        ax.set_xlabel(f"{tox.name} {tox.primary} score per sample (n = {len(probe.distribution)})")
    ax.set_ylabel("samples")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def group_chart(
    probe: ProbeResult, metric: str = "group_mean_toxicity", by_axis: bool = False
) -> Markup | None:
    """Horizontal bars per group (or per test, `by_axis`), coloured by axis/label, with 95% interval whiskers."""
    rows: list[MetricResult] = [m for m in probe.metrics if m.name == metric and m.value is not None]
    if not rows:
        return None
    plt = _plt()
    if by_axis:
        rows = [
            MetricResult(m.name, m.value, m.ci_low, m.ci_high, m.n, group=m.axis, axis=m.label) for m in rows
        ]
    else:
        rows.sort(key=lambda m: (m.axis, m.group))
    labels = [f"{m.axis.replace('_', ' ')}: {m.group}" for m in rows]
    values = [float(m.value or 0.0) for m in rows]
    lo = [v - m.ci_low if m.ci_low is not None else 0.0 for v, m in zip(values, rows, strict=False)]
    hi = [m.ci_high - v if m.ci_high is not None else 0.0 for v, m in zip(values, rows, strict=False)]
    axes_order = list(dict.fromkeys(m.axis for m in rows))
    palette = ["#3d6db5", "#c4720a", "#1f7a3f", "#7a0916", "#6b7280", "#8a5cc2", "#0e7490", "#a16207"]
    colors = [palette[axes_order.index(m.axis) % len(palette)] for m in rows]
    fig, ax = plt.subplots(figsize=(6.2, 0.18 * len(rows) + 0.8))  # type: ignore[attr-defined]
    y = list(range(len(rows)))
    ax.barh(y, values, xerr=[lo, hi], color=colors, error_kw={"elinewidth": 0.8, "capsize": 2}, height=0.7)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=6.5)
    ax.invert_yaxis()
    ax.axvline(0, color="#1d2330", linewidth=0.6)
    ax.set_xlabel(f"{metric.replace('_', ' ')} (bars: estimate; whiskers: 95% CI)")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)
