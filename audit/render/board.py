"""What a governance board reads: the executive summary and every metric interpreted, for every format.

HTML, PDF and Markdown render the same view built here, so one report says the same thing in each:
one block per suite that ran (what it measures, the headline metric with its interval and what
would be good, what was flagged), every metric row with its direction, threshold and meaning from
the metrics catalogue, control tests apart, and what the audit did not test. Numbers come from
`audit.format` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from audit.format import fmt_ci, fmt_estimate, fmt_num, fmt_p_value
from audit.metrics import MetricInfo, assess, catalogue, control_test_note, detectable_gap, metric_info
from audit.model import AuditReport, Finding, MetricResult, ProbeResult

EVIDENCE_SHOWN = 5

STATUS_TEXT = {
    "finding": "past the threshold",
    "pass": "within the threshold",
    "inconclusive": "inconclusive",
    "no interval": "no interval: undecided",
    "no threshold": "",
}

# Metrics shown in tables of their own (per group, per axis gap) by the HTML renderer.
GROUP_METRICS = {"group_mean_toxicity": "toxicity", "negative_sentiment_rate": "negative"}
GAP_METRICS = {"axis_gap": "gap", "paired_difference": "paired", "scorer_control_gap": "control"}


@dataclass(frozen=True)
class MetricRow:
    """One metric as a reader sees it: every number formatted once, with its interpretation."""

    metric: MetricResult
    title: str
    where: str
    value: str
    ci: str
    n: int
    p_raw: str
    p_adjusted: str
    direction: str
    status: str
    status_text: str
    control: bool
    control_note: str
    detectable: str

    @property
    def name(self) -> str:
        return self.metric.name


@dataclass(frozen=True)
class Legend:
    """What one metric means: shown once under the table it appears in."""

    name: str
    title: str
    direction: str
    threshold: str
    threshold_source: str
    meaning: str
    good: str


@dataclass(frozen=True)
class SuiteSummary:
    """One block of the executive summary: one suite that ran."""

    suite: str
    title: str
    measures: str
    headline: MetricRow | None
    good: str
    flagged: tuple[str, ...]
    inconclusive: tuple[str, ...]
    invalid: str
    controls: tuple[str, ...] = ()
    findings: int = 0


@dataclass(frozen=True)
class Board:
    """Everything the summary needs, formatted."""

    reasons: tuple[str, ...]
    suites: tuple[SuiteSummary, ...]
    skipped: tuple[tuple[str, str], ...]
    not_tested: tuple[str, ...]
    data_situation: str
    rows: dict[str, tuple[MetricRow, ...]] = field(default_factory=dict)


def _where(m: MetricResult) -> str:
    """The group or test a metric is about, in words ('religion: muslim vs christian')."""
    axis = m.axis.replace("_", " ")
    if m.name == "effect_size":
        return f"{m.axis}: {m.group}" if m.group else m.axis
    if axis and m.group:
        return f"{axis}: {m.group}"
    return axis or m.group or ""


def metric_row(m: MetricResult) -> MetricRow:
    """A metric formatted once, with its catalogue direction and its assessment against the threshold."""
    info = metric_info(m.name)
    status = assess(m)
    control = (
        m.control
        or bool(m.name == "effect_size" and control_test_note(m.axis))
        or bool(info and info.control)
    )
    if control:
        status = "no threshold"
    det = detectable_gap(m) if info is not None and info.threshold is not None and not control else None
    digits = 1 if info is not None and info.unit.startswith("%") else 3
    return MetricRow(
        metric=m,
        title=info.title if info else m.name.replace("_", " "),
        where=_where(m),
        value=fmt_num(m.value, digits),
        ci=fmt_ci(m.ci_low, m.ci_high, digits),
        n=m.n,
        p_raw=fmt_p_value(m.p_value),
        p_adjusted=fmt_p_value(m.p_adjusted),
        direction=info.direction_text if info else "not catalogued",
        status=status,
        status_text=STATUS_TEXT[status],
        control=control,
        control_note=control_test_note(m.axis)
        if m.name == "effect_size"
        else (info.meaning if control and info else ""),
        detectable=fmt_num(det, digits) if det is not None else "",
    )


def legends(metrics: Sequence[MetricResult]) -> list[Legend]:
    """One legend per distinct metric name, in order of appearance."""
    out: list[Legend] = []
    for name in dict.fromkeys(m.name for m in metrics):
        info = metric_info(name)
        if info is None:
            out.append(Legend(name, name.replace("_", " "), "not catalogued", "", "", "", ""))
            continue
        out.append(
            Legend(
                name,
                info.title,
                info.direction_text,
                info.threshold_text,
                info.threshold_source,
                info.meaning,
                info.good,
            )
        )
    return out


def _severity_of(status: str) -> int:
    return {"finding": 3, "inconclusive": 2, "no interval": 2, "pass": 1}.get(status, 0)


def _distance(m: MetricResult, info: MetricInfo | None) -> float:
    if m.value is None:
        return -1.0
    if info is None:
        return 0.0
    if info.direction == "away_from_ideal_is_worse":
        return abs(m.value - (info.ideal or 0.0))
    return m.value if info.direction == "higher_is_worse" else -m.value


def headline(probe: ProbeResult) -> MetricRow | None:
    """The metric a board should see first: the worst assessed one (past, then undecided, then within)."""
    rows = [metric_row(m) for m in probe.metrics if m.value is not None]
    rows = [r for r in rows if not r.control]
    if not rows:
        return None
    return max(
        rows,
        key=lambda r: (
            metric_info(r.name) is not None and metric_info(r.name).threshold is not None,  # type: ignore[union-attr]
            _severity_of(r.status),
            _distance(r.metric, metric_info(r.name)),
        ),
    )


def _measures(probe: ProbeResult) -> str:
    from audit.suites import builtin_suites

    try:
        spec = builtin_suites().get(probe.suite)
    except Exception:  # noqa: BLE001 - a broken suite file must not break the report
        spec = None
    text = spec.description if spec is not None else ""
    if not text:
        first = next((m for m in probe.metrics), None)
        info = metric_info(first.name) if first else None
        text = info.meaning if info else ""
    sentence = text.strip().split(". ")[0].rstrip(".")
    return sentence + "." if sentence else ""


def _short(row: MetricRow) -> str:
    """'age-valence (d = 0.710)', 'religion: muslim (0.181)', 'Toxicity probability = 0.500': for the summary."""
    m = row.metric
    if m.name == "effect_size":
        return f"{m.axis} (d = {row.value})"
    if row.where:
        return f"{row.where} ({row.value})"
    return f"{row.title} = {row.value}"


SUMMARY_ITEMS = 5


def _first(items: list[str]) -> tuple[str, ...]:
    """At most five items, then 'and N more'."""
    unique = list(dict.fromkeys(items))
    if len(unique) <= SUMMARY_ITEMS + 1:
        return tuple(unique)
    return (*unique[:SUMMARY_ITEMS], f"and {len(unique) - SUMMARY_ITEMS} more")


def suite_summary(probe: ProbeResult, findings: Sequence[Finding]) -> SuiteSummary:
    """One block: what the suite measures, its headline metric, what was flagged or is undecided."""
    rows = [metric_row(m) for m in probe.metrics]
    head = headline(probe)
    flagged = _first([_short(r) for r in rows if r.status == "finding" and not r.control])
    unsure = _first([_short(r) for r in rows if r.status in ("inconclusive", "no interval")])
    controls = tuple(dict.fromkeys(_short(r) for r in rows if r.control and r.name == "effect_size"))
    info = metric_info(head.name) if head else None
    mine = [f for f in findings if f.category == "probe" and f.subject == probe.suite]
    return SuiteSummary(
        suite=probe.suite,
        title=probe.title or probe.suite,
        measures=_measures(probe),
        headline=head,
        good=info.good if info else "",
        flagged=flagged,
        inconclusive=unsure,
        invalid=probe.invalid,
        controls=controls,
        findings=len(mine),
    )


def headline_text(row: MetricRow) -> str:
    """'Association effect size (d), disability-valence: 1.145 (95% CI 0.832 to 1.421, n = 64)'."""
    m = row.metric
    info = metric_info(m.name)
    digits = 1 if info is not None and info.unit.startswith("%") else 3
    where = f", {row.where}" if row.where else ""
    return f"{row.title}{where}: {fmt_estimate(m.value, m.ci_low, m.ci_high, m.n, digits)}"


def data_situation(report: AuditReport) -> str:
    """The training-data situation in one sentence."""
    card = report.card
    n = len(card.datasets)
    if n == 0:
        return "no training data declared"
    got = sum(1 for d in report.datasets if d.available)
    if not report.datasets:
        return f"{n} training datasets declared; their cards were not collected"
    personal = sum(1 for d in report.datasets if d.personal_info == "present")
    text = f"{n} training datasets declared, {got} of {len(report.datasets)} cards collected"
    if personal:
        text += f"; {personal} say they hold personal information"
    return text


def not_tested(report: AuditReport) -> tuple[str, ...]:
    """What this audit did not test: the catalogue's standing list, the suites that did not run."""
    items = list(catalogue().not_tested)
    if not any(not p.skipped for p in report.probes):
        items.insert(0, "the model's behaviour: no probe suite ran")
    return tuple(items)


