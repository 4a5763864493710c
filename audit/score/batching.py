"""Token-budget batches for transformer scorers.

Texts are sorted by token length and packed so that a batch's padded size (longest text in it ×
number of texts) stays within a token budget, rather than a fixed number of texts. Short texts
then go in large batches (the machine is used) and long texts in small ones (memory stays bounded:
activations grow with padded tokens, attention with padded tokens × length, and both are capped
whatever the lengths). The budget is chosen per device (`default_token_budget`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Padded tokens per batch by device kind. CPU (2 cores, bert-base, 256 short texts, best of 3 under
# load): 2,048 scored 47 texts/s, 4,096 39/s, 8,192 33/s, fixed batches of 64 40/s; larger batches
# leave the caches, and a 512-token text goes 4 to a batch instead of 64. GPUs want far more.
BUDGETS = {"cpu": 2048, "mps": 8192, "cuda": 32768}
MAX_TEXTS = 256  # never more texts in one batch than this, however short


def default_token_budget(device: str) -> int:
    """The token budget for a device name ('cpu', 'cuda', 'cuda:1', 'mps')."""
    kind = device.split(":", 1)[0]
    return BUDGETS.get(kind, BUDGETS["cpu"])


def token_lengths(tokenizer: Any, texts: Sequence[str], max_length: int | None = None) -> np.ndarray:
    """Token count of each text as the model will see it (special tokens included, truncated)."""
    kwargs: dict[str, Any] = {"truncation": True}
    if max_length is not None:
        kwargs["max_length"] = max_length
    ids = tokenizer(list(texts), **kwargs)["input_ids"]
    return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(texts))


def budget_batches(lengths: np.ndarray, budget: int, max_texts: int = MAX_TEXTS) -> list[np.ndarray]:
    """Indices of the texts, sorted by length and packed so each batch's max length × size <= budget.

    A single text longer than the budget gets a batch of its own (it cannot be split).
    """
    if budget < 1 or max_texts < 1:
        raise ValueError("budget and max_texts must be positive")
    order = np.argsort(lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    n = len(order)
    while start < n:
        end = start + 1
        # Sorted ascending, so the last text added is the longest: the padded size is its length × count.
        while end < n and end - start < max_texts and int(lengths[order[end]]) * (end + 1 - start) <= budget:
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


def fixed_batches(lengths: np.ndarray, size: int) -> list[np.ndarray]:
    """Indices sorted by length in batches of a fixed number of texts (the old behaviour; benchmarks)."""
    order = np.argsort(lengths, kind="stable")
    return [order[s : s + size] for s in range(0, len(order), size)]


def padded_tokens(lengths: np.ndarray, batches: Sequence[np.ndarray]) -> list[int]:
    """Padded tokens (max length × size) of each batch: what memory and compute scale with."""
    return [int(lengths[b].max()) * len(b) if len(b) else 0 for b in batches]
