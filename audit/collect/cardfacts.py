"""Turn a parsed card (model or dataset) into typed facts. Wrong types become problems, not crashes."""

from __future__ import annotations

import re
from typing import Any

from audit.collect.cardparse import ParsedCard
from audit.collect.licenses import classify_license, normalise_license, strictest
from audit.collect.sections import (
    DATASET_SECTIONS,
    MODEL_SECTIONS,
    completeness_score,
    detect_sections,
    find_headings,
)
from audit.model import DatasetFacts, EvalResultFact, LicenseClass, SectionFact

MAX_LIST = 200
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?$")


def is_repo_id(value: str) -> bool:
    """True for a syntactically valid Hub repo id (`name` or `org/name`)."""
    return bool(_REPO_ID.match(value)) and ".." not in value and not value.endswith((".", "-"))


def str_list(meta: dict[str, Any], key: str, problems: list[str]) -> tuple[str, ...]:
    """A metadata field that should be a list of strings. A single string is accepted (and noted)."""
    if key not in meta or meta[key] is None:
        return ()
    value = meta[key]
    if isinstance(value, str):
        return (value.strip()[:200],) if value.strip() else ()
    if isinstance(value, list):
        out = []
        bad = 0
        for item in value[:MAX_LIST]:
            if isinstance(item, str) and item.strip():
                out.append(item.strip()[:200])
            elif isinstance(item, int | float) and not isinstance(item, bool):
                out.append(str(item))
            elif item is not None:
                bad += 1
        if bad:
            problems.append(
                f"metadata '{key}' has {bad} entr{'y' if bad == 1 else 'ies'} that are not strings"
            )
        if len(value) > MAX_LIST:
            problems.append(f"metadata '{key}' lists {len(value)} entries; the first {MAX_LIST} were read")
        return tuple(dict.fromkeys(out))
    problems.append(f"metadata '{key}' is a {type(value).__name__}, expected a string or a list of strings")
    return ()


def str_value(meta: dict[str, Any], key: str, problems: list[str]) -> str | None:
    """A metadata field that should be a single string."""
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip()[:500] or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    problems.append(f"metadata '{key}' is a {type(value).__name__}, expected a string")
    return None


def license_facts(
    meta: dict[str, Any], problems: list[str], *, list_ok: bool
) -> tuple[tuple[str, ...], LicenseClass]:
    """The declared licences (normalised) and the class they amount to."""
    raw = meta.get("license")
    if isinstance(raw, list) and not list_ok:
        problems.append("metadata 'license' is a list; a model card declares one licence id")
    licenses = tuple(normalise_license(x) for x in str_list(meta, "license", problems))
    licenses = tuple(x for x in licenses if x)
    return licenses, strictest([classify_license(x) for x in licenses])


def eval_results(meta: dict[str, Any], problems: list[str]) -> tuple[EvalResultFact, ...]:
    """The card's `model-index` as a table; an invalid model-index is reported and skipped."""
    index = meta.get("model-index")
    if index is None:
        return ()
    if not isinstance(index, list):
        problems.append(f"metadata 'model-index' is a {type(index).__name__}, expected a list")
        return ()
    from huggingface_hub.repocard_data import model_index_to_eval_results

    try:
        _, results = model_index_to_eval_results(index)
    except Exception as exc:  # noqa: BLE001 - any failure of the library's parser is a card problem
        problems.append(f"metadata 'model-index' does not parse ({type(exc).__name__}: {str(exc)[:160]})")
        return ()
    out = []
    for r in results[:500]:
        out.append(
            EvalResultFact(
                task_type=str(r.task_type)[:100],
                dataset_name=str(r.dataset_name)[:200],
                dataset_type=str(r.dataset_type)[:200],
                metric_type=str(r.metric_type)[:100],
                metric_value=str(r.metric_value)[:100],
                metric_name=str(r.metric_name or "")[:200],
                dataset_split=str(r.dataset_split or "")[:100],
                dataset_config=str(r.dataset_config or "")[:100],
                verified=r.verified if isinstance(r.verified, bool) else None,
            )
        )
    return tuple(out)


def card_title(parsed: ParsedCard) -> str:
    """The first top-level heading of the card, if any."""
    for h in find_headings(parsed.body[:200_000]):
        if h.level == 1 and h.text.strip():
            return re.sub(r"<[^>]*>", "", h.text).strip().strip("*_` ").strip()[:200]
    return ""


def model_sections(parsed: ParsedCard) -> tuple[tuple[SectionFact, ...], float]:
    """Recommended model-card sections and the documentation completeness score."""
    if not parsed.readable:
        facts = tuple(SectionFact(s.key, s.label, False) for s in MODEL_SECTIONS)
        return facts, 0.0
    facts = detect_sections(
        parsed.body, MODEL_SECTIONS, line_offset=parsed.body_line_offset, metadata=parsed.metadata
    )
    return facts, completeness_score(facts)


_PI_TOPIC = re.compile(
    r"\b(personal|sensitive|pii|private|identif\w*|names?|e-?mails?|addresses|phone)\b", re.I
)
_PI_NEGATION = re.compile(
    r"\b(does not|doesn't|do not|don't|did not|no|not|never|without|free of|none)\b|\banonymi[sz]ed\b|\bremoved\b|\bscrubbed\b",
    re.I,
)
_PI_PRESENCE = re.compile(r"\b(contain\w*|includ\w*|present|may have|has|have|exposed?|mentions?)\b", re.I)


def personal_info_statement(section: SectionFact | None) -> tuple[str, str]:
    """Classify what a dataset card says about personal information: present/absent/unclear/undocumented.

    Sentence by sentence: a sentence about personal data that asserts presence without a
    negation means "present"; one that negates it (or says it was removed) means "absent".
    Presence wins over absence, since one admitted source of personal data is enough.
    """
    if section is None or not section.present:
        return "undocumented", ""
    text = section.excerpt
    verdict = "unclear"
    for sentence in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
        if not _PI_TOPIC.search(sentence):
            continue
        if _PI_NEGATION.search(sentence):
            verdict = "absent" if verdict == "unclear" else verdict
        elif _PI_PRESENCE.search(sentence):
            return "present", text[:400]
    return verdict, text[:400]


def dataset_facts(
    dataset_id: str,
    parsed: ParsedCard,
    *,
    source: str,
    resolved_revision: str | None,
    gated: str | None = None,
    last_modified: str | None = None,
) -> DatasetFacts:
    """Facts from one dataset card."""
    problems = list(parsed.problems)
    meta = parsed.metadata
    licenses, lic_class = license_facts(meta, problems, list_ok=True)
    sections: tuple[SectionFact, ...] = ()
    if parsed.readable:
        sections = detect_sections(parsed.body, DATASET_SECTIONS, line_offset=parsed.body_line_offset)
    by_key = {s.key: s for s in sections}
    personal, excerpt = personal_info_statement(by_key.get("personal_info"))
    bias = by_key.get("bias")
    return DatasetFacts(
        id=dataset_id,
        available=parsed.readable,
        error=None if parsed.readable else "the dataset card is not readable text",
        source=source,
        resolved_revision=resolved_revision,
        pretty_name=str_value(meta, "pretty_name", problems),
        licenses=licenses,
        license_class=lic_class,
        task_categories=str_list(meta, "task_categories", problems),
        size_categories=str_list(meta, "size_categories", problems),
        personal_info=personal,  # type: ignore[arg-type]
        personal_info_excerpt=excerpt,
        bias_documented=bool(bias and bias.present),
        sections=sections,
        gated=gated,
        last_modified=last_modified,
        problems=tuple(problems),
    )
