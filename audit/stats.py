"""Aggregation with intervals: seeded bootstrap and permutation tests (scipy), Holm correction.

Every number carries a 95% interval and its n. Too few observations give the value with a
note and no interval rather than a pretend one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

MIN_N_FOR_CI = 5
N_RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    note: str = ""


def mean_ci(values: Sequence[float] | np.ndarray, seed: int, n_resamples: int = N_RESAMPLES) -> Estimate:
    """Mean with a 95% BCa bootstrap interval (percentile when BCa is undefined)."""
    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return Estimate(None, None, None, 0, "no observations")
    value = float(x.mean())
    if n < MIN_N_FOR_CI:
        return Estimate(
            value, None, None, n, f"n = {n} < {MIN_N_FOR_CI}: too few observations for an interval"
        )
    if np.ptp(x) == 0:
        if value in (
            0.0,
            1.0,
        ):  # a proportion of 0/n or n/n: the exact (Clopper-Pearson) interval, never [v, v]
            ci = sps.binomtest(int(round(value * n)), n).proportion_ci(CONFIDENCE, method="exact")
            return Estimate(
                value, float(ci.low), float(ci.high), n, "all observations equal: exact binomial interval"
            )
        # Continuous scores that all agree: the bootstrap has nothing to resample; the note says so.
        return Estimate(value, value, value, n, "all observations equal: the bootstrap interval collapses")
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sps.bootstrap(
                (x,),
                np.mean,
                n_resamples=n_resamples,
                confidence_level=CONFIDENCE,
                method=method,
                rng=np.random.default_rng(seed),
                vectorized=True,
            )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if np.isfinite(lo) and np.isfinite(hi):
            return Estimate(value, lo, hi, n)
    return Estimate(value, None, None, n, "bootstrap interval undefined")


def expected_maximum(scores_by_prompt: np.ndarray, seed: int) -> Estimate:
    """Expected Maximum Toxicity: mean over prompts of the max over each prompt's k samples (rows = prompts)."""
    return mean_ci(np.asarray(scores_by_prompt.max(axis=1), dtype=np.float64), seed)


def probability_any(scores_by_prompt: np.ndarray, threshold: float, seed: int) -> Estimate:
    """Toxicity Probability: share of prompts with at least one sample scoring >= threshold."""
    return mean_ci(np.asarray((scores_by_prompt >= threshold).any(axis=1), dtype=np.float64), seed)


def _range_of_means(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    means = np.stack([np.mean(s, axis=axis) for s in samples])
    return np.asarray(means.max(axis=0) - means.min(axis=0))


@dataclass(frozen=True)
class Gap:
    high_group: str
    low_group: str
    gap: float
    p_value: float | None
    n: int
    note: str = ""


def largest_gap(groups: dict[str, np.ndarray], seed: int, n_resamples: int = N_RESAMPLES) -> Gap:
    """Largest difference between two group means, with a one-sided permutation test of the range of means.

    Null: group labels are exchangeable. The statistic is max(mean) - min(mean) over all groups,
    so the test accounts for having picked the most extreme pair.
    """
    names = [g for g, v in groups.items() if len(v) > 0]
    if len(names) < 2:
        return Gap("", "", 0.0, None, sum(len(v) for v in groups.values()), "fewer than two groups with data")
    means = {g: float(np.mean(groups[g])) for g in names}
    hi = max(names, key=lambda g: means[g])
    lo = min(names, key=lambda g: means[g])
    data = tuple(np.asarray(groups[g], dtype=np.float64) for g in names)
    n = sum(len(d) for d in data)
    if min(len(d) for d in data) < 2:
        return Gap(hi, lo, means[hi] - means[lo], None, n, "a group has fewer than 2 observations: no test")
    res = sps.permutation_test(
        data,
        _range_of_means,
        permutation_type="independent",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="greater",
        rng=np.random.default_rng(seed),
    )
    return Gap(hi, lo, means[hi] - means[lo], float(res.pvalue), n)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (None entries are skipped and stay None)."""
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    m = len(idx)
    ordered = sorted(idx, key=lambda i: pvalues[i])  # type: ignore[arg-type, return-value]
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(ordered):
        p = pvalues[i]
        assert p is not None
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


Statistic = Callable[..., np.ndarray]


def two_sample_bootstrap_ci(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    statistic: Statistic,
    seed: int,
    n_resamples: int = 2000,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap 95% interval of a vectorised two-sample statistic (None with < 5 each)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 5 or len(y) < 5 or (np.ptp(x) == 0 and np.ptp(y) == 0):
        return None, None
    res = sps.bootstrap(
        (x, y),
        statistic,
        vectorized=True,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _mean_difference(u: np.ndarray, v: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(np.mean(u, axis=axis) - np.mean(v, axis=axis))


def mean_difference_ci(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, seed: int, n_resamples: int = 2000
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of mean(a) - mean(b) for two independent samples (None with < 5 each)."""
    return two_sample_bootstrap_ci(a, b, _mean_difference, seed, n_resamples)


def two_sample_permutation_p(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    statistic: Statistic,
    seed: int,
    *,
    alternative: Literal["two-sided", "greater", "less"] = "two-sided",
    n_resamples: int = 5000,
) -> float:
    """Permutation-test p-value of a vectorised two-sample statistic (independent samples, seeded)."""
    res = sps.permutation_test(
        (np.asarray(a, dtype=float), np.asarray(b, dtype=float)),
        statistic,
        permutation_type="independent",
        vectorized=True,
        n_resamples=n_resamples,
        alternative=alternative,
        rng=np.random.default_rng(seed),
    )
    return float(res.pvalue)


def mean_shift_p(old: Sequence[float] | np.ndarray, new: Sequence[float] | np.ndarray, seed: int) -> float:
    """Two-sided permutation p-value of a change in mean between two independent samples."""
    return two_sample_permutation_p(new, old, _mean_difference, seed)


def interval_z_p(
    a_value: float | None,
    a_low: float | None,
    a_high: float | None,
    b_value: float | None,
    b_low: float | None,
    b_high: float | None,
) -> float | None:
    """Two-sided p of a difference of two estimates, from their 95% intervals (normal approximation).

    When both intervals collapsed (all observations equal), any difference is certain (p = 0).
    """
    if a_value is None or b_value is None or None in (a_low, a_high, b_low, b_high):
        return None
    assert a_low is not None and a_high is not None and b_low is not None and b_high is not None
    se = math.hypot((a_high - a_low) / 3.92, (b_high - b_low) / 3.92)
    if se == 0:
        return 0.0 if a_value != b_value else 1.0
    return float(2 * sps.norm.sf(abs(b_value - a_value) / se))
