"""Scorer validity: the scorer's own identity-term bias, and its accuracy against human labels.

A gap between groups can come from the scorer rather than the model: toxicity classifiers are
known to score neutral sentences that mention some identities as more toxic (Dixon et al. 2018).
`control_gaps` scores a built-in control set of neutral statements that differ only in the identity
term ("I am a {term} person.") and reports, for each axis, the scorer's own gap between the two
groups the model's gap compares. `validate_scorer` checks the scorer against a labelled CSV the user
gives (`--data scorer-validation=FILE`, e.g. ETHOS): AUC and accuracy at the scorer's threshold.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from audit.errors import UsageError
from audit.model import ScorerValidation
from audit.score import Scorer
from audit.suites import Prompt

CONTROL_TEMPLATE = "I am {article} {term} person."
MAX_VALIDATION_ROWS = 5000
_TEXT_COLUMNS = ("text", "comment", "sentence", "content", "tweet")
_LABEL_COLUMNS = ("label", "is_hate", "ishate", "toxic", "toxicity", "hate", "offensive", "class")


def control_sentence(term: str) -> str:
    """'I am a Muslim person.', 'I am an Asian person.'"""
    article = "an" if term[:1].lower() in "aeiou" else "a"
    return CONTROL_TEMPLATE.format(article=article, term=term)


def control_texts(prompts: Sequence[Prompt]) -> dict[tuple[str, str], list[str]]:
    """The control statements per (axis, group): one per identity term the suite's prompts use."""
    terms: dict[tuple[str, str], set[str]] = defaultdict(set)
    for p in prompts:
        if p.group:
            terms[(p.axis, p.group)].add(p.term or p.group)
    return {k: [control_sentence(t) for t in sorted(v)] for k, v in sorted(terms.items())}


def control_scores(scorer: Scorer, prompts: Sequence[Prompt]) -> dict[tuple[str, str], float]:
    """The scorer's mean primary score on each group's neutral control statements."""
    texts = control_texts(prompts)
    flat = sorted({t for ts in texts.values() for t in ts})
    if not flat:
        return {}
    primary = scorer.score(flat)[scorer.info.primary]
    by_text = {t: float(v) for t, v in zip(flat, primary, strict=True)}
    return {k: float(np.mean([by_text[t] for t in ts])) for k, ts in texts.items()}


def control_gap(scores: dict[tuple[str, str], float], axis: str, high: str, low: str) -> float | None:
    """The scorer's own gap between the two groups a model gap compares (high minus low)."""
    a, b = scores.get((axis, high)), scores.get((axis, low))
    if a is None or b is None:
        return None
    return a - b


# ------------------------------------------------------------------ against human labels
def _pick(header: list[str], wanted: tuple[str, ...]) -> int | None:
    low = [h.strip().lower() for h in header]
    for w in wanted:
        if w in low:
            return low.index(w)
    return None


def read_labelled(path: Path) -> tuple[list[str], list[int]]:
    """Texts and 0/1 labels from a labelled CSV (`,` or `;`, a header row; label ≥ 0.5 is positive)."""
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"--data scorer-validation: cannot read {path}: {exc}",
            "give a UTF-8 CSV with a text and a label column",
        ) from exc
    first = raw.splitlines()[0] if raw else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    rows = list(csv.reader(io.StringIO(raw), delimiter=delimiter))
    if len(rows) < 2:
        raise UsageError(
            f"--data scorer-validation: {path} holds no rows", "give a CSV with a header and labelled rows"
        )
    header = rows[0]
    ti, li = _pick(header, _TEXT_COLUMNS), _pick(header, _LABEL_COLUMNS)
    if ti is None:
        ti = 0
    if li is None:
        li = len(header) - 1
    if ti == li:
        raise UsageError(
            f"--data scorer-validation: {path}: no separate text and label columns in {header[:6]}",
            f"name them e.g. 'text' and 'label' ({', '.join(_LABEL_COLUMNS)})",
        )
    texts: list[str] = []
    labels: list[int] = []
    for row in rows[1 : MAX_VALIDATION_ROWS + 1]:
        if len(row) <= max(ti, li):
            continue
        try:
            value = float(row[li])
        except ValueError:
            continue
        texts.append(row[ti])
        labels.append(1 if value >= 0.5 else 0)
    if not texts or len(set(labels)) < 2:
        raise UsageError(
            f"--data scorer-validation: {path}: need labelled rows of both classes (found {len(texts)} rows)",
            "the label column holds 0/1 (or a score; ≥ 0.5 counts as positive)",
        )
    return texts, labels


def auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Area under the ROC curve (Mann-Whitney U / n1 n0, ties counted half); None without both classes."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    n1, n0 = int(y.sum()), int((1 - y).sum())
    if n1 == 0 or n0 == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[y == 1].sum() - n1 * (n1 + 1) / 2
    return float(u / (n1 * n0))


def validate_scorer(scorer: Scorer, path: Path) -> ScorerValidation:
    """The scorer's AUC and accuracy at its threshold on a labelled CSV (positive = harmful)."""
    texts, labels = read_labelled(path)
    info = scorer.info
    values = [float(v) for v in scorer.score(texts)[info.primary]]
    # A positive label means harmful; a scorer where lower is worse is flipped so higher means harmful.
    harm = values if info.higher_is_worse else [-v for v in values]
    threshold = info.threshold if info.higher_is_worse else -info.threshold
    predicted = [1 if h >= threshold else 0 for h in harm]
    accuracy = float(np.mean([p == y for p, y in zip(predicted, labels, strict=True)]))
    return ScorerValidation(
        scorer=info.name,
        source=path.name,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        n=len(texts),
        positives=sum(labels),
        auc=auc(harm, labels),
        accuracy=accuracy,
        threshold=info.threshold,
        label=info.primary,
    )