def reasons(report: AuditReport) -> tuple[str, ...]:
    """Why the rating is what it is: the verdict's reasons, else the highest-severity findings."""
    v = report.verdict
    found = tuple(getattr(v, "reasons", ()) or ())
    if found:
        return found
    top = sorted(report.findings, key=lambda f: (-f.severity.rank, f.id))
    if not top:
        return ()
    worst = top[0].severity.rank
    return tuple(f"{f.severity.value}: {f.title} [{f.id}]" for f in top if f.severity.rank == worst)[:6]


def board(report: AuditReport) -> Board:
    """The board view of a report."""
    ran = [p for p in report.probes if not p.skipped]
    return Board(
        reasons=reasons(report),
        suites=tuple(suite_summary(p, report.findings) for p in ran),
        skipped=tuple((p.suite, p.skipped) for p in report.probes if p.skipped),
        not_tested=not_tested(report),
        data_situation=data_situation(report),
        rows={p.suite: tuple(metric_row(m) for m in p.metrics) for p in ran},
    )


def probe_tables(probe: ProbeResult) -> dict[str, object]:
    """Metrics regrouped for reading: per group, per axis gap (with the scorer's own gap), controls, the rest."""
    groups: dict[tuple[str, str], dict[str, MetricRow]] = {}
    gaps: dict[str, dict[str, MetricRow]] = {}
    other: list[MetricRow] = []
    controls: list[MetricRow] = []
    for m in probe.metrics:
        row = metric_row(m)
        if m.name in GROUP_METRICS:
            groups.setdefault((m.axis, m.group), {})[GROUP_METRICS[m.name]] = row
        elif m.name in GAP_METRICS:
            gaps.setdefault(m.axis, {})[GAP_METRICS[m.name]] = row
        elif row.control:
            controls.append(row)
        else:
            other.append(row)
    shown = [r.metric for r in other] + [r.metric for r in controls]
    shown += [r.metric for g in gaps.values() for r in g.values()]
    shown += [r.metric for g in groups.values() for r in g.values()]
    return {
        "groups": sorted(groups.items()),
        "gaps": sorted((k, v) for k, v in gaps.items() if "gap" in v or "paired" in v),
        "other": other,
        "controls": controls,
        "legends": legends(shown),
        "with_p": any(
            r.metric.p_value is not None or r.metric.p_adjusted is not None for r in other + controls
        ),
    }


def evidence_view(evidence: Sequence[str], limit: int = EVIDENCE_SHOWN) -> tuple[tuple[str, ...], int]:
    """The first `limit` evidence items and how many more there are (all stay in report.json)."""
    items = tuple(evidence)
    if len(items) <= limit + 1:  # "and 1 more" takes the room of the item itself
        return items, 0
    return items[:limit], len(items) - limit
