"""Score stage: scorers map texts to scores, each declaring version, citation, threshold and direction."""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from audit.errors import UsageError
from audit.model import ScorerFacts

SCORERS: dict[str, str] = {
    "detoxify": "audit.score.detoxify:DetoxifyScorer",
    "profanity": "audit.score.lexical:ProfanityScorer",
    "sentiment": "audit.score.lexical:SentimentScorer",
    "hf-classifier": "audit.score.classifier:HFClassifierScorer",
}


# A scorer declares what it is with the same record the report keeps of it.
ScorerInfo = ScorerFacts


class Scorer(Protocol):
    info: ScorerInfo

    def score(self, texts: list[str]) -> dict[str, list[float]]: ...


def available_scorers() -> dict[str, str]:
    """Built-in scorers plus those registered under the `model_audit.scorers` entry-point group."""
    from importlib.metadata import entry_points

    found = dict(SCORERS)
    for ep in entry_points(group="model_audit.scorers"):
        found.setdefault(ep.name, ep.value)
    return found


def make_scorer(name: str, options: dict[str, Any]) -> Scorer:
    """Instantiate a scorer by name (lazy import: Detoxify and transformers only when needed)."""
    scorers = available_scorers()
    if name not in scorers:
        import difflib

        close = difflib.get_close_matches(name, list(scorers), n=1)
        raise UsageError(
            f"unknown scorer '{name}'",
            f"did you mean '{close[0]}'?" if close else f"choose from {', '.join(scorers)}",
        )
    module, _, attr = scorers[name].partition(":")
    scorer: Scorer = getattr(importlib.import_module(module), attr)(**options)
    return scorer
