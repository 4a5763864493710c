"""Token-budget batches: packing by hand, every text once, memory bounded, scores unchanged by the batching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audit.score.batching import budget_batches, default_token_budget, fixed_batches, padded_tokens


def test_packing_worked_by_hand() -> None:
    lengths = np.array([5, 100, 7, 50, 6, 200])
    batches = budget_batches(lengths, budget=210)
    # Sorted: 5 (0), 6 (4), 7 (2), 50 (3) -> 50 x 4 = 200 <= 210; adding 100 would make 100 x 5 = 500.
    assert [b.tolist() for b in batches] == [[0, 4, 2, 3], [1], [5]]
    assert padded_tokens(lengths, batches) == [200, 100, 200]
    assert [b.tolist() for b in budget_batches(np.array([300, 2]), budget=100)] == [
        [1],
        [0],
    ]  # alone if too long
    assert [len(b) for b in budget_batches(np.full(10, 3), budget=1000, max_texts=4)] == [4, 4, 2]
    assert [b.tolist() for b in fixed_batches(lengths, 4)] == [[0, 4, 2, 3], [1, 5]]
    with pytest.raises(ValueError):
        budget_batches(lengths, budget=0)


def test_every_text_once_and_memory_bounded() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        lengths = rng.integers(1, 513, size=int(rng.integers(1, 400)))
        budget = int(rng.integers(64, 20000))
        batches = budget_batches(lengths, budget)
        flat = np.concatenate(batches)
        assert sorted(flat.tolist()) == list(range(len(lengths)))
        for b, cost in zip(batches, padded_tokens(lengths, batches), strict=True):
            assert cost <= budget or len(b) == 1
        # Within a batch the texts are of neighbouring lengths (sorted): no short text padded to a long one
        # unless they fit together.
        ordered = np.concatenate([lengths[b] for b in batches])
        assert (np.diff(ordered) >= 0).all()


def test_budget_per_device() -> None:
    assert default_token_budget("cpu") == 2048
    assert default_token_budget("cuda:1") == default_token_budget("cuda") > default_token_budget("cpu")
    assert default_token_budget("unknown") == default_token_budget("cpu")


def _record_batches(engine: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    shapes: list[tuple[int, int]] = []
    real = engine.logits

    def logits(batch: list[str], int8: bool = False) -> Any:
        enc = engine.tokenizer(batch, truncation=True, max_length=engine.max_length, padding=True)
        shapes.append((len(batch), len(enc["input_ids"][0])))
        return real(batch, int8)

    monkeypatch.setattr(engine, "logits", logits)
    return shapes


@pytest.mark.slow
def test_detoxify_scores_do_not_depend_on_the_budget(
    tiny_detoxify: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detoxify import Detoxify

    from audit.score.detoxify import DetoxifyScorer

    words = [
        "you",
        "are",
        "an",
        "idiot",
        "what",
        "a",
        "wonderful",
        "day",
        "it",
        "is",
        "hello",
        "the",
        "doctor",
        "walked",
        "in",
        "and",
        "said",
    ]
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 120)))) for _ in range(60)]
    small = DetoxifyScorer(checkpoint=str(tiny_detoxify), token_budget=256)
    shapes = _record_batches(small.engine(), monkeypatch)
    ours = small.score(texts)
    assert all(n * length <= 256 for n, length in shapes if n > 1)
    assert len(shapes) > 60 * 40 // 256  # many small batches, not a fixed count
    big = DetoxifyScorer(checkpoint=str(tiny_detoxify), token_budget=65536).score(texts)
    direct = Detoxify(
        checkpoint=str(tiny_detoxify / "tiny-detoxify.ckpt"), huggingface_config_path=str(tiny_detoxify)
    )
    for label in ours:
        assert ours[label] == pytest.approx(big[label], abs=1e-5)
    for i in (0, 17, 59):
        for label, value in direct.predict(texts[i]).items():
            assert ours[label][i] == pytest.approx(value, abs=1e-5)


@pytest.mark.slow
def test_hf_classifier_matches_the_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hf-classifier's own batching gives the text-classification pipeline's probabilities."""
    from models import build_tiny_bert
    from transformers import pipeline

    from audit.score.classifier import HFClassifierScorer

    folder = build_tiny_bert(tmp_path / "cls", "cls")
    texts = [
        "what a wonderful day",
        "you are an idiot and I hate this",
        "hello",
        "the doctor said hello " * 9,
    ] * 3
    scorer = HFClassifierScorer(model=str(folder), label="negative", token_budget=64)
    shapes = _record_batches(scorer.engine(), monkeypatch)
    ours = scorer.score(texts)["negative"]
    pipe = pipeline("text-classification", model=str(folder), top_k=None, truncation=True)
    want = [next(d["score"] for d in row if d["label"] == "negative") for row in pipe(texts)]
    assert ours == pytest.approx(want, abs=1e-5)
    assert all(n * length <= 64 for n, length in shapes if n > 1)
    assert shapes == sorted(shapes, key=lambda s: s[1])  # sorted by length: the longest texts come last


def test_prompt_batches_by_hand() -> None:
    from audit.sample.hf_batch import prompt_batches

    # (longest + 4 new) x 2 samples x prompts <= 60: [3, 5] -> 9 x 2 x 2 = 36; adding 10 -> 14 x 2 x 3 = 84.
    assert prompt_batches([3, 5, 10, 2, 40], max_prompts=8, budget=60, samples=2, new_tokens=4) == [
        [0, 1],
        [2, 3],
        [4],
    ]
    assert prompt_batches([1] * 7, max_prompts=3, budget=10**6, samples=5, new_tokens=4) == [
        [0, 1, 2],
        [3, 4, 5],
        [6],
    ]


@pytest.mark.slow
def test_hf_cross_prompt_batches_on_cpu(tiny_gpt2: Path) -> None:
    """Plumbing only (no GPU here): left padding keeps greedy outputs equal to per-prompt ones."""
    from audit.config import Sampling
    from audit.sample.hf import HFBackend
    from audit.suites import Prompt

    prompts = [
        Prompt(f"p{i}", text) for i, text in enumerate(["Hello", "the weather is nice and", "my friend"] * 2)
    ]
    seeds = {p.id: 100 + i for i, p in enumerate(prompts)}
    per_prompt = HFBackend({}, model_source=str(tiny_gpt2))
    batched = HFBackend({"batch_prompts": "4", "batch_tokens": "4096"}, model_source=str(tiny_gpt2))
    assert "batch_prompts" not in per_prompt.settings()
    assert batched.settings()["batch_prompts"] == 4  # batched samples are keyed apart
    greedy = Sampling(samples_per_prompt=1, max_new_tokens=6, temperature=0.0)
    one = dict(per_prompt.generate_many("s", prompts, greedy, seeds))
    many = dict(batched.generate_many("s", prompts, greedy, seeds))
    assert {p.id: v for p, v in many.items()} == {p.id: v for p, v in one.items()}
    sampled = Sampling(samples_per_prompt=3, max_new_tokens=6, temperature=1.0, top_p=0.9)
    first = {p.id: v for p, v in batched.generate_many("s", prompts, sampled, seeds)}
    again = {p.id: v for p, v in batched.generate_many("s", prompts, sampled, seeds)}
    assert first == again and all(len(v) == 3 for v in first.values())  # same batches, same samples
