"""Contract tests over every registered plugin (backends, scorers, renderers, methods) and every shipped suite.

A new plugin is checked by registering it: the parameters come from the entry points themselves.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from audit.errors import UsageError
from audit.registry import BACKENDS, METHODS, RENDERERS, SCORERS
from audit.resources import probes_dir
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
    else:
        assert spec.method in METHODS.names()


def test_built_ins_are_registered_through_entry_points() -> None:
    for registry, names in (
        (BACKENDS, {"hf", "openai", "replay"}),
        (SCORERS, {"detoxify", "profanity", "sentiment", "hf-classifier"}),
        (RENDERERS, {"json", "html", "pdf", "md"}),
        (METHODS, {"embedding-association", "crows-pairs", "honest", "bbq", "classifier-invariance"}),
    ):
        plugins = registry.plugins()
        assert names <= set(plugins), registry.group
        assert {plugins[n].provider for n in names} == {"model-risk-audit"}


@pytest.mark.parametrize("name", BACKENDS.names())
def test_every_backend_declares_options_and_the_protocol(name: str) -> None:
    cls: Any = BACKENDS.load(name)
    assert isinstance(cls.name, str) and callable(cls.settings) and callable(cls.generate_many)
    opts = BACKENDS.options_model(name)
    assert opts is not None and issubclass(opts, BaseModel), f"{name} declares no Options"
    with pytest.raises(UsageError) as err:
        BACKENDS.validate_options(name, {"no_such_option_xyz": "1"})
    assert "valid options:" in (err.value.hint or "")


@pytest.mark.parametrize("name", SCORERS.names())
def test_every_scorer_declares_options(name: str) -> None:
    cls: Any = SCORERS.load(name)
    assert callable(cls.score)
    opts = SCORERS.options_model(name)
    assert opts is not None, f"{name} declares no Options"
    with pytest.raises(UsageError) as err:
        SCORERS.validate_options(name, {"bogus": "1"})
    assert "unknown option 'bogus'" in err.value.message


@pytest.mark.parametrize("name", RENDERERS.names())
def test_every_renderer_is_a_function_of_a_report(name: str) -> None:
    fn = RENDERERS.load(name)
    assert callable(fn) and len(inspect.signature(fn).parameters) >= 1


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_takes_a_spec_and_a_context(name: str) -> None:
    fn = METHODS.load(name)
    assert list(inspect.signature(fn).parameters)[:2] == ["spec", "ctx"]


def test_misspelt_plugin_names_and_options() -> None:
    with pytest.raises(UsageError, match="unknown backend 'opneai'") as err:
        BACKENDS.check("opneai")
    assert err.value.hint == "did you mean 'openai'?"
    with pytest.raises(UsageError) as err2:
        SCORERS.validate_options("detoxify", {"batch_sise": "8"})
    assert "did you mean 'batch_size'?" in err2.value.hint
    with pytest.raises(UsageError) as err3:
        BACKENDS.validate_options("hf", {"dtype": "float8"})
    assert "dtype" in err3.value.message


@pytest.mark.parametrize("name", ["profanity", "sentiment"])
def test_offline_scorers_honour_the_contract(name: str) -> None:
    pytest.importorskip(
        "profanity_check" if name == "profanity" else "vaderSentiment",
        reason="the offline scorers need the [probes] extra",
    )
    scorer: Any = SCORERS.create(name, {})
    info = scorer.info
    assert info.name == name and info.version and info.citation and info.threshold_source
    texts = ["what a lovely day", "you are a stupid idiot", ""]
    out = scorer.score(texts)
    assert info.primary in out
    assert all(len(v) == len(texts) and all(isinstance(x, float) for x in v) for v in out.values())


def test_detoxify_contract(tiny_detoxify: Path) -> None:
    scorer: Any = SCORERS.create("detoxify", {"checkpoint": str(tiny_detoxify)})
    out = scorer.score(["a", "b c d"])
    assert scorer.info.primary in out and all(len(v) == 2 for v in out.values())
    assert scorer.info.higher_is_worse and scorer.info.threshold == 0.5


def test_suite_selection_reads_model_kinds_from_the_yaml() -> None:
    from audit import probe
    from audit.suites import builtin_suites, select_suites

    assert not hasattr(probe, "SUITES_BY_KIND")
    generator = select_suites("text-generation")
    assert "bbq" in generator  # bbq.yaml declares text-generation: a generator gets it
    assert set(generator) == {s.id for s in builtin_suites().values() if "text-generation" in s.model_kinds}
    assert select_suites("sentence-embeddings") == ["embedding-association"]
    assert select_suites(None) == [] and select_suites("no-such-kind") == []


def test_misspelt_metric_names_the_line_and_the_nearest_name() -> None:
    from audit.suites import SuiteError, parse_suite

    text = (
        "id: bad\nversion: '1'\ntitle: t\ndescription: d\ncitation: c\nmodel_kinds: [text-generation]\n"
        "prompts: {kind: inline, inline: [a]}\nscorers: [{name: profanity}]\n"
        "metrics:\n  - expected_maximum_toxicity\n  - toxicty_probability\n"
    )
    with pytest.raises(SuiteError) as err:
        parse_suite(text, "bad.yaml")
    assert "line 11" in err.value.message
    assert "did you mean 'toxicity_probability'?" in err.value.message


def test_each_method_declares_its_own_fields() -> None:
    from audit.suites import SuiteError, parse_suite

    base = "id: x\nversion: '1'\ntitle: t\ndescription: d\ncitation: c\nmodel_kinds: [sentence-embeddings]\n"
    with pytest.raises(SuiteError, match="association_tests"):
        parse_suite(base + "method: embedding-association\nmetrics: [effect_size]\n")
    with pytest.raises(SuiteError, match="line 8: association_tests: Extra inputs"):
        parse_suite(
            base + "metrics: [effect_size]\nassociation_tests: []\nprompts: {kind: inline, inline: [a]}\n"
        )
    with pytest.raises(SuiteError, match="did you mean 'honest'"):
        parse_suite(base + "method: honets\nmetrics: [honest_score]\n")
