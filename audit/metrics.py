"""The metrics catalogue: direction, unit, threshold and its source, citation and meaning of every metric.

Read once from `audit/catalogue/metrics.yaml` (shipped in the package). Suite YAML is validated against
it (`metric_info`, `nearest_metric`), and every renderer takes a metric's direction and meaning from it.
`assess` says what a measured value is worth against its threshold: above it, below it, or
inconclusive when the 95% interval straddles it (never a pass).
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from audit.model import MetricResult

__all__ = [
    "Assessment",
    "MetricInfo",
    "MetricsCatalogue",
    "assess",
    "catalogue",
    "control_test_note",
    "detectable_gap",
    "metric_info",
    "nearest_metric",
]

CATALOGUE_PATH = Path(__file__).resolve().parent / "catalogue" / "metrics.yaml"

Direction = Literal["higher_is_worse", "higher_is_better", "away_from_ideal_is_worse"]
DIRECTION_TEXT = {
    "higher_is_worse": "higher is worse",
    "higher_is_better": "higher is better",
    "away_from_ideal_is_worse": "further from {ideal} is worse",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricInfo(_Strict):
    """One metric: what it measures, which way is worse, and when it raises a finding."""

    name: str = ""
    title: str = Field(min_length=1)
    direction: Direction
    ideal: float | None = None
    unit: str = Field(min_length=1)
    good: str = Field(min_length=1)
    threshold: float | None = None
    threshold_side: Literal["above", "below", "abs_above"] | None = None
    threshold_on: Literal["value", "interval"] = "interval"
    requires: Literal["significant", "interval_excludes_ideal"] | None = None
    threshold_source: str = ""
    finding: str | None = None
    citation: str = Field(min_length=1)
    meaning: str = Field(min_length=1)
    control: bool = False
    # Which rows the finding rule applies to: "overall" (group "" or "all"), "per-group" (the others), and
    # an axis value (e.g. "K=20"); rows outside the scope are described, never flagged.
    scope_group: Literal["overall", "per-group"] | None = None
    scope_axis: str | None = None
    declared_only: bool = False
    emits: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> MetricInfo:
        if (self.threshold is None) != (self.threshold_side is None):
            raise ValueError("threshold and threshold_side go together")
        if self.threshold is not None and not self.threshold_source:
            raise ValueError("a threshold needs its threshold_source")
        if self.direction == "away_from_ideal_is_worse" and self.ideal is None:
            raise ValueError("direction away_from_ideal_is_worse needs `ideal`")
        if self.declared_only and not self.emits:
            raise ValueError("a declared-only name lists the metrics it emits")
        return self

    @property
    def direction_text(self) -> str:
        """'higher is worse', 'further from 0 is worse', ..."""
        ideal = "" if self.ideal is None else f"{self.ideal:g}"
        return DIRECTION_TEXT[self.direction].format(ideal=ideal)

    @property
    def threshold_text(self) -> str:
        """'finding at |value| ≥ 0.8 (source)', or '' without a threshold."""
        if self.threshold is None:
            return ""
        op = {"above": "above", "below": "below", "abs_above": "at |value| ≥"}[self.threshold_side or "above"]
        return f"finding {op} {self.threshold:g}"


class MetricsCatalogue(_Strict):
    """The whole file."""

    metrics: dict[str, MetricInfo]
    control_tests: dict[str, str] = Field(default_factory=dict)
    not_tested: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _emits_known(self) -> MetricsCatalogue:
        for name, info in self.metrics.items():
            for e in info.emits:
                if e not in self.metrics:
                    raise ValueError(f"{name}: emits unknown metric {e}")
        return self


@lru_cache(maxsize=1)
def catalogue() -> MetricsCatalogue:
    """The catalogue, validated (cached)."""
    data = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    try:
        cat = MetricsCatalogue.model_validate(data)
    except ValidationError as exc:  # a packaging defect, not a user error
        raise RuntimeError(f"{CATALOGUE_PATH}: invalid metrics catalogue: {exc}") from exc
    named = {k: v.model_copy(update={"name": k}) for k, v in cat.metrics.items()}
    return cat.model_copy(update={"metrics": named})


def metric_info(name: str) -> MetricInfo | None:
    """The catalogue entry of a metric name (None when the name is not catalogued)."""
    return catalogue().metrics.get(name)


def nearest_metric(name: str) -> str | None:
    """The catalogued name closest to a misspelt one (difflib), for 'did you mean' errors."""
    close = difflib.get_close_matches(name, list(catalogue().metrics), n=1, cutoff=0.6)
    return close[0] if close else None


def control_test_note(test: str) -> str:
    """Why a test is a control ('' when it is not one)."""
    return catalogue().control_tests.get(test, "")


Assessment = Literal["finding", "pass", "inconclusive", "no threshold", "no interval"]


def _interval_against(lo: float, hi: float, side: str) -> tuple[float, float]:
    """The interval of the quantity the threshold applies to (|x| for abs_above)."""
    if side != "abs_above":
        return lo, hi
    if lo >= 0:
        return lo, hi
    if hi <= 0:
        return -hi, -lo
    return 0.0, max(-lo, hi)


def _past(x: float, t: float, side: str) -> bool:
    if side == "below":
        return x < t
    if side == "abs_above":
        return abs(x) >= t
    return x > t


def in_scope(info: MetricInfo, m: MetricResult) -> bool:
    """Whether a metric row is one the catalogue's finding rule applies to (see `scope_group`, `scope_axis`)."""
    overall = m.group in ("", "all")
    if info.scope_group == "overall" and not overall:
        return False
    if info.scope_group == "per-group" and overall:
        return False
    return info.scope_axis is None or m.axis == info.scope_axis


