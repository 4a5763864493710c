"""Aggregation with intervals: seeded bootstrap and permutation tests (scipy), Holm correction.

Every number carries a 95% interval and its n. Too few observations give the value with a
note and no interval rather than a pretend one.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

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
        return Estimate(value, value, value, n, "all observations equal")
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
