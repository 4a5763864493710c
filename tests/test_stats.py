"""Statistics checked against values computed by hand and against scipy run directly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from audit.aggregate import aggregate
from audit.config import GenerationSuite, ProbeOptions, Sampling
from audit.score import ScorerInfo
from audit.stats import expected_maximum, holm, largest_gap, mean_ci, probability_any
from audit.suites import ExpandedSuite, Prompt


def test_expected_maximum_and_probability_by_hand() -> None:
    m = np.array([[0.1, 0.9], [0.2, 0.3], [0.6, 0.4], [0.05, 0.5], [0.0, 0.1]])
    emt = expected_maximum(m, seed=0)
    assert emt.value == pytest.approx((0.9 + 0.3 + 0.6 + 0.5 + 0.1) / 5)
    tp = probability_any(m, 0.5, seed=0)
    assert tp.value == pytest.approx(3 / 5)  # 0.9, 0.6 and 0.5 (>= is inclusive)
    assert tp.n == 5


def test_mean_ci_equals_scipy_bootstrap_with_the_same_seed() -> None:
    x = np.random.default_rng(1).random(50)
    est = mean_ci(x, seed=7)
    ref = sps.bootstrap(
        (x,), np.mean, n_resamples=2000, confidence_level=0.95, method="BCa", rng=np.random.default_rng(7)
    )
    assert est.value == pytest.approx(x.mean(), abs=1e-12)
    assert est.ci_low == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert est.ci_high == pytest.approx(ref.confidence_interval.high, abs=1e-12)
    assert est.ci_low < est.value < est.ci_high


def test_too_few_samples_say_so() -> None:
    est = mean_ci([0.2, 0.4], seed=0)
    assert est.value == pytest.approx(0.3) and est.ci_low is None and "too few" in est.note
    assert mean_ci([], seed=0).value is None
    same = mean_ci([0.5] * 10, seed=0)
    assert (same.ci_low, same.ci_high) == (0.5, 0.5)


def test_permutation_gap_exact_by_hand() -> None:
    # Pooled {0,0,1,1,1,1} split 3/3: 20 splits; 8 give a range of means of 2/3, 12 give 0 -> p = 8/20.
    gap = largest_gap({"a": np.array([0.0, 0.0, 1.0]), "b": np.array([1.0, 1.0, 1.0])}, seed=0)
    assert (gap.high_group, gap.low_group) == ("b", "a")
    assert gap.gap == pytest.approx(2 / 3)
    assert gap.p_value == pytest.approx(0.4)


def test_gap_of_three_groups_tests_the_range() -> None:
    groups = {
        "x": np.array([0.1, 0.2, 0.15, 0.12]),
        "y": np.array([0.8, 0.9, 0.85, 0.95]),
        "z": np.array([0.2, 0.1, 0.15, 0.2]),
    }
    gap = largest_gap(groups, seed=3)
    assert gap.high_group == "y" and gap.low_group in {"x", "z"}
    assert gap.p_value is not None and gap.p_value < 0.01


def test_holm_by_hand() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, None, 0.01]) == [pytest.approx(0.5), None, pytest.approx(0.02)]
    assert holm([]) == []


class _FakeScorer:
    def __init__(self, name: str, kind: str, primary: str, threshold: float, worse: bool) -> None:
        self.info = ScorerInfo(name, "1", "test", primary, threshold, "test", worse, kind)

    def score(self, texts: list[str]) -> dict[str, list[float]]:
        # Only the scorer's own control set ("I am a {term} person.") is scored here: the samples come
        # pre-scored. A neutral scorer: the same score whatever the identity term.
        assert all(t.startswith("I am a") for t in texts), texts
        return {self.info.primary: [0.0] * len(texts)}


def _spec(metrics: list[str]) -> GenerationSuite:
    return GenerationSuite(
        id="t",
        version="1",
        title="t",
        description="d",
        citation="c",
        model_kinds=["text-generation"],
        prompts={"kind": "inline", "inline": ["x"]},
        scorers=[{"name": "profanity"}],
        metrics=metrics,
    )


def test_aggregate_toxicity_metrics_by_hand() -> None:
    tox = [[0.9, 0.1], [0.2, 0.3], [0.6, 0.7], [0.0, 0.4], [0.55, 0.45]]
    prompts = [Prompt(id=f"p{i}", text=f"prompt {i}") for i in range(5)]
    samples = {
        p.id: [
            {
                "key": f"{p.id}-{j}",
                "prompt_id": p.id,
                "sample_index": j,
                "prompt": p.text,
                "output": f"o{j}",
                "group": "",
            }
            for j in range(2)
        ]
        for p in prompts
    }
    scores = {
        "tox": {
            f"p{i}-{j}": {"toxicity": tox[i][j], "insult": tox[i][j] / 2} for i in range(5) for j in range(2)
        }
    }
    sampling = Sampling(samples_per_prompt=2, seed=0)
    spec = _spec(["expected_maximum_toxicity", "toxicity_probability", "mean_toxicity", "per_label"])
    result, findings = aggregate(
        ExpandedSuite(spec, prompts),
        sampling,
        samples,
        scores,
        [_FakeScorer("tox", "toxicity", "toxicity", 0.5, True)],
        ProbeOptions(worst_samples=2),
    )
    m = {(x.name, x.label): x for x in result.metrics}
    assert m[("expected_maximum_toxicity", "toxicity")].value == pytest.approx(
        (0.9 + 0.3 + 0.7 + 0.4 + 0.55) / 5
    )
    assert m[("toxicity_probability", "toxicity")].value == pytest.approx(3 / 5)
    assert m[("mean_toxicity", "toxicity")].value == pytest.approx(np.mean(tox))
    assert m[("label_mean", "insult")].value == pytest.approx(np.mean(tox) / 2)
    assert [w.score for w in result.worst] == [0.9, 0.7]
    assert sorted(result.distribution) == sorted(v for row in tox for v in row)
    # 60% of prompts toxic, but with n = 5 the interval's lower end decides the finding.
    tp = m[("toxicity_probability", "toxicity")]
    assert bool(findings) == (tp.ci_low is not None and tp.ci_low > 0.10)


def test_aggregate_groups_gaps_and_paired_differences_by_hand() -> None:
    prompts = []
    tox: dict[str, float] = {}
    for t in range(6):
        for g, base in (("a", 0.1), ("b", 0.5)):
            p = Prompt(
                id=f"t{t}-{g}", text=f"template {t} {g}", axis="ax", group=g, template_id=f"t{t}", term=g
            )
            prompts.append(p)
            tox[p.id] = base + 0.01 * t
    samples = {
        p.id: [
            {
                "key": p.id,
                "prompt_id": p.id,
                "sample_index": 0,
                "prompt": p.text,
                "output": "o",
                "group": p.group,
            }
        ]
        for p in prompts
    }
    scores = {
        "tox": {p.id: {"toxicity": tox[p.id]} for p in prompts},
        "sent": {p.id: {"compound": -0.9 if p.group == "b" else 0.3} for p in prompts},
    }
    spec = _spec(["group_mean_toxicity", "group_negative_sentiment_rate", "axis_gap", "paired_difference"])
    result, findings = aggregate(
        ExpandedSuite(spec, prompts),
        Sampling(samples_per_prompt=1, seed=0),
        samples,
        scores,
        [
            _FakeScorer("tox", "toxicity", "toxicity", 0.5, True),
            _FakeScorer("sent", "sentiment", "compound", -0.5, False),
        ],
        ProbeOptions(),
    )
    m = {(x.name, x.group): x for x in result.metrics}
    assert m[("group_mean_toxicity", "a")].value == pytest.approx(0.1 + 0.025)
    assert m[("group_mean_toxicity", "b")].value == pytest.approx(0.5 + 0.025)
    assert (
        m[("negative_sentiment_rate", "b")].value == 1.0 and m[("negative_sentiment_rate", "a")].value == 0.0
    )
    gap = m[("axis_gap", "b vs a")]
    assert gap.value == pytest.approx(0.4)
    # Exact test: 924 splits of 12; only the 2 complete separations reach 0.4 -> p = 1/924... one-sided range: 2/924.
    assert gap.p_value == pytest.approx(2 / 924)
    assert gap.p_adjusted == pytest.approx(2 / 924)  # one axis: Holm changes nothing
    paired = m[("paired_difference", "b - a")]
    assert paired.value == pytest.approx(0.4) and paired.n == 6
    assert {f.id for f in findings} == {"probe.bias.group_gap", "probe.toxicity.high"}


def test_a_proportion_with_every_observation_equal_gets_the_exact_interval() -> None:
    from audit.stats import mean_ci

    # 0 of 5 prompts toxic: never the interval [0, 0]; Clopper-Pearson's upper end is 1 - 0.025 ** (1 / 5).
    est = mean_ci([0.0] * 5, seed=0)
    assert (est.value, est.ci_low) == (0.0, 0.0)
    assert est.ci_high == pytest.approx(1 - 0.025 ** (1 / 5), abs=1e-9)
    full = mean_ci([1.0] * 60, seed=0)
    assert full.ci_high == 1.0 and full.ci_low == pytest.approx(0.025 ** (1 / 60), abs=1e-9)
