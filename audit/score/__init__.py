"""Score stage: scorers map texts to scores, each declaring version, citation, threshold and direction."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import Field

from audit.errors import UsageError
from audit.model import ScorerFacts
from audit.registry import PluginOptions

# A scorer declares what it is with the same record the report keeps of it.
ScorerInfo = ScorerFacts


class Scorer(Protocol):
    info: ScorerInfo

    def score(self, texts: list[str]) -> dict[str, list[float]]: ...


def available_scorers() -> list[str]:
    """Every registered scorer (built-ins and third-party packages, through the same entry points)."""
    from audit.registry import SCORERS

    return SCORERS.names()


def make_scorer(name: str, options: dict[str, Any]) -> Scorer:
    """Build a scorer by name: options validated against its Options first, lazy import."""
    from audit.registry import SCORERS

    scorer: Scorer = SCORERS.create(name, options)
    return scorer


def parse_scorer_spec(text: str) -> tuple[str, dict[str, str]]:
    """'detoxify:variant=original,batch_size=32' -> ('detoxify', {...})."""

    name, _, rest = text.partition(":")
    opts: dict[str, str] = {}
    for pair in filter(None, rest.split(",")):
        k, sep, v = pair.partition("=")
        if not sep or not k.strip():
            raise UsageError(f"scorer option '{pair}' is not key=value", "--scorer detoxify:variant=original")
        opts[k.strip()] = v.strip()
    return name.strip(), opts


class TransformerScorerOptions(PluginOptions):
    """Options every transformer scorer shares: batching by a token budget, and int8 scoring."""

    batch_size: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="at most this many texts a batch (default: what the token budget allows)",
    )
    token_budget: int | None = Field(
        None, ge=64, le=1_048_576, description="padded tokens per batch (default: chosen per device)"
    )
    quantize: Literal["none", "int8"] = Field("none", description="int8: CPU scoring checked against float")
