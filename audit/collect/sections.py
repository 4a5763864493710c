"""Find the recommended sections of a card, however its authors named them.

Real cards write `# **Intended Use**`, `## Intended Uses:`, `<h2>Limitations</h2>`,
`**Training data**` on a line of its own, setext headings, numbered headings and
headings in other languages. Headings are normalised (HTML, emphasis, numbering,
punctuation and accents removed, lower-cased) and matched against patterns per
section. Fenced code blocks are skipped, so `# comment` lines in code are not headings.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from audit.model import SectionFact

MAX_HEADING_CHARS = 200
MIN_CONTENT_CHARS = 20


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    norm: str
    line: int  # 0-based line index in the analysed text


@dataclass(frozen=True)
class SectionSpec:
    key: str
    label: str
    patterns: tuple[str, ...]
    exclude: str = r"(?!)"  # headings matching this never count for the section


# Patterns are matched (re.search) against the normalised heading: lower case, no accents.
MODEL_SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec(
        "model_description",
        "Model description",
        (
            r"\bmodel (description|details|summary|overview|information|info)\b",
            r"^(description|overview|summary|about|introduction|model)$",
            r"^about (the|this) model",
            r"\bbeschreibung\b|\bdescripcion\b|\bdescricao\b|^presentation\b|\bdescrizione\b",
            r"模型(介绍|描述|简介|概述)|^简介$|^介绍$",
        ),
    ),
    SectionSpec(
        "intended_uses",
        "Intended uses",
        (
            r"\bintended (use|uses|usage|purpose)\b",
            r"^uses?\b|\buses?$|\buse cases?\b|\bdirect use\b|\bdownstream use\b|\bevaluated use\b",
            r"^model use\b|\bprimary (intended )?uses?\b|\bapplications?\b",
            r"verwendung|einsatzzweck|anwendung|utilisation|usos? previsto|uso previsto|utilizzo|用途|使用场景",
        ),
        exclude=r"out[ -]of[ -]scope|misuse|not intended|unintended|prohibited|malicious|forbidden|nicht vorgesehen",
    ),
    SectionSpec(
        "out_of_scope_uses",
        "Out-of-scope uses",
        (
            r"\bout[ -]of[ -]scope\b",
            r"\bmisuse\b|\bmalicious use|\bprohibited use|\bnot intended\b|\bunintended use|\bforbidden use",
            r"\bout of scope\b|\bhors (du )?perimetre|\bfuera de(l)? alcance|\bnicht vorgesehen|范围外|不适用",
        ),
    ),
    SectionSpec(
        "bias_risks_limitations",
        "Bias, risks and limitations",
        (
            r"\bbias(es)?\b|\brisks?\b|\blimitations?\b|\bethic|\bfairness\b|\bcaveats?\b|\bharms?\b",
            r"\bsafety\b|\bbroader (impact|implications)|\bsocial impact|\bresponsible ai\b",
            r"einschrankung|\bverzerrung|\brisiken\b|\blimites\b|\bbiais\b|\blimitaciones\b|\bsesgos?\b|\blimitazioni\b",
            r"局限|偏见|风险|限制",
        ),
    ),
    SectionSpec(
        "training_data",
        "Training data",
        (
            r"\btraining (and evaluation )?data(sets?)?\b|\bpre-?training data|\bfine-?tuning data",
            r"^data(sets?)?$|^(the )?data(set)? used\b|\btraining corpus\b|\bdata sources?\b",
            r"trainingsdaten|donnees d'?entrainement|datos de entrenamiento|dati di addestramento|训练数据",
        ),
    ),
    SectionSpec(
        "training_procedure",
        "Training procedure",
        (
            r"^training$|\btraining (procedure|details|process|setup|hyper-?parameters|regime|method)\b",
            r"\bpre-?training\b|\bfine-?tuning\b|^how (it|the model) was trained",
            r"^trainingsverfahren|^training und|procedure d'?entrainement|procedimiento de entrenamiento|训练(过程|方法|细节)",
        ),
    ),
    SectionSpec(
        "evaluation",
        "Evaluation",
        (
            r"\bevaluations?\b|\bresults?\b|\bperformance\b|\bbenchmarks?\b|^metrics\b|\baccuracy\b",
            r"\bevaluierung|\bauswertung|\bergebnisse|\bevaluacion|\bresultados|\bvalutazione|评估|评测|结果",
        ),
    ),
    SectionSpec(
        "environmental_impact",
        "Environmental impact",
        (
            r"\benvironmental\b|\bcarbon\b|\bco2\b|\bemissions?\b|\benergy (use|consumption)\b",
            r"umwelt|impact environnemental|impacto ambiental|环境影响|碳排放",
        ),
    ),
    SectionSpec(
        "citation",
        "Citation",
        (r"\bcitation\b|\bcite\b|\bciting\b|\bbibtex\b|\breferences?\b|\bzitat|\bzitier|\bcitar\b|引用",),
    ),
    SectionSpec(
        "contact",
        "Contact",
        (
            r"\bcontacts?\b|\bmaintainers?\b|\bquestions\b|\bfeedback\b|\bcard authors?\b|\bauthors?\b",
            r"\bkontakt\b|\bcontacto\b|\bcontatti\b|联系",
        ),
    ),
)

DATASET_SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec("dataset_summary", "Dataset summary", (r"\bdataset (summary|description)\b|^summary$",)),
    SectionSpec(
        "personal_info",
        "Personal and sensitive information",
        (r"\bpersonal\b|\bsensitive\b|\bprivacy\b|\bpii\b",),
    ),
    SectionSpec(
        "bias", "Discussion of biases", (r"\bbias(es)?\b|\bsocial impact\b|\blimitations?\b|\bethic",)
    ),
    SectionSpec("licensing", "Licensing information", (r"\blicen[cs]",)),
    SectionSpec("curation", "Curation rationale", (r"\bcuration\b|\bsource data\b|\bcollection\b",)),
)

_PLACEHOLDER = re.compile(
    r"\[?more information needed\]?(\([^)]*\))?|\bneeds? more information\b|\bto be added\b|\btbd\b|\btodo\b|\bn/?a\b|\bcoming soon\b",
    re.IGNORECASE,
)
_TEMPLATE_VAR = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_HTML_COMMENT = re.compile(r"<!--.*?(-->|$)", re.DOTALL)
_TAG = re.compile(r"<[^>]{0,500}>")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t#]*$")
_BOLD_LINE = re.compile(r"^ {0,3}(?:\*\*|__)(?P<t>[^*_]{2,120}?)(?:\*\*|__)\s*:?\s*$")
_HTML_HEADING = re.compile(r"^\s*<h([1-6])[^>]{0,200}>(.*?)</h\1>\s*$", re.IGNORECASE)
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BIBTEX = re.compile(
    r"@(article|inproceedings|misc|book|techreport|inbook|incollection|phdthesis|software)\s*\{", re.I
)


def normalise_heading(text: str) -> str:
    """Lower-case, strip HTML, emphasis, numbering, punctuation and accents."""
    text = text[:MAX_HEADING_CHARS]
    text = _TAG.sub(" ", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [label](url) -> label
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.lower()
    text = re.sub(r"[*_`~]+", " ", text)
    text = re.sub(r"\[optional\]|\(optional\)", " ", text)
    text = re.sub(r"^\s*(\d+(\.\d+)*|[ivx]+)[.)]?\s+", " ", text)  # numbering
    text = re.sub(r"[:：.!?¿¡,;()\[\]\"“”]+", " ", text)
    text = text.replace("&", " and ")
    text = re.sub(r"[^\w\s'+/-]", " ", text)  # emoji and symbols
    return re.sub(r"\s+", " ", text).strip()


def find_headings(text: str) -> list[Heading]:
    """All headings in Markdown text, outside fenced code blocks."""
    lines = text.split("\n")
    headings: list[Heading] = []
    fence: str | None = None
    prev_blank = True
    for i, raw in enumerate(lines):
        line = raw[:2000]
        m = _FENCE.match(line)
        if m:
            marker = m.group(1)
            if fence is None:
                fence = marker[0] * 3
            elif marker.startswith(fence):
                fence = None
            prev_blank = False
            continue
        if fence is not None:
            continue
        stripped = line.strip()
        h = _ATX.match(line)
        if h and h.group(2):
            headings.append(Heading(len(h.group(1)), h.group(2), normalise_heading(h.group(2)), i))
        elif (hh := _HTML_HEADING.match(line)) is not None:
            headings.append(Heading(int(hh.group(1)), hh.group(2), normalise_heading(hh.group(2)), i))
        elif prev_blank and (b := _BOLD_LINE.match(line)) is not None:
            headings.append(Heading(4, b.group("t"), normalise_heading(b.group("t")), i))
        elif (
            _SETEXT.match(line)
            and i > 0
            and lines[i - 1].strip()
            and not prev_blank
            and (not headings or headings[-1].line != i - 1)
            and not lines[i - 1].lstrip().startswith(("|", "-", "*", ">"))
        ):
            level = 1 if stripped.startswith("=") else 2
            prev = lines[i - 1]
            headings.append(Heading(level, prev.strip(), normalise_heading(prev), i - 1))
        prev_blank = not stripped
    return headings


# Sentences the Hugging Face card templates ship with: present in every unfilled template, so no evidence.
_BOILERPLATE = re.compile(
    r"carbon emissions can be estimated using the[^\n]*|use the code below to get started with the model\.?"
    r"|users \(both direct and downstream\) should be made aware of the risks, biases and limitations of the model\."
    r"(?: more information needed for further recommendations\.)?",
    re.IGNORECASE,
)
_HEADING_LINE = re.compile(
    r"^ {0,3}#{1,6}(?:[ \t].*)?$|^\s*<h[1-6][^>]*>.*</h[1-6]>\s*$", re.MULTILINE | re.IGNORECASE
)
_CONTACT_LINE = re.compile(
    r"^\s*(?:[-*+]\s*)?\**(?:contact|questions|feedback)\**\s*:|mailto:|\b[\w.+-]+@[\w-]+\.(?:com|org|net|ai|io|edu|de|fr|uk)\b",
    re.IGNORECASE | re.MULTILINE,
)


def _substance(text: str) -> str:
    """What is left of section text once comments, templates, placeholders and sub-headings are removed."""
    text = _HTML_COMMENT.sub(" ", text)
    text = _HEADING_LINE.sub(" ", text)
    text = _BOILERPLATE.sub(" ", text)
    text = _TEMPLATE_VAR.sub(" ", text)
    text = _PLACEHOLDER.sub(" ", text)
    text = _TAG.sub(" ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)  # drop link targets
    # Template scaffolding such as "- **Developed by:**" with nothing after it.
    text = re.sub(r"^\s*[-*]\s*\*\*[^*]{0,80}\*\*\s*:?\s*$", " ", text, flags=re.MULTILINE)
    return re.sub(r"[\W_]+", "", text)


def _section_text(lines: list[str], headings: list[Heading], idx: int) -> str:
    """The text under heading idx, subsections included (up to the next heading of the same or higher level)."""
    h = headings[idx]
    end = len(lines)
    for nxt in headings[idx + 1 :]:
        if nxt.level <= h.level:
            end = nxt.line
            break
    return "\n".join(lines[h.line + 1 : end])


def _excerpt(text: str, limit: int = 1200) -> str:
    text = _HTML_COMMENT.sub("", text).strip()
    if len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        text = text[: cut if cut > limit // 2 else limit].rstrip() + "\n\n…"
    return text


def detect_sections(
    text: str,
    specs: tuple[SectionSpec, ...] = MODEL_SECTIONS,
    *,
    line_offset: int = 0,
    metadata: dict[str, object] | None = None,
) -> tuple[SectionFact, ...]:
    """Check every spec against the card body. Line numbers are 1-based in the whole card file."""
    lines = text.split("\n")
    headings = find_headings(text)
    meta = metadata or {}
    facts: list[SectionFact] = []
    for spec in specs:
        best: SectionFact | None = None
        for idx, h in enumerate(headings):
            if (
                not h.norm
                or not any(re.search(p, h.norm) for p in spec.patterns)
                or re.search(spec.exclude, h.norm)
            ):
                continue
            body = _section_text(lines, headings, idx)
            substantive = len(_substance(body)) >= MIN_CONTENT_CHARS
            fact = SectionFact(
                key=spec.key,
                label=spec.label,
                present=substantive,
                placeholder=not substantive,
                heading=h.text.strip()[:MAX_HEADING_CHARS],
                line=h.line + 1 + line_offset,
                excerpt=_excerpt(body) if substantive else "",
            )
            if substantive:
                best = fact
                break
            best = best or fact
        if (best is None or not best.present) and (
            alt := _fallback(spec.key, text, lines, headings, meta, line_offset)
        ):
            best = alt
        facts.append(best or SectionFact(key=spec.key, label=spec.label, present=False))
    return tuple(facts)


def _fallback(
    key: str,
    text: str,
    lines: list[str],
    headings: list[Heading],
    meta: dict[str, object],
    line_offset: int,
) -> SectionFact | None:
    """Evidence that a section's content exists without a matching heading."""
    label = next(s.label for s in MODEL_SECTIONS + DATASET_SECTIONS if s.key == key)
    if key == "model_description":
        # Introductory text before the first second-level heading is the description on many cards.
        first_h2 = next((h.line for h in headings if h.level >= 2), len(lines))
        intro = "\n".join(ln for ln in lines[:first_h2] if not _ATX.match(ln))
        if len(_substance(intro)) >= 80:
            return SectionFact(
                key, label, True, heading="(introductory text)", line=1 + line_offset, excerpt=_excerpt(intro)
            )
    if key == "citation":
        m = _BIBTEX.search(text)
        if m:
            line = text.count("\n", 0, m.start()) + 1 + line_offset
            return SectionFact(key, label, True, heading="(BibTeX entry)", line=line, excerpt="")
    if key == "contact":
        m = _CONTACT_LINE.search(text)
        if m:
            line = text.count("\n", 0, m.start()) + 1 + line_offset
            return SectionFact(key, label, True, heading="(contact line)", line=line, excerpt="")
    if key == "evaluation" and meta.get("model-index"):
        return SectionFact(key, label, True, heading="(metadata: model-index)")
    if key == "environmental_impact" and meta.get("co2_eq_emissions"):
        return SectionFact(key, label, True, heading="(metadata: co2_eq_emissions)")
    return None


def completeness_score(facts: tuple[SectionFact, ...]) -> float:
    """Share of recommended sections present with substance, as a percentage (0-100)."""
    if not facts:
        return 0.0
    return round(100.0 * sum(f.present for f in facts) / len(facts), 1)