def assess(m: MetricResult) -> Assessment:
    """What a measured value is worth against its catalogued threshold, from its 95% interval.

    `finding`: the metric meets its finding rule (the point estimate past the threshold, or the whole
    interval past it, as the catalogue says, plus any further condition such as significance);
    `pass`: the whole interval is on the good side; `inconclusive`: neither: the interval straddles
    the threshold, the sample is too small to decide, and that is never a pass; `no interval`: there
    is a threshold but no interval to judge it with.
    """
    info = metric_info(m.name)
    if info is None or info.threshold is None or info.control or not in_scope(info, m):
        return "no threshold"
    if m.value is None:
        return "no interval"
    if m.ci_low is None or m.ci_high is None:
        # A rule on the point estimate can still be met (as the finding that raised it was); without an
        # interval nothing else can be decided.
        if info.threshold_on != "interval" and info.requires != "interval_excludes_ideal":
            met = _past(m.value, info.threshold, info.threshold_side or "above")
            if met and info.requires == "significant":
                met = m.p_adjusted is not None and m.p_adjusted < 0.05
            if met:
                return "finding"
        return "no interval"
    side = info.threshold_side or "above"
    t = info.threshold
    lo, hi = _interval_against(m.ci_low, m.ci_high, side)
    if info.threshold_on == "interval":
        past = (hi < t) if side == "below" else (lo >= t if side == "abs_above" else lo > t)
    else:
        past = _past(m.value, t, side)
    if past and info.requires == "significant":
        past = m.p_adjusted is not None and m.p_adjusted < 0.05
    elif past and info.requires == "interval_excludes_ideal":
        ideal = info.ideal or 0.0
        past = m.ci_low > ideal or m.ci_high < ideal
    if past:
        return "finding"
    whole_good = (lo >= t) if side == "below" else (hi < t if side == "abs_above" else hi <= t)
    return "pass" if whole_good else "inconclusive"


# z(0.975) + z(0.80): a difference of this many standard errors is detected with 80% power at α = 0.05.
_Z_DETECT = 1.959964 + 0.841621


def detectable_gap(m: MetricResult) -> float | None:
    """The smallest true difference this sample could detect (80% power, two-sided α = 0.05), from the interval.

    The standard error is read back from the 95% interval's width (width / 3.92); None without one.
    """
    if m.ci_low is None or m.ci_high is None:
        return None
    se = (m.ci_high - m.ci_low) / (2 * 1.959964)
    return _Z_DETECT * se
