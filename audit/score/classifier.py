"""Any local or Hub text-classification model as a scorer, with a label mapping (a regard or hate-speech model)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from audit.errors import UsageError
from audit.registry import PluginOptions
from audit.score import ScorerInfo


class HFClassifierOptions(PluginOptions):
    """--scorer hf-classifier:KEY=VALUE options."""

    model: str | None = Field(None, description="a text-classification model folder or Hub id")
    label: str | None = Field(None, description="the label whose probability is the score")
    threshold: float = Field(0.5, ge=0, le=1)
    threshold_source: str = "default 0.5 (set threshold= and threshold_source=)"
    kind: str = Field("toxicity", description="what the score measures: toxicity, sentiment, regard")
    batch_size: int = Field(32, ge=1, le=4096)


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
        batch_size: int = 32,
    ) -> None:
        if not model or not label:
            raise UsageError(
                "the hf-classifier scorer needs model= and label=",
                "for example --scorer hf-classifier:model=org/hate-model,label=hate",
            )
        self.model_id, self.label, self.batch_size = model, label, int(batch_size)
        self._pipe: Any = None
        self.info = ScorerInfo(
            name="hf-classifier",
            version=f"{model}",
            citation=f"text-classification model {model}",
            primary=label,
            threshold=float(threshold),
            threshold_source=threshold_source,
            higher_is_worse=True,
            kind=kind,
            options=(("model", model), ("label", label)),
        )

    def score(self, texts: list[str]) -> dict[str, list[float]]:
        if self._pipe is None:
            try:
                from transformers import pipeline
            except ImportError:
                raise UsageError(
                    "the hf-classifier scorer needs transformers", "pip install 'model-risk-audit[models]'"
                ) from None
            self._pipe = pipeline("text-classification", model=self.model_id, top_k=None, truncation=True)
            labels = set(self._pipe.model.config.id2label.values())
            if self.label not in labels:
                raise UsageError(
                    f"model {self.model_id} has no label '{self.label}'",
                    f"its labels: {', '.join(sorted(labels))}",
                )
        out = self._pipe(texts, batch_size=self.batch_size)
        return {self.label: [float(next(d["score"] for d in row if d["label"] == self.label)) for row in out]}
