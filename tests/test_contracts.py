"""Contract tests over every registered plugin and every shipped suite."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from audit.render import available_formats
from audit.resources import probes_dir
from audit.score import available_scorers, make_scorer
from audit.suites import load_suite_file

SUITES = sorted(probes_dir().glob("*.yaml"))


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_every_shipped_suite_validates(path: Path) -> None:
    spec = load_suite_file(path)
    assert spec.id == path.stem
    assert spec.citation and spec.description and spec.metrics
    if spec.method == "generation":
        assert spec.prompts is not None and spec.scorers
        assert spec.prompts.license, "a suite names the licence of its prompt set"


@pytest.mark.parametrize("name", ["profanity", "sentiment"])
def test_offline_scorers_honour_the_contract(name: str) -> None:
    scorer = make_scorer(name, {})
    info = scorer.info
    assert info.name == name and info.version and info.citation and info.threshold_source
    texts = ["what a lovely day", "you are a stupid idiot", ""]
    out = scorer.score(texts)
    assert info.primary in out
    assert all(len(v) == len(texts) and all(isinstance(x, float) for x in v) for v in out.values())


def test_every_registered_scorer_and_renderer_imports() -> None:
    for name, target in available_scorers().items():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), name
    for fmt, (target, filename) in available_formats().items():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), fmt
        assert filename.startswith("report.")


def test_detoxify_contract(tiny_detoxify: Path) -> None:
    scorer: Any = make_scorer("detoxify", {"checkpoint": str(tiny_detoxify)})
    out = scorer.score(["a", "b c d"])
    assert scorer.info.primary in out and all(len(v) == 2 for v in out.values())
    assert scorer.info.higher_is_worse and scorer.info.threshold == 0.5
