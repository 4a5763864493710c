"""Training compute from the card: 6 x parameters x training tokens, against the EU AI Act's 10^25 FLOP.

Article 51(2) of Regulation (EU) 2024/1689 presumes a general-purpose AI model to have high-impact
capabilities (and so systemic risk) "when the cumulative amount of computation used for its training
measured in floating point operations is greater than 10^25". Cards rarely state FLOP, but many state
the number of training tokens ("trained on 15T tokens", "2 trillion tokens"); with the parameter count
the usual dense-transformer approximation C ≈ 6 N D (Kaplan et al. 2020, "Scaling Laws for Neural
Language Models") gives an estimate. It is labelled as one, with its inputs: it ignores repeated
epochs the card does not state, mixture-of-experts sparsity and fine-tuning compute.
"""

from __future__ import annotations

import re
from typing import Any

from audit.model import CardFacts, ComputeEstimate

__all__ = [
    "EU_SYSTEMIC_RISK_FLOP",
    "card_compute_inputs",
    "estimate_training_compute",
    "format_count",
    "format_flop",
    "stated_parameters",
    "training_tokens",
]

EU_SYSTEMIC_RISK_FLOP = 1e25  # Regulation (EU) 2024/1689, Article 51(2)
MIN_TRAINING_TOKENS = 1e8  # below this a "N tokens" figure is a context window or a vocabulary, not a corpus

