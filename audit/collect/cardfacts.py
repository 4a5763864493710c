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
    detect_language,
    detect_sections,
    find_headings,
    sections_limited,
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


def card_language(parsed: ParsedCard) -> tuple[str | None, bool]:
    """The card's prose language (ISO 639-1 or None) and whether section matching is limited for it.

    For CardFacts.language_detected and CardFacts.sections_limited: when limited, a section not found may be
    there under a heading in a language the patterns do not read, so it is unknown rather than missing.
    """
    if not parsed.readable or not parsed.body.strip():
        return None, False
    language = detect_language(parsed.body)
    return language, sections_limited(parsed.body, language)


_PI_TOPIC = re.compile(
    r"\b(personal\w*|sensitive|pii|private|privacy|identif\w*|(user|real|full|first|last|sur)?names?"
    r"|user ?ids?"
    r"|handles?|speaker ids?|e-?mails?|addresses|phone( numbers?)?|faces?|voices?|speakers?|identit(y|ies)"
    r"|individuals?|people|persons?|public figures?|medical|health|financial|biometric|anonymi[sz]\w*"
    r"|pseudonymi[sz]\w*|de-?identif\w*|gdpr)\b",
    re.I,
)
# Denials negated ("not anonymized", "no effort was made to remove") admit personal data.
_PI_NEGATED_DENIAL = re.compile(
    r"\b(not|no|never|without)\b[^.;:]{0,40}?\b(anonymi[sz]\w*|pseudonymi[sz]\w*|de-?identif\w*|remov\w*"
    r"|scrub\w*"
    r"|redact\w*|mask\w*|filter\w*|strip\w*)|\w+n't\b[^.;:]{0,30}?\b(anonymi[sz]\w*|remov\w*|scrub\w*"
    r"|redact\w*|filter\w*)",
    re.I,
)
_PI_DENIAL = re.compile(
    r"\b(no|none of|nothing)\b[^.;:]{0,60}?\b(is|are|was|were|has been|have been|gets?|got)\s+(included"
    r"|contained|present"
    r"|collected|stored|released|shared|kept|recorded|available|exposed|revealed)\b"
    r"|\bno (other |further |known )?(personal\w*|private|sensitive|identif\w*|pii|names?|user\w*|speaker\w*"
    r"|real"
    r"|individuals?|people|information|data)\b|\bcontains? no\b[^.;:,]*|\b(does|do|did|will|can"
    r"|could)\s*(not|n't)\s+"
    r"(contain|include|have|collect|store|record|retain|keep|share|release|expose|reveal)\w*[^.;:,]*"
    r"|\b(is|are|was|were|has been|have been)\s+(not|never)\s+(included|contained|collected|stored|released"
    r"|shared|present|recorded|kept)\b|\bnever (collected|stored|recorded|included)\b|\bfree (of"
    r"|from)\b[^.;:,]*"
    r"|\bnone of\b|\bwithout (any )?(personal|identif\w*|names?)\b[^.;:,]*|\b(anonymi[sz]ed|pseudonymi[sz]ed"
    r"|de-?identified"
    r"|removed|scrubbed|redacted|masked|stripped|filtered out|replaced|obfuscated|hashed|excluded)\b"
    r"|\b(cannot|can't|impossible to|not possible to)\s+(be\s+)?(re-?)?identif\w*",
    re.I,
)
_PI_ADMISSION = re.compile(
    r"\b(contain\w*|includ\w*|compris\w*|consists? of|may (have|be|reveal)|might (have|be|reveal)|reveal\w*"
    r"|expos\w*"
    r"|appear\w*|featur\w*|mentioned|mentions? (of )?(real |private )?(people|persons|individuals|names"
    r"|users)|depict\w*|donat\w*|recorded|(are|is) about|refer to|available"
    r"|collected from|scraped from|written by)\b",
    re.I,
)
_PI_CLAUSE = re.compile(r";|\b(?:but|however|although|though|whereas|except)\b", re.I)


def _pi_clause(clause: str) -> str | None:
    """'present', 'absent' or None for one clause: the last cue wins, negated denials count as admissions."""
    marked = _PI_NEGATED_DENIAL.sub(" \x01 ", clause)
    marked = _PI_DENIAL.sub(" \x02 ", marked)
    marked = _PI_ADMISSION.sub(" \x01 ", marked)
    cues = [c for c in marked if c in "\x01\x02"]
    if not cues:
        return None
    return "present" if cues[-1] == "\x01" else "absent"


def personal_info_statement(section: SectionFact | None) -> tuple[str, str]:
    """Classify what a dataset card says about personal information: present/absent/unclear/undocumented.

    Sentence by sentence, for sentences about personal data: admissions ("contains names", "usernames are not
    anonymized", "people who donated their voice") mean "present"; denials ("no personal information", "does not
    contain", "anonymized", "removed") mean "absent". Within a clause the last cue decides, so "contains no names"
    is a denial and "was anonymized, yet may still contain names" an admission. Presence wins over absence, since
    one admitted source of personal data is enough. Returns the class and the sentence that decided it.
    """
    if section is None or not section.present:
        return "undocumented", ""
    text = section.excerpt
    verdict, evidence = "unclear", text[:400]
    for sentence in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
        if not _PI_TOPIC.search(sentence):
            continue
        found = [c for c in map(_pi_clause, _PI_CLAUSE.split(sentence)) if c]
        if "present" in found:
            return "present", sentence.strip()[:400]
        if "absent" in found and verdict == "unclear":
            verdict, evidence = "absent", sentence.strip()[:400]
    return verdict, evidence


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
    language, limited = card_language(parsed)
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
        language_detected=language,
        sections_limited=limited,
    )
