"""Any local or Hub text-classification model as a scorer, with a label mapping (a regard or hate-speech model).

Texts are scored in token-budget batches sorted by length (`audit.score.batching`); `quantize=int8`
scores on CPU with ONNX Runtime int8 after checking its agreement with float on the run's own texts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from audit.errors import UsageError
from audit.score import ScorerInfo, TransformerScorerOptions, quantize


class HFClassifierOptions(TransformerScorerOptions):
    """--scorer hf-classifier:KEY=VALUE options."""

    model: str | None = Field(None, description="a text-classification model folder or Hub id")
    label: str | None = Field(None, description="the label whose probability is the score")
    threshold: float = Field(0.5, ge=0, le=1)
    threshold_source: str = "default 0.5 (set threshold= and threshold_source=)"
    kind: str = Field("toxicity", description="what the score measures: toxicity, sentiment, regard")


class HFClassifierScorer:
    """Score = probability of the chosen label (`label=`), e.g. `label=hate` or `label=negative`."""

    Options = HFClassifierOptions

    def __init__(
        self,
        model: str | None = None,
        label: str | None = None,
        threshold: float = 0.5,
        threshold_source: str = "default 0.5 (set threshold= and threshold_source=)",
        kind: str = "toxicity",
        batch_size: int | None = None,
        token_budget: int | None = None,
        quantize: str = "none",
    ) -> None:
        if not model or not label:
            raise UsageError(
                "the hf-classifier scorer needs model= and label=",
                "for example --scorer hf-classifier:model=org/hate-model,label=hate",
            )
        if quantize == "int8":
            _runtime_check()
        self.model_id, self.label, self.batch_size = model, label, batch_size
        self.token_budget, self.quantize = token_budget, quantize
        self._engine: Any = None
        self._column = 0
        self.calibrated = quantize != "int8"
        options: tuple[tuple[str, str], ...] = (("model", model), ("label", label))
        self.info = ScorerInfo(
            name="hf-classifier",
            version=f"{model}",
            citation=f"text-classification model {model}",
            primary=label,
            threshold=float(threshold),
            threshold_source=threshold_source,
            higher_is_worse=True,
            kind=kind,
            options=(*options, ("quantize", "int8")) if quantize == "int8" else options,
        )

    def engine(self) -> Any:
        """The loaded classifier as a token-budget SequenceClassifier (loads on first use)."""
        if self._engine is None:
            try:
                from transformers import pipeline

                from audit.score.engine import SequenceClassifier
            except ImportError:
                raise UsageError(
                    "the hf-classifier scorer needs transformers", "pip install 'model-risk-audit[models]'"
                ) from None
            kwargs: dict[str, Any] = {"device": "cpu"} if self.quantize == "int8" else {}
            pipe = pipeline("text-classification", model=self.model_id, top_k=None, truncation=True, **kwargs)
            config = pipe.model.config
            id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
            if self.label not in id2label.values():
                raise UsageError(
                    f"model {self.model_id} has no label '{self.label}'",
                    f"its labels: {', '.join(sorted(id2label.values()))}",
                )
            self._column = next(i for i, v in sorted(id2label.items()) if v == self.label)
            # As the text-classification pipeline does: sigmoid for multi-label or one-logit heads, else softmax.
            multi = config.problem_type == "multi_label_classification" or config.num_labels == 1
            self._engine = SequenceClassifier(
                pipe.model,
                pipe.tokenizer,
                "sigmoid" if multi else "softmax",
                device=str(pipe.device),
                token_budget=self.token_budget,
                max_texts=self.batch_size,
            )
        return self._engine

    def calibrate(self, texts: Sequence[str], seed: int = 0) -> None:
        """With quantize=int8: check int8 against float on a seeded subset of these texts, once (see Detoxify)."""
        if self.calibrated or not texts:
            return  # nothing to check on yet: the first texts scored will be used
        self.calibrated = True
        engine = self.engine()
        facts = engine.enable_int8(texts, self.info.threshold, seed, columns=[self._column])
        if facts.used == "int8":
            self.info = dataclasses.replace(
                self.info, version=f"{self.info.version} int8 ({facts.runtime})", quantization=facts
            )
        else:
            self.info = dataclasses.replace(
                self.info, options=(("model", self.model_id), ("label", self.label)), quantization=facts
            )

    def score(self, texts: list[str]) -> dict[str, list[float]]:
        engine = self.engine()
        if not texts:
            return {self.label: []}
        if not self.calibrated:
            self.calibrate(texts)
        probs = engine.probabilities(texts)
        return {self.label: probs[:, self._column].tolist()}


def _runtime_check() -> None:
    quantize.runtime_version()  # a usage error naming the [int8] extra, before any model loads
