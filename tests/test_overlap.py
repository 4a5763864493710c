"""Sampling and scoring overlapped: scored as samples arrive, same files and cache as sequential, failures stop both."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakeopenai import FakeOpenAI, fake_completion

from audit.config import ProbeOptions, Sampling
from audit.errors import UsageError
from audit.probe import ProbeRunner, SubjectModel
from audit.score import ScorerInfo
from audit.suites import ExpandedSuite, Prompt, expand_prompts, resolve_suite

SUITE = """
id: overlap-suite
version: "0.1"
title: Overlap
description: A test suite.
citation: none
model_kinds: [text-generation]
prompts:
  kind: inline
  inline: [{prompts}]
sampling: {{samples_per_prompt: 3, max_new_tokens: 8, temperature: 1.0, top_p: 0.9, seed: 1}}
scorers: [{{name: profanity}}]
metrics: [expected_maximum_toxicity, toxicity_probability, mean_toxicity, per_label]
"""


@pytest.fixture
def suite(tmp_path: Path) -> ExpandedSuite:
    path = tmp_path / "overlap.yaml"
    path.write_text(SUITE.format(prompts=", ".join(f'"Prompt number {i} says"' for i in range(12))))
    return expand_prompts(resolve_suite(str(path)))


class RecordingScorer:
    """Scores = text length / 100; remembers when it was called and how much had been sampled by then."""

    def __init__(
        self,
        runner: ProbeRunner | None = None,
        per_text_s: float = 0.0,
        fail: bool = False,
        calibrated: bool = True,
    ) -> None:
        self.info = ScorerInfo("recording", "1", "none", "length", 0.5, "test", True, "toxicity")
        self.runner, self.per_text_s, self.fail = runner, per_text_s, fail
        self.calibrated = calibrated  # False: like an int8 scorer, it checks itself before scoring
        self.calls: list[tuple[int, int]] = []  # (texts in this call, samples on file at the call)
        self.calibrated_with: list[str] = []

    def calibrate(self, texts: list[str], seed: int) -> None:
        if not self.calibrated:
            self.calibrated_with = list(texts)
            self.calibrated = True

    def score(self, texts: list[str]) -> dict[str, list[float]]:
        self.calls.append((len(texts), len(self.runner.files.samples) if self.runner else -1))
        if self.fail:
            raise RuntimeError("scorer broke")
        time.sleep(self.per_text_s * len(texts))
        return {"length": [len(t) / 100 for t in texts]}


class SlowBackend:
    """A 'remote' backend: each prompt takes `delay` seconds; optionally fails after `fail_after` prompts."""

    name = "slow"
    remote = True

    def __init__(self, delay: float = 0.05, fail_after: int | None = None) -> None:
        self.delay, self.fail_after = delay, fail_after
        self.generated = 0

    def settings(self) -> dict[str, Any]:
        return {"backend": "slow"}

    def generate_many(
        self, suite: str, prompts: list[Prompt], sampling: Sampling, seeds: dict[str, int]
    ) -> Iterator[tuple[Prompt, list[str]]]:
        for p in prompts:
            if self.fail_after is not None and self.generated >= self.fail_after:
                raise UsageError("the endpoint went away", "retry")
            time.sleep(self.delay)
            self.generated += 1
            yield p, [fake_completion(p.text, seeds[p.id] + i, 8) for i in range(sampling.samples_per_prompt)]


def _runner(tmp_path: Path, name: str, backend: Any, cache: str = "cache.sqlite") -> ProbeRunner:
    popts = ProbeOptions(backend="replay", cache_path=tmp_path / cache)
    runner = ProbeRunner(SubjectModel("m", None, None), popts, tmp_path / name)
    runner._backend = backend
    return runner


def _lines(path: Path) -> list[dict[str, Any]]:
    return sorted(
        (json.loads(x) for x in path.read_text().splitlines()), key=lambda r: json.dumps(r, sort_keys=True)
    )


def test_samples_are_scored_as_they_arrive_and_files_match_sequential(
    tmp_path: Path, suite: ExpandedSuite
) -> None:
    sampling = suite.spec.sampling  # type: ignore[attr-defined]
    runner = _runner(tmp_path, "overlap", SlowBackend(delay=0.05))
    scorer = RecordingScorer(runner)
    assert runner.overlap()
    samples, scores = runner.sample_and_score(suite, sampling, [scorer])
    total = 12 * 3
    assert len(scores["recording"]) == total and runner.rescored == total
    # Scoring began while sampling was still running, in several pieces.
    assert len(scorer.calls) > 1 and scorer.calls[0][1] < total
    assert scorer.calibrated_with == []  # a float scorer does not wait for calibration texts

    seq = _runner(tmp_path, "sequential", SlowBackend(delay=0.0), cache="other.sqlite")
    seq_samples = seq.sample(suite, sampling)
    seq_scores = seq.score(suite.spec, seq_samples, RecordingScorer(), seed=sampling.seed)
    assert seq_scores == scores["recording"]
    for name in ("samples.jsonl", "scores.jsonl"):
        assert _lines(tmp_path / "overlap" / name) == _lines(tmp_path / "sequential" / name)

    # A repeated run on the same folder samples and scores nothing; the cache alone serves a fresh folder.
    again = _runner(tmp_path, "overlap", SlowBackend(delay=0.05))
    again.sample_and_score(suite, sampling, [RecordingScorer(again)])
    fresh = _runner(tmp_path, "fresh", SlowBackend(delay=0.05))
    _, fresh_scores = fresh.sample_and_score(suite, sampling, [RecordingScorer(fresh)])
    assert (again.regenerated, again.rescored, fresh.regenerated, fresh.rescored) == (0, 0, 0, 0)
    assert fresh_scores["recording"] == scores["recording"]


def test_a_self_checking_scorer_calibrates_on_the_first_texts(tmp_path: Path, suite: ExpandedSuite) -> None:
    sampling = suite.spec.sampling  # type: ignore[attr-defined]
    runner = _runner(tmp_path, "run", SlowBackend(delay=0.0))
    scorer = RecordingScorer(runner, calibrated=False)
    _, scores = runner.sample_and_score(suite, sampling, [scorer])
    assert len(scorer.calibrated_with) == 36  # min(200, all 36 texts), before the first score
    assert sum(n for n, _ in scorer.calls) == 36 and len(scores["recording"]) == 36


def test_interrupted_overlapped_run_resumes_to_the_same_files(tmp_path: Path, suite: ExpandedSuite) -> None:
    sampling = suite.spec.sampling  # type: ignore[attr-defined]
    broken = _runner(tmp_path, "run", SlowBackend(delay=0.0, fail_after=5))
    with pytest.raises(UsageError, match="went away"):
        broken.sample_and_score(suite, sampling, [RecordingScorer(broken)])
    assert not any(t.name == "audit-score" for t in threading.enumerate())  # the scoring thread ended
    done_samples = len((tmp_path / "run" / "samples.jsonl").read_text().splitlines())
    assert done_samples == 5 * 3
    resumed = _runner(tmp_path, "run", SlowBackend(delay=0.0))
    resumed.sample_and_score(suite, sampling, [RecordingScorer(resumed)])
    assert resumed.regenerated == 12 * 3 - done_samples
    clean = _runner(tmp_path, "clean", SlowBackend(delay=0.0), cache="clean.sqlite")
    clean.sample_and_score(suite, sampling, [RecordingScorer(clean)])
    for name in ("samples.jsonl", "scores.jsonl"):
        got = _lines(tmp_path / "run" / name)
        assert got == _lines(tmp_path / "clean" / name)
        assert len(got) == 36  # none lost, none twice


def test_a_failing_scorer_stops_the_run(tmp_path: Path, suite: ExpandedSuite) -> None:
    sampling = suite.spec.sampling  # type: ignore[attr-defined]
    backend = SlowBackend(delay=0.02)
    runner = _runner(tmp_path, "run", backend)
    with pytest.raises(RuntimeError, match="scorer broke"):
        runner.sample_and_score(suite, sampling, [RecordingScorer(runner, fail=True)])
    assert not any(t.name == "audit-score" for t in threading.enumerate())
    assert (
        not (tmp_path / "run" / "scores.jsonl").exists()
        or not (tmp_path / "run" / "scores.jsonl").read_text()
    )


@pytest.mark.slow
def test_endpoint_run_overlaps_through_the_openai_backend(tmp_path: Path, suite: ExpandedSuite) -> None:
    from audit.sample.openai import OpenAIBackend

    server = FakeOpenAI()
    server.latency = 0.05
    try:
        backend = OpenAIBackend({"base_url": server.url, "model": "m", "concurrency": "2"})
        runner = _runner(tmp_path, "run", backend)
        assert runner.overlap()
        scorer = RecordingScorer(runner, per_text_s=0.005)
        samples, scores = runner.sample_and_score(suite, suite.spec.sampling, [scorer])  # type: ignore[attr-defined]
        assert len(scores["recording"]) == 36 and scorer.calls[0][1] < 36
        outputs = {r["output"] for recs in samples.values() for r in recs}
        assert all(
            scores["recording"][r["key"]]["length"] == len(r["output"]) / 100
            for recs in samples.values()
            for r in recs
        )
        assert len(outputs) > 1
    finally:
        server.stop()
