"""Tiny random models built in session fixtures: a GPT-2 generator and a Detoxify checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CORPUS = [
    "the model writes a short sentence about the weather today",
    "my neighbour is a kind person who likes to cook dinner",
    "the applicant was described as careful and hard working",
    "people often say that students are tired in the morning",
    "I asked my colleague about the project and she smiled",
    "the doctor walked in and said hello to everyone there",
    "you are an idiot and I hate this stupid thing so much",
    "what a wonderful day it is for a walk in the park",
] * 40


def build_tiny_gpt2(folder: Path) -> Path:
    """A 2-layer GPT-2 with a 400-token byte-level BPE: loads in ~2 s, generates in milliseconds."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"])
    bpe.save_model(str(folder))
    tok = GPT2TokenizerFast(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))
    tok.save_pretrained(str(folder))
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=len(tok),
        n_positions=128,
        n_layer=2,
        n_embd=64,
        n_head=2,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    GPT2LMHeadModel(cfg).save_pretrained(str(folder))
    (folder / "README.md").write_text(
        "---\nlicense: mit\ndatasets:\n- org/tiny-corpus\npipeline_tag: text-generation\n---\n# Tiny GPT-2\n\nA random test model.\n"
    )
    return folder


def build_tiny_detoxify(folder: Path, vocab_file: Path | None = None, **config: Any) -> Path:
    """A Detoxify checkpoint around a random BERT with its config and tokenizer beside it.

    Tiny by default (hidden 32, 2 layers, the test corpus as vocabulary); the benchmark passes a
    real vocabulary and BertConfig defaults for a bert-base-sized model.
    """
    import shutil

    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    if vocab_file is not None:
        shutil.copy(vocab_file, folder / "vocab.txt")
    else:
        words = sorted({w for line in CORPUS for w in line.split()})
        (folder / "vocab.txt").write_text(
            "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n"
        )
        config = {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "max_position_embeddings": 128,
            **config,
        }
    tok = BertTokenizer(
        vocab=str(folder / "vocab.txt"), model_max_length=config.get("max_position_embeddings", 512)
    )
    tok.save_pretrained(str(folder))
    labels = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
    cfg = BertConfig(vocab_size=tok.vocab_size, num_labels=len(labels), **config)
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg)
    cfg.save_pretrained(str(folder))
    args = {
        "model_type": str(folder),
        "model_name": "BertForSequenceClassification",
        "tokenizer_name": "BertTokenizer",
        "num_classes": len(labels),
    }
    ckpt = {
        "config": {"arch": {"args": args}, "dataset": {"args": {"classes": labels}}},
        "state_dict": model.state_dict(),
    }
    torch.save(ckpt, str(folder / "tiny-detoxify.ckpt"))
    (folder / "labels.json").write_text(json.dumps(labels))
    return folder


def build_tiny_bert(folder: Path, head: str) -> Path:
    """A tiny random BERT with a masked-LM ('mlm'), 3-label classification ('cls') or extractive QA ('qa') head."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    words = sorted({w for line in CORPUS for w in line.split()})
    (folder / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n"
    )
    tok = BertTokenizer(vocab=str(folder / "vocab.txt"), model_max_length=128)
    tok.save_pretrained(str(folder))
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=3,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2},
    )
    torch.manual_seed(0)
    from transformers import BertForQuestionAnswering

    if head == "qa":
        cfg.num_labels = 2  # start and end logits
        cfg.id2label, cfg.label2id = {0: "start", 1: "end"}, {"start": 0, "end": 1}

    from transformers import BertForTokenClassification

    if head == "tok":
        cfg.num_labels = 3
        cfg.id2label, cfg.label2id = {0: "O", 1: "B-PER", 2: "B-ORG"}, {"O": 0, "B-PER": 1, "B-ORG": 2}
    heads = {
        "mlm": BertForMaskedLM,
        "cls": BertForSequenceClassification,
        "qa": BertForQuestionAnswering,
        "tok": BertForTokenClassification,
    }
    model = heads[head](cfg)
    model.save_pretrained(str(folder))
    return folder
