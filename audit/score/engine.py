"""The forward pass shared by the transformer scorers (Detoxify, hf-classifier).

Texts are scored in token-budget batches (`audit.score.batching`), in float with torch or, once
`enable_int8` has checked its agreement on a calibration subset, in int8 with ONNX Runtime
(`audit.score.quantize`). Results come back in the caller's order whatever the batching.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from audit.model import QuantizationFacts
from audit.score import quantize
from audit.score.batching import MAX_TEXTS, budget_batches, default_token_budget, token_lengths

log = logging.getLogger("audit")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


class SequenceClassifier:
    """A transformers sequence classifier scored in token-budget batches, in float or int8."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        activation: Literal["sigmoid", "softmax"],
        device: str = "cpu",
        token_budget: int | None = None,
        max_texts: int | None = None,
    ) -> None:
        self.model, self.tokenizer, self.activation = model.eval(), tokenizer, activation
        self.device = device
        self.token_budget = int(token_budget or default_token_budget(device))
        self.max_texts = int(max_texts or MAX_TEXTS)
        limits = [
            x
            for x in (
                getattr(model.config, "max_position_embeddings", None),
                getattr(tokenizer, "model_max_length", None),
            )
            if isinstance(x, int) and 0 < x < 1_000_000
        ]
        # RoBERTa-style position ids start after the padding index: two positions are not usable.
        offset = 2 if getattr(model.config, "model_type", "") in {"roberta", "xlm-roberta"} else 0
        self.max_length = min(limits) - offset if limits else 512
        accepted = set(inspect.signature(model.forward).parameters)
        produced = tokenizer(["x"], truncation=True)
        self.input_names = [
            n for n in ("input_ids", "attention_mask", "token_type_ids") if n in produced and n in accepted
        ]
        self.int8: quantize.Int8Model | None = None

    def lengths(self, texts: Sequence[str]) -> np.ndarray:
        return token_lengths(self.tokenizer, texts, self.max_length)

    def probabilities(self, texts: Sequence[str], int8: bool | None = None) -> np.ndarray:
        """(texts, labels) probabilities; int8 when it is enabled (or as asked), else float."""
        use_int8 = self.int8 is not None if int8 is None else int8
        n = len(texts)
        labels = int(self.model.config.num_labels)
        out = np.empty((n, labels), dtype=np.float64)
        if n == 0:
            return out
        lengths = self.lengths(texts)
        act = _sigmoid if self.activation == "sigmoid" else _softmax
        for idx in budget_batches(lengths, self.token_budget, self.max_texts):
            batch = [texts[i] for i in idx]
            out[idx] = act(self.logits(batch, use_int8).astype(np.float64))
        return out

    def logits(self, batch: list[str], int8: bool = False) -> np.ndarray:
        """Raw logits of one batch (padded to its longest text)."""
        enc = self.tokenizer(
            batch, truncation=True, max_length=self.max_length, padding=True, return_tensors="np"
        )
        if int8:
            if self.int8 is None:
                raise RuntimeError("int8 is not enabled")
            return self.int8.logits(dict(enc))
        import torch

        dev = getattr(self.model, "device", "cpu")
        feed = {k: torch.from_numpy(np.asarray(enc[k], dtype=np.int64)).to(dev) for k in self.input_names}
        with torch.inference_mode():
            logits = self.model(**feed)[0]
        result: np.ndarray = logits.float().cpu().numpy()
        return result

    def enable_int8(
        self, texts: Sequence[str], threshold: float, seed: int = 0, columns: Sequence[int] | None = None
    ) -> QuantizationFacts:
        """Build the int8 model, score a seeded calibration subset both ways, keep int8 only above the floor.

        `columns`: the labels the scorer reports (all by default); agreement is measured on those.
        """
        runtime = quantize.runtime_label()
        try:
            self.int8 = quantize.Int8Model.build(self.model, self.input_names)
        except Exception as exc:  # noqa: BLE001 - any export or quantisation failure means "score in float"
            self.int8 = None
            facts = quantize.failed(f"{type(exc).__name__}: {exc}", threshold, runtime)
            log.warning("%s", facts.note)
            return facts
        subset = quantize.calibration_subset(texts, seed)
        cols = list(columns) if columns is not None else slice(None)
        as_float = self.probabilities(subset, int8=False)[:, cols]
        as_int8 = self.probabilities(subset, int8=True)[:, cols]
        facts = quantize.check(as_float, as_int8, threshold, runtime)
        if facts.used != "int8":
            self.int8 = None
            log.warning("%s", facts.note)
        else:
            log.info(
                "int8 scoring: agreement on %d calibration texts: r=%s, max |diff|=%.4f, same side %.1f%%",
                facts.n,
                facts.pearson_r,
                facts.max_abs_diff or 0.0,
                100 * (facts.same_side or 0.0),
            )
        return facts
