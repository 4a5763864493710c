"""The bias suite library: every metric against a reference implementation or a case worked by hand,
and every suite end to end on a tiny model of its kind."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audit.config import AuditOptions, ProbeOptions
from audit.methods.bbq import bias_scores, is_biased, match_span
from audit.methods.crows import metric
from audit.methods.honest import (
    honest_score,
    hurtful_sentence_counts,
    hurtful_word_counts,
    load_hurtlex,
    load_templates,
)
from audit.methods.invariance import invariance
from audit.pipeline import run_audit, write_report
from audit.sample.hf import HFModel, MaskedLMScorer, shared_positions
from audit.suites import Prompt, read_bold

pytest.importorskip("torch", reason="the bias suites need torch ([models] extra)")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from models import build_tiny_bert, build_tiny_gpt2

    root = tmp_path_factory.mktemp("tiny-kinds")
    return {k: build_tiny_bert(root / k, k) for k in ("mlm", "cls", "qa", "tok")} | {
        "gpt2": build_tiny_gpt2(root / "gpt2")
    }


@pytest.fixture
def cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_AUDIT_CACHE", str(tmp_path / "mac"))


# ------------------------------------------------------------------ CrowS-Pairs
def test_shared_positions_by_hand() -> None:
    # [CLS] the poor are lazy [SEP] vs [CLS] the rich are lazy [SEP]: all but position 2 are shared.
    t1, t2 = shared_positions([101, 5, 7, 9, 11, 102], [101, 5, 8, 9, 11, 102])
    assert (t1, t2) == ([0, 1, 3, 4, 5], [0, 1, 3, 4, 5])
    t1, t2 = shared_positions([101, 5, 6, 9, 102], [101, 5, 9, 102])  # an insertion shifts the alignment
    assert (t1, t2) == ([0, 1, 3, 4], [0, 1, 2, 3])


def test_crows_metric_by_hand() -> None:
    # Pair 1 prefers sent_more, pair 2 sent_less, pair 3 is a tie (counts for neither): 1/3 = 33.3%.
    assert metric([-10.0, -12.0, -5.0], [-11.0, -11.0, -5.0]) == [1.0, 0.0, 0.0]


def test_pseudo_log_likelihood_matches_one_mask_at_a_time(tiny: dict[str, Path]) -> None:
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    scorer = MaskedLMScorer(HFModel(str(tiny["mlm"]), batch_size=3))
    ids = scorer.encode("the doctor walked in and said hello to everyone there")
    positions = list(range(1, len(ids) - 1))
    tok = AutoTokenizer.from_pretrained(str(tiny["mlm"]))
    model = AutoModelForMaskedLM.from_pretrained(str(tiny["mlm"])).eval()
    naive = 0.0
    for p in positions:
        masked = list(ids)
        masked[p] = tok.mask_token_id
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([masked])).logits[0, p]
        naive += float(torch.log_softmax(logits, -1)[ids[p]])
    assert scorer.pll(ids, positions) == pytest.approx(naive, abs=1e-4)


# ------------------------------------------------------------------ HONEST
def _patch_hurtlex(monkeypatch: pytest.MonkeyPatch, local: Path) -> None:
    import pandas as pd

    real = pd.read_csv

    def read_csv(path: Any, *a: Any, **kw: Any) -> Any:
        if isinstance(path, str) and path.startswith("https://raw.githubusercontent.com/MilaNLProc/hurtlex/"):
            return real(local, *a, **kw)
        return real(path, *a, **kw)

    monkeypatch.setattr(pd, "read_csv", read_csv)


def test_honest_score_agrees_with_the_honest_package(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    honest = pytest.importorskip("honest.honest", reason="the honest reference package is not installed")
    hurtlex = shared_data / "probes/honest/hurtlex/hurtlex_EN.tsv"
    _patch_hurtlex(monkeypatch, hurtlex)
    evaluator = honest.HonestEvaluator("en")
    words = load_hurtlex(hurtlex)
    assert words == evaluator.words
    templates = load_templates(shared_data / "probes/honest/binary/en_template.tsv")
    lexicon = sorted(words)
    rng = np.random.default_rng(0)
    vocab = lexicon[:300] + ["doctor", "teacher", "nurse", "writer", "farmer", "cook", "lawyer", "pilot"] * 40
    for k in (1, 5, 20):
        preds = [[str(w) for w in rng.choice(vocab, size=k)] for _ in templates]
        masked = {t["template_masked"]: dict(t) for t in templates}
        ref = evaluator.honest(preds, masked)
        ours = honest_score(hurtful_word_counts(preds, words), k)
        assert ours == pytest.approx(ref, abs=1e-12)
        # Per identity category: the reference on that category's templates alone.
        for cat in ("female", "male"):
            idx = [i for i, t in enumerate(templates) if t["category"] == cat]
            sub = {templates[i]["template_masked"]: dict(templates[i]) for i in idx}
            ref_c = evaluator.honest([preds[i] for i in idx], sub)
            assert honest_score(hurtful_word_counts([preds[i] for i in idx], words), k) == pytest.approx(
                ref_c, abs=1e-12
            )
    # Sentence completions (generative models): a sentence is hurtful when any word is.
    sentences = [
        [f"is a {rng.choice(vocab)} and a {rng.choice(vocab)}." for _ in range(5)] for _ in templates
    ]
    masked = {t["template_masked"]: dict(t) for t in templates}
    assert honest_score(hurtful_sentence_counts(sentences, words), 5) == pytest.approx(
        evaluator.honest(sentences, masked), abs=1e-12
    )


# ------------------------------------------------------------------ BBQ
def _ex(cond: str, polarity: str, label: int, target: int = 0) -> dict[str, Any]:
    tags = ["nonOld", "nonOld", "unknown"]
    tags[target] = "old"
    return {
        "context_condition": cond,
        "question_polarity": polarity,
        "label": label,
        "category": "Age",
        "answer_info": {f"ans{i}": [f"a{i}", tags[i]] for i in range(3)},
        "additional_metadata": {"stereotyped_groups": ["old"]},
    }


def test_bbq_bias_scores_by_hand() -> None:
    # Disambiguated: 4 examples, predictions 0 (target), 0, 1, 2 (unknown).
    # neg q + target -> biased; nonneg q + target -> not biased; neg q + other -> not biased; unknown -> ignored.
    dis = [
        _ex("disambig", "neg", 0),
        _ex("disambig", "nonneg", 1),
        _ex("disambig", "neg", 1),
        _ex("disambig", "neg", 0),
    ]
    dis_pred = [0, 0, 1, 2]
    # Ambiguous (label 2 = unknown is correct): predictions 0 (biased, neg), 2 (correct), 1 (biased: nonneg q -> other group).
    amb = [_ex("ambig", "neg", 2), _ex("ambig", "neg", 2), _ex("ambig", "nonneg", 2)]
    amb_pred = [0, 2, 1]
    assert [is_biased(e, p) for e, p in zip(dis, dis_pred, strict=True)] == [True, False, False, None]
    s = bias_scores(dis + amb, dis_pred + amb_pred)
    assert s["accuracy_disambig"] == pytest.approx(2 / 4)  # examples 1 and 3 are right
    assert s["s_dis"] == pytest.approx(2 * (1 / 3) - 1)  # 1 biased of 3 non-unknown answers
    assert s["accuracy_ambig"] == pytest.approx(1 / 3)
    # S_DIS' on ambiguous: 2 biased of 2 non-unknown = 1.0; S_AMB = (1 - 1/3) * 1.0.
    assert s["s_amb"] == pytest.approx((1 - 1 / 3) * 1.0)


def test_bbq_span_matching() -> None:
    assert match_span("the grandfather", ["The grandfather", "The grandson", "Can't be determined"]) == 0
    assert match_span("grandson was", ["The grandfather", "The grandson", "Can't be determined"]) == 1


# ------------------------------------------------------------------ invariance
def test_token_outcomes_ignore_the_identity_term() -> None:
    from audit.methods.invariance import token_outcomes

    prompts = [
        Prompt(id="a", text="My Muslim friend Anna", term="Muslim"),
        Prompt(id="b", text="My Jewish friend Anna", term="Jewish"),
    ]
    tagged = [
        [("My", "O", 0.9), ("Muslim", "B-ORG", 0.6), ("friend", "O", 0.8), ("Anna", "B-PER", 0.7)],
        [("My", "O", 0.9), ("Jewish", "O", 0.5), ("friend", "O", 0.8), ("Anna", "B-PER", 0.7)],
    ]
    mean = pytest.approx((0.9 + 0.8 + 0.7) / 3)
    assert token_outcomes(prompts, tagged) == [{"O O B-PER": mean}, {"O O B-PER": mean}]


def test_invariance_by_hand() -> None:
    prompts = [
        Prompt(id=f"t{t}-{g}", text="x", axis="ax", group=g, template_id=f"t{t}")
        for t in range(2)
        for g in "abc"
    ]
    probs = [
        {"pos": 0.9, "neg": 0.1},
        {"pos": 0.8, "neg": 0.2},
        {"pos": 0.3, "neg": 0.7},  # t0: c flips
        {"pos": 0.6, "neg": 0.4},
        {"pos": 0.7, "neg": 0.3},
        {"pos": 0.8, "neg": 0.2},
    ]  # t1: no flips
    flips, deltas, axis = invariance(prompts, probs)
    assert flips == {"a": [0.0, 0.0], "b": [0.0, 0.0], "c": [1.0, 0.0]}
    assert deltas["a"] == pytest.approx([0.9 - (0.9 + 0.8 + 0.3) / 3, 0.6 - 0.7])
    assert axis == {"a": "ax", "b": "ax", "c": "ax"}


# ------------------------------------------------------------------ BOLD
def test_bold_prompts_by_domain_and_group(shared_data: Path) -> None:
    prompts = read_bold(shared_data / "probes/bold")
    domains = {p.axis for p in prompts}
    assert domains == {"gender", "political_ideology", "profession", "race", "religious_ideology"}
    gender = {p.group for p in prompts if p.axis == "gender"}
    assert gender == {"American_actors", "American_actresses"}
    raw = json.loads((shared_data / "probes/bold/gender_prompt.json").read_text())
    assert sum(p.axis == "gender" for p in prompts) == sum(len(v) for g in raw.values() for v in g.values())


# ------------------------------------------------------------------ end to end, each suite on a model of its kind
@pytest.mark.slow
@pytest.mark.parametrize(
    "model,suites,data,extra",
    [
        (
            "mlm",
            ["crows-pairs", "honest"],
            {
                "crows-pairs": "crows_pairs/crows_pairs_anonymized.csv",
                "hurtlex": "honest/hurtlex/hurtlex_EN.tsv",
                "honest-templates": "honest/binary/en_template.tsv",
            },
            {},
        ),
        (
            "gpt2",
            ["bold", "honest", "bbq"],
            {
                "bold": "bold",
                "hurtlex": "honest/hurtlex/hurtlex_EN.tsv",
                "honest-templates": "honest/binary/en_template.tsv",
                "bbq": "bbq",
            },
            {"scorers": ["profanity", "sentiment"]},
        ),
        ("qa", ["bbq"], {"bbq": "bbq"}, {"backend_options": {"kind": "question-answering"}}),
        ("cls", ["classifier-invariance"], {}, {"limit": None}),
        ("tok", ["classifier-invariance"], {}, {"limit": None}),
    ],
)
def test_suite_end_to_end(
    model: str,
    suites: list[str],
    data: dict[str, str],
    extra: dict[str, Any],
    tiny: dict[str, Path],
    shared_data: Path,
    tmp_path: Path,
    cache_env: None,
) -> None:
    settings: dict[str, Any] = {"limit": 40, "samples": 1} | extra
    popts = ProbeOptions(
        suites=suites, data={k: str(shared_data / "probes" / v) for k, v in data.items()}, **settings
    )
    report, out = run_audit(
        str(tiny[model]), AuditOptions(fetch_datasets=False), popts, out_dir=tmp_path / "o"
    )
    write_report(report, out, ["json", "html", "pdf", "md"])
    assert [p.suite for p in report.probes] == suites
    for p in report.probes:
        assert not p.skipped and p.metrics
        assert any(m.ci_low is not None for m in p.metrics), p.suite
    text = subprocess.run(["pdftotext", str(out / "report.pdf"), "-"], capture_output=True, text=True).stdout
    for p in report.probes:
        assert f"Probe: {p.title}" in text


@pytest.mark.slow
def test_task_aware_selection_lists_what_was_skipped(
    tiny: dict[str, Path], shared_data: Path, tmp_path: Path, cache_env: None
) -> None:
    popts = ProbeOptions(
        limit=20, data={"crows-pairs": str(shared_data / "probes/crows_pairs/crows_pairs_anonymized.csv")}
    )
    report, _ = run_audit(str(tiny["mlm"]), AuditOptions(fetch_datasets=False), popts, out_dir=tmp_path / "o")
    by = {p.suite: p for p in report.probes}
    assert not by["crows-pairs"].skipped and by["crows-pairs"].metrics
    assert "--data hurtlex=PATH" in by["honest"].skipped  # fits the kind, but its data was not given
    assert by["embedding-association"].skipped.startswith("not for fill-mask models")
    assert by["toxicity-continuation"].skipped.startswith("not for fill-mask models")
    assert len(report.probes) == 8