_UNIT = {
    "trillion": 1e12,
    "billion": 1e9,
    "million": 1e6,
    "thousand": 1e3,
    "t": 1e12,
    "b": 1e9,
    "m": 1e6,
    "k": 1e3,
}
_NUM = r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_TOKENS = re.compile(
    rf"(?<![\w.]){_NUM}[\s-]*(?P<unit>(?i:trillion|billion|million|thousand)\b|[TBMKk]\b)?\+?[\s-]*"
    r"(?:(?!tokens?\b)[A-Za-z][\w-]*\s+){0,3}?(?i:tokens?)\b"
)
_PARAMS = re.compile(
    rf"(?<![\w.]){_NUM}[\s-]*(?P<unit>(?i:trillion|billion|million)\b|[TBM]\b)[\s-]*(?i:parameters?|params)\b"
)
_TRAINING_WORDS = re.compile(r"train|corpus|corpora|\bsaw\b|\bseen\b|\bdata\b|dataset", re.IGNORECASE)
_NOT_TRAINING = re.compile(
    r"context|window|sequence length|vocabulary|max_new_tokens|per second", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _value(num: str, unit: str | None) -> float:
    return float(num.replace(",", "")) * (_UNIT[unit.lower()] if unit else 1.0)


def _sentences(text: str) -> list[tuple[int, str]]:
    """(line index, sentence) pairs; a sentence ends at . ! ? followed by a space (not a decimal point) or a line break."""
    out: list[tuple[int, str]] = []
    for i, line in enumerate(text.splitlines()):
        out.extend((i, part) for part in _SENTENCE_END.split(line) if part.strip())
    return out


def _snippet(sentence: str, limit: int = 160) -> str:
    s = " ".join(re.sub(r"[*_`#>|]", " ", sentence).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def training_tokens(
    text: str, metadata: dict[str, Any] | None = None, line_offset: int = 0
) -> tuple[int | None, str]:
    """The number of training tokens the card states, and where ("line 12: 'trained on 15T tokens'").

    A figure counts when its sentence speaks of training or data and not of a context window; the
    largest such figure is taken (pre-training dominates fine-tuning). None when none is stated.
    """
    meta = metadata or {}
    for key in ("training_tokens", "train_tokens", "num_training_tokens"):
        raw = meta.get(key)
        if isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw >= MIN_TRAINING_TOKENS:
            return int(raw), f"metadata {key}: {raw}"
        if isinstance(raw, str) and (
            m := re.fullmatch(
                rf"\s*{_NUM}\s*(?P<unit>[TBMKk]|trillion|billion|million)?\s*(?:tokens?)?\s*", raw
            )
        ):
            value = _value(m.group("num"), m.group("unit"))
            if value >= MIN_TRAINING_TOKENS:
                return int(value), f"metadata {key}: {raw.strip()[:40]}"
    best: tuple[float, str] | None = None
    for line, sentence in _sentences(text):
        if "token" not in sentence.lower():
            continue
        training = bool(_TRAINING_WORDS.search(sentence))
        if not training or (_NOT_TRAINING.search(sentence) and "train" not in sentence.lower()):
            continue
        for m in _TOKENS.finditer(sentence):
            value = _value(m.group("num"), m.group("unit"))
            if value >= MIN_TRAINING_TOKENS and (best is None or value > best[0]):
                best = (value, f"line {line + 1 + line_offset}: “{_snippet(sentence)}”")
    if best is None:
        return None, ""
    return int(best[0]), best[1]


def stated_parameters(text: str, line_offset: int = 0) -> tuple[int | None, str]:
    """The parameter count the card's prose states ("8B parameters"), when it states exactly one."""
    found: dict[int, str] = {}
    for line, sentence in _sentences(text):
        for m in _PARAMS.finditer(sentence):
            found.setdefault(
                int(_value(m.group("num"), m.group("unit"))),
                f"line {line + 1 + line_offset}: “{_snippet(sentence)}”",
            )
    if len(found) != 1:
        return None, ""
    ((value, where),) = found.items()
    return value, where


def card_compute_inputs(
    text: str, metadata: dict[str, Any] | None = None, line_offset: int = 0
) -> dict[str, Any]:
    """The CardFacts fields the compute estimate reads: training tokens and a stated parameter count."""
    tokens, tokens_source = training_tokens(text, metadata, line_offset)
    params, params_source = stated_parameters(text, line_offset)
    return {
        "training_tokens": tokens,
        "training_tokens_source": tokens_source,
        "parameters_stated": params,
        "parameters_stated_source": params_source,
    }


def format_count(n: float) -> str:
    """15e12 -> '15T', 8.03e9 -> '8.03B' (three significant digits)."""
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        # Compare the rounded value, so 999.7e9 reads '1T' rather than '1e+03B'.
        if float(f"{n:.3g}") >= div:
            return f"{float(f'{n / div:.3g}'):g}{unit}"
    return f"{n:.3g}"


def format_flop(value: float) -> str:
    """1.23e24 -> '1.23 × 10^24' (three significant digits, so 9.97e24 never reads as 1.0 × 10^25)."""
    mantissa, exp = f"{value:.2e}".split("e")
    return f"{mantissa} × 10^{int(exp)}"


def estimate_training_compute(card: CardFacts) -> ComputeEstimate:
    """6 x parameters x tokens where the card states training tokens, with a statement about Article 51(2)."""
    tokens, tokens_source = card.training_tokens, card.training_tokens_source
    params, params_source = card.parameters, card.parameters_source or ""
    if params is None and card.parameters_stated:
        params, params_source = (
            card.parameters_stated,
            f"stated in the card ({card.parameters_stated_source})",
        )
    threshold = (
        "the EU AI Act's 10^25 FLOP presumption of systemic risk (Regulation (EU) 2024/1689, Article 51(2))"
    )
    if tokens is None:
        return ComputeEstimate(
            statement="The card states no number of training tokens: training compute cannot be estimated, "
            f"so whether the model crosses {threshold} must be established with the provider.",
            parameters=params,
            parameters_source=params_source,
        )
    if params is None:
        return ComputeEstimate(
            statement=f"The card states {format_count(tokens)} training tokens but the parameter count is unknown: "
            f"training compute cannot be estimated against {threshold}.",
            tokens=tokens,
            tokens_source=tokens_source,
        )
    flop = 6.0 * params * tokens
    exceeds = flop > EU_SYSTEMIC_RISK_FLOP
    inputs = (
        f"6 × {format_count(params)} parameters × {format_count(tokens)} tokens ≈ {format_flop(flop)} FLOP"
    )
    verdict = (
        "above 10^25 FLOP: the model is presumed to have high-impact capabilities, i.e. to be a "
        "general-purpose AI model with systemic risk under Article 51(2) of the EU AI Act (Article 55 "
        "obligations apply to its provider)"
        if exceeds
        else "below the 10^25 FLOP at which Article 51(2) of the EU AI Act presumes systemic risk"
    )
    return ComputeEstimate(
        statement=f"Estimated training compute (an estimate, not a stated figure): {inputs}; {verdict}.",
        flop=flop,
        parameters=params,
        parameters_source=params_source,
        tokens=tokens,
        tokens_source=tokens_source,
        exceeds_threshold=exceeds,
    )
