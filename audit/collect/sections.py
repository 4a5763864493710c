"""Find the recommended sections of a card, however its authors named them and wherever they put them.

Real cards write `# **Intended Use**`, `## Intended Uses:`, `<h2>Limitations</h2>`, setext, numbered and emoji
headings, headings in other languages and bilingual ones (`## 介绍（Introduction）`). Many put a section where no
heading is: Meta-style cards open a paragraph with a bold lead-in (`**Out-of-scope** Use in any manner ...`),
others a list item with a label (`- Contact: ...`), CO2 figures sit in a table's header cells, and some say it in
one sentence ("we caution against using ..."). Each section is looked for in that order (headings, lead-ins,
table headers, sentences) and records how it was found and on which line. A section whose body is only a
placeholder ("[More Information Needed]", "Coming soon", an empty table) counts as missing, with the placeholder
quoted. Fenced code blocks and HTML comments are skipped. The card's language is guessed from its scripts and
stopwords, so a card in a language the patterns do not cover is flagged instead of reported as missing everything.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from audit.model import SectionFact

MAX_HEADING_CHARS = 200
MIN_CONTENT_CHARS = 20
MAX_LEAD_IN_WORDS = 10
MAX_TABLE_CHARS = 200_000
MAX_ANCHORS = 5000  # per kind; more lead-ins or table cells than this is not a card
MAX_TABLE_COLUMNS = 40
MAX_JUDGED_CHARS = 20_000  # enough of a section body to tell content from a placeholder
MAX_CUE_LINES = 20_000  # sentence cues are looked for in the first lines only

AnchorKind = Literal["heading", "lead-in", "table"]


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    norm: str
    line: int  # 0-based line index in the analysed text


@dataclass(frozen=True)
class Anchor:
    """A place that can open a section: a heading, a lead-in at the start of a paragraph, a table header cell."""

    kind: AnchorKind
    text: str
    norm: str
    line: int  # 0-based line index in the analysed text
    level: int = 0  # heading level; 0 for lead-ins and table cells
    first: str = ""  # the rest of a lead-in's line; a table's data rows
    span: tuple[int, int] = (0, 0)  # further body lines [start, end) of source
    source: Sequence[str] = field(default=(), repr=False, compare=False)

    @property
    def body(self) -> str:
        """The text the anchor introduces (made on demand: most anchors never need it)."""
        rest = "\n".join(self.source[self.span[0] : self.span[1]])
        return f"{self.first}\n{rest}" if self.first else rest


@dataclass(frozen=True)
class SectionSpec:
    key: str
    label: str
    patterns: tuple[str, ...]
    exclude: str = r"(?!)"  # headings matching this never count for the section
    # Headings that count only when their body is about the section (e.g. 'Limitations' for a dataset's biases).
    secondary: tuple[str, ...] = ()
    secondary_body: str = r"(?!)"
    table_patterns: tuple[str, ...] = ()  # header cells that open the section
    cues: tuple[str, ...] = ()  # sentences that document the section without a heading
    short_ok: str = r"(?!)"  # short bodies that still count (an e-mail address for a contact)
    non_answer: bool = False  # "not yet investigated" is no answer


# Patterns are matched (re.search) against the normalised heading: lower case, no accents.
_OUT_OF_SCOPE = (
    r"out[ -]of[ -]scope|\bmisuses?\b|malicious|not intended|unintended|prohibited|forbidden|nicht vorgesehen"
    r"|\bavoid|unsuitable|inappropriate|sensitive uses?\b|restricted uses?|use restrictions?"
    r"|limitations? of use"
    r"|\bdo not use\b|\bdon't use\b"
)
MODEL_SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec(
        "model_description",
        "Model description",
        (
            r"\bmodel (description|details|summary|overview|information|info)\b",
            r"^(description|overview|summary|about|introduction|model|tl ?dr)$",
            r"^about (the|this) model",
            r"\bbeschreibung\b|\bdescripcion\b|\bdescricao\b|^presentation\b|\bdescrizione\b",
            r"模型(介绍|描述|简介|概述|基本信息|信息)|^简介$|^介绍$|^概述$|モデルの?(説明|概要)|^概要$|^はじめに$"
            r"|모델 ?(설명|소개|개요)|^소개$|^개요$",
        ),
    ),
    SectionSpec(
        "intended_uses",
        "Intended uses",
        (
            r"\bintended (use|uses|usage|purpose)\b",
            r"^uses?\b|\buses?$|\buse cases?\b|\bdirect use\b|\bdownstream use\b|\bevaluated use\b",
            r"^model use\b|\bprimary (intended )?uses?\b|\bapplications?\b",
            r"verwendung|einsatzzweck|anwendung|utilisation|usos? previsto|uso previsto|utilizzo|用途"
            r"|使用场景",
            r"使用目的|用途|适用场景|应用场景|预期用途|想定される用途|利用目的|사용 ?목적|용도|의도된 ?사용"
            r"|활용 ?분야",
        ),
        exclude=_OUT_OF_SCOPE + r"|how to use|terms of use|get(ting)? started|\bfair use\b",
    ),
    SectionSpec(
        "out_of_scope_uses",
        "Out-of-scope uses",
        (
            r"\bout[ -]of[ -]scope\b|\bout of scope\b",
            r"\bmisuses?\b|\bmalicious use|\bprohibited\b|\bnot intended\b|\bunintended use|\bforbidden use",
            r"\buses? to avoid\b|\bavoid(ed)? uses?\b|\bunsuitable\b|\binappropriate uses?\b"
            r"|\bsensitive uses?\b",
            r"\brestricted uses?\b|\buse restrictions?\b|\blimitations? of use\b|\bharmful uses?\b"
            r"|\bdo not use\b",
            r"\bhors (du )?perimetre|\bfuera de(l)? alcance|\bnicht vorgesehen|范围外|不适用|禁止|滥用"
            r"|不当使用",
            r"範囲外|悪用|不適切な(使用|利用)|오용|금지|범위 ?외|부적절",
        ),
        cues=(
            r"\b(should|must|may|can) not be used (for|to|in|as|with|by)\b",
            r"\b(is|are) not (intended|suitable|appropriate|meant) (for|to)\b",
            r"\b(caution|recommend|advise|warn)s? against (the )?(use|using)\b",
            r"\bprohibited uses?\b|\bdo not use (this|the) model\b",
        ),
    ),
    SectionSpec(
        "bias_risks_limitations",
        "Bias, risks and limitations",
        (
            r"\bbias(es)?\b|\brisks?\b|\blimitations?\b|\bethic|\bfairness\b|\bcaveats?\b|\bharms?\b",
            r"\bsafety\b|\bbroader (impact|implications)|\bsocial impact|\bresponsible ai\b|\bstereotyp",
            r"einschrankung|\bverzerrung|\brisiken\b|\blimites\b|\bbiais\b|\blimitaciones\b|\bsesgos?\b"
            r"|\blimitazioni\b",
            r"局限|偏见|风险|限制|伦理|制限|限界|バイアス|偏り|リスク|倫理|注意事項|한계|편향|위험|윤리|제한",
        ),
        cues=(r"バイアス|偏った|偏り|偏见|偏見|편향",),
    ),
    SectionSpec(
        "training_data",
        "Training data",
        (
            r"\btrain(ing)? (and evaluation )?data(sets?)?\b|\bpre-?training data|\bfine-?tuning data",
            r"^data(sets?)?$|^(the )?data(set)? used\b|\btraining (corpus|corpora|set)\b|\bdata sources?\b",
            r"trainingsdaten|donnees d'?entrainement|datos de entrenamiento|dati di addestramento|训练数据",
            r"数据集|训练语料|预训练数据|学習データ|訓練データ|学習コーパス|データセット|학습 ?데이터"
            r"|훈련 ?데이터|데이터 ?(셋|세트)",
        ),
        table_patterns=(
            r"^training data$|^(pre-?)?training (data|dataset|corpus|corpora)\b|^data ?sources?$",
            r"^(训练)?数据集?$|^训练数据$|^学習データ$|^データセット$|^(학습 ?)?데이터 ?(셋|세트)?$",
        ),
        short_ok=r"[^\W_]{2,}",  # a dataset's name is an answer ("Training data: The Pile")
    ),
    SectionSpec(
        "training_procedure",
        "Training procedure",
        (
            r"^training$|\btraining (procedure|details|process|setup|hyper-?parameters|regime|method"
            r"|factors)\b",
            r"\bpre-?training\b|\bfine-?tuning\b|\bpost-?training\b|^how (it|the model) was trained",
            r"\bhyper-?parameters?\b|\bpreprocessing\b|^dataloader$|\boptimizer\b",
            r"^trainingsverfahren|^training und|procedure d'?entrainement|procedimiento de entrenamiento"
            r"|训练(过程|方法|细节)",
            r"训练(参数|配置)|超参数|学習(方法|手順|の詳細|設定)|ハイパーパラメータ|학습 ?(방법|절차|과정"
            r"|설정)|훈련 ?(방법|절차|과정)",
            r"하이퍼 ?파라미터|^(모델 ?)?(학습|훈련)$|^(模型)?训练$|训练(框架|策略)|^(モデルの)?学習$",
        ),
        exclude=r"\b(pre-?)?training data\b|\bfine-?tuning data\b",
    ),
    SectionSpec(
        "evaluation",
        "Evaluation",
        (
            r"\bevaluations?\b|\bresults?\b|\bperformance\b|\bbenchmarks?\b|\bmetrics\b|\baccuracy\b",
            r"\bevaluierung|\bauswertung|\bergebnisse|\bevaluacion|\bresultados|\bvalutazione|评估|评测|结果",
            r"效果|性能|实验|ベンチマーク|評価|結果|평가|성능|결과|벤치마크",
        ),
        table_patterns=(
            r"\bbenchmarks?\b|\baccuracy\b|\bacc\b|\bf1\b|\bf1-score\b|\bprecision\b|\brecall\b|\bbleu\b"
            r"|\brouge",
            r"\bwer\b|\bcer\b|\bperplexity\b|\bexact match\b|\bpass ?@ ?1\b|\bmmlu\b|\bauc\b",
        ),
        short_ok=r"\d",  # "- Accuracy: 0.91"
        non_answer=True,
    ),
    SectionSpec(
        "environmental_impact",
        "Environmental impact",
        (
            r"\benvironmental\b|\bcarbon\b|\bco2|\bco₂|\bemissions?\b|\benergy\b|\bgreenhouse\b"
            r"|\bfootprint\b",
            r"\bpower consumption\b|\bsustainab|\bcompute (and|&) (energy|carbon|emissions)\b"
            r"|\btraining compute\b",
            r"umwelt|impact environnemental|impacto ambiental|环境影响|碳排放|環境|二酸化炭素|탄소|환경",
        ),
        table_patterns=(
            r"\bco2|\bco₂|\bemissions?\b|\bcarbon\b|\bgreenhouse\b|\bpower consumption\b|\benergy\b",
        ),
        cues=(
            r"\d[\d,.]*\s*(k?g|t|tons?|tonnes?|metric tons?)\s*(of\s+)?co2|\btco2e?q?\b",
            r"\b(carbon|co2|greenhouse gas) (emissions?|footprint)\b[^.\n]{0,80}\d",
            r"\d[\d,.]*\s*[km]?wh\b|\d[\d,.]*\s*[km]?\s*gpu[- ]hours\b",
        ),
        short_ok=r"\d",  # "- CO2 Emissions (in grams): 0.0186"
    ),
    SectionSpec(
        "citation",
        "Citation",
        (
            r"\bcitations?\b|\bcite\b|\bciting\b|\bbibtex\b|\breferences?\b|\bzitat|\bzitier|\bcitar\b|引用"
            r"|인용",
        ),
        cues=(r"\bplease cite\b|\bcite (this|our|the) (work|paper|model|report)\b",),
    ),
    SectionSpec(
        "contact",
        "Contact",
        (
            r"\bcontacts?\b|\bmaintainers?\b|\bquestions\b|\bfeedback\b|\bcomments\b|\bwhere to send\b",
            r"\breport(ing)? (an? )?(issues?|problems?|bugs?|concerns?)\b",
            r"\bkontakt\b|\bcontacto\b|\bcontatti\b|联系|連絡先|お問い合わせ|연락처|문의",
        ),
        exclude=r"frequently asked|\bfaq\b|\bauthors?\b(?!.*contact)",
        cues=(
            r"\bwhere to send (questions|comments|feedback)\b",
            r"\b(submit|send|direct|address) (your )?(questions|comments|feedback|inquiries|enquiries)\b",
            r"\bcontact us\b|\breach (out to )?us at\b",
        ),
        short_ok=r"@|https?://|mailto:|\bwww\.",
    ),
)

_BIAS_WORDS = (
    r"\bbias|stereotyp|under-?represent|over-?represent|\bskew|imbalanc|\brepresentative|demographic"
    r"|discriminat|fairness|prejudic|偏|편향|バイアス"
)
DATASET_SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec("dataset_summary", "Dataset summary", (r"\bdataset (summary|description)\b|^summary$",)),
    SectionSpec(
        "personal_info",
        "Personal and sensitive information",
        (r"\bpersonal\b|\bsensitive\b|\bprivacy\b|\bpii\b|\bprivate\b|\banonymi[sz]",),
    ),
    SectionSpec(
        "bias",
        "Discussion of biases",
        (r"\bbias(es)?\b|\bstereotyp",),
        secondary=(r"\bsocial impacts?\b|\blimitations?\b|\bethic|\brisks?\b",),
        secondary_body=_BIAS_WORDS,
        non_answer=True,
    ),
    SectionSpec("licensing", "Licensing information", (r"\blicen[cs]",)),
    SectionSpec("curation", "Curation rationale", (r"\bcuration\b|\bsource data\b|\bcollection\b",)),
)

_PLACEHOLDER = re.compile(
    r"\[?more information needed\]?(\([^)]*\))?|\[?needs? more information\]?(\([^)]*\))?|\bto be (added"
    r"|announced|determined|updated)\b"
    r"|\btbd\b|\btba\b|\btodo\b|\bn/?a\b|\bcoming soon\b|\bunknown\b|\bforthcoming\b|\bwork in progress\b"
    r"|\bwill be (added|released|published|updated)( soon| later)?\b|待补充|暂无|待定|準備中|준비 ?중",
    re.IGNORECASE,
)
_TEMPLATE_VAR = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_HTML_COMMENT = re.compile(r"<!--.*?(-->|$)", re.DOTALL)
_TAG = re.compile(r"<[^>]{0,500}>")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t#]*$")
_LIST_ATX = re.compile(
    r"^\s{0,6}[-*+][ \t]+(#{1,6})[ \t]+(.*?)[ \t#]*$"
)  # "- ### 模型介绍" (PaddleHub cards)
_BOLD_LINE = re.compile(r"^ {0,3}(?:\*\*|__)(?P<t>[^*_]{2,120}?)(?:\*\*|__)\s*:?\s*$")
_HTML_HEADING = re.compile(r"^\s*<h([1-6])[^>]{0,200}>(.*?)</h\1>\s*$", re.IGNORECASE)
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BIBTEX = re.compile(
    r"@(article|inproceedings|misc|book|techreport|inbook|incollection|phdthesis|software)\s*\{", re.I
)
_LIST_ITEM = re.compile(r"^(?P<indent>\s*)(?:[-*+]|\d{1,2}[.)])\s+")
# Lead-ins at the start of a paragraph or list item: **Label** text, *Label* text, Label: text.
_LEAD_BOLD = re.compile(r"^(?:\*\*|__)(?P<t>[^*_\n]{2,120}?)(?:\*\*|__)(?P<rest>.*)$")
_LEAD_ITALIC = re.compile(r"^(?:\*(?![\s*])|_(?![\s_]))(?P<t>[^*_\n]{2,120}?)[*_](?![*_\w])(?P<rest>.*)$")
_LEAD_LABEL = re.compile(r"^(?P<t>[^\W\d_][^:：\n`|]{1,60}?)\s*[:：](?:\s+(?P<rest>.*)|$)")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")
_CLAUSE = re.compile(
    r"(?<=[.!?。！？;；])\s+|\n|,?\s+\b(?:however|but|though|although|whereas)\b", re.IGNORECASE
)
_NON_ANSWER = re.compile(
    r"\bnot\s+(yet\s+)?(been\s+)?(\w+ly\s+)?(investigated|studied|examined|analy[sz]ed|assessed|evaluated"
    r"|measured"
    r"|explored|documented)\b",
    re.IGNORECASE,
)


@lru_cache(maxsize=8192)
def normalise_heading(text: str) -> str:
    """Lower-case, strip HTML, emphasis, numbering, punctuation and accents."""
    text = text[:MAX_HEADING_CHARS]
    text = _TAG.sub(" ", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [label](url) -> label
    text = unicodedata.normalize("NFKC", text)  # full-width forms; Hangul and kana stay composed
    text = "".join(_strip_accent(c) for c in text)
    text = text.lower()
    text = text.replace("\\", "")
    text = re.sub(r"[*_`~]+", " ", text)
    text = re.sub(r"\[optional\]|\(optional\)", " ", text)
    text = re.sub(r"^\s*(\d+(\.\d+)*|[ivx]+)[.)-]?\s+", " ", text)  # numbering
    text = re.sub(r"^\s*(第?[一二三四五六七八九十]+[章节部分]?|\d+)\s*[、.．)）]\s*", " ", text)  # 一、 二、
    text = re.sub(r"[:：.!?¿¡,;()\[\]\"“”]+", " ", text)
    text = text.replace("&", " and ")
    text = re.sub(r"[^\w\s'+/@-]", " ", text)  # emoji and symbols
    return re.sub(r"\s+", " ", text).strip()


def _strip_accent(c: str) -> str:
    """A Latin, Greek or Cyrillic letter without its accents; other scripts unchanged (kana keep their marks)."""
    if ord(c) < 0x80 or ord(c) > 0x052F:
        return c
    return "".join(d for d in unicodedata.normalize("NFD", c) if not unicodedata.combining(d))


_CJK_RUN = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+")


@lru_cache(maxsize=4096)
def _heading_variants(norm: str) -> tuple[str, ...]:
    """The normalised heading, and each script run of a bilingual one (`介绍 introduction` -> both halves)."""
    out = [norm]
    cjk = " ".join(_CJK_RUN.findall(norm)).strip()
    if cjk and cjk != norm:
        out.append(cjk)
        latin = re.sub(r"\s+", " ", _CJK_RUN.sub(" ", norm)).strip()
        if re.search(r"[a-z]", latin):
            out.append(latin)
    return tuple(out)


def _mask(text: str) -> list[str]:
    """The text's lines with fenced code and HTML comments blanked (line numbers kept)."""
    text = _HTML_COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    lines = text.split("\n")
    out: list[str] = []
    fence: str | None = None
    for raw in lines:
        line = raw[:2000]
        m = _FENCE.match(line)
        if m:
            marker = m.group(1)
            if fence is None:
                fence = marker[0] * 3
            elif marker.startswith(fence):
                fence = None
            out.append("")
            continue
        out.append("" if fence is not None else line.rstrip())
    return out


def _headings(lines: list[str]) -> list[Heading]:
    """Headings in masked lines: ATX, HTML, setext, and bold lines standing alone at the start of a paragraph."""
    headings: list[Heading] = []
    prev_blank = True
    for i, line in enumerate(lines):
        stripped = line.strip()
        h = _ATX.match(line) or _LIST_ATX.match(line)
        prev_heading = bool(headings) and headings[-1].line == i - 1
        if h and h.group(2):
            headings.append(Heading(len(h.group(1)), h.group(2), normalise_heading(h.group(2)), i))
        elif (hh := _HTML_HEADING.match(line)) is not None:
            headings.append(Heading(int(hh.group(1)), hh.group(2), normalise_heading(hh.group(2)), i))
        elif (prev_blank or prev_heading) and (b := _BOLD_LINE.match(line)) is not None:
            headings.append(Heading(4, b.group("t"), normalise_heading(b.group("t")), i))
        elif (
            _SETEXT.match(line)
            and i > 0
            and lines[i - 1].strip()
            and not prev_blank
            and not prev_heading
            and not lines[i - 1].lstrip().startswith(("|", "-", "*", ">"))
        ):
            level = 1 if stripped.startswith("=") else 2
            prev = lines[i - 1]
            headings.append(Heading(level, prev.strip(), normalise_heading(prev), i - 1))
        prev_blank = not stripped
    return headings


def find_headings(text: str) -> list[Heading]:
    """All headings in Markdown text, outside fenced code blocks and HTML comments."""
    return _headings(_mask(text))


def _heading_ends(headings: list[Heading], n: int) -> list[int]:
    """Where each heading's section ends: at the next heading of the same or a higher level."""
    ends = [n] * len(headings)
    open_: list[int] = []
    for i, h in enumerate(headings):
        while open_ and headings[open_[-1]].level >= h.level:
            ends[open_.pop()] = h.line
        open_.append(i)
    return ends


def _lead_in(line: str) -> tuple[str, str] | None:
    """(label, rest of line) when the line opens with an emphasised or `Label:` lead-in."""
    item = _LIST_ITEM.match(line)
    s = line[item.end() :] if item else line.lstrip()
    s = re.sub(r"^>\s*", "", s)
    for rx, max_words in (
        (_LEAD_BOLD, MAX_LEAD_IN_WORDS),
        (_LEAD_ITALIC, MAX_LEAD_IN_WORDS),
        (_LEAD_LABEL, 7),
    ):
        m = rx.match(s)
        if not m:
            continue
        label = m.group("t").strip()
        rest = (m.group("rest") or "").strip()
        if rx is not _LEAD_LABEL:
            if label.endswith((":", "：")):
                label = label[:-1].strip()
            rest = re.sub(r"^[:：.\s]+", "", rest)
        words = len(re.findall(r"\w+", label))
        if words == 0 or words > max_words or len(label) > 100:
            continue
        if rx is _LEAD_LABEL and re.search(r"[.!?]\s|https?$|^(e\.g|i\.e|note|nb)$", label, re.I):
            continue
        return label, rest
    return None


def _lead_ins(lines: list[str], raw: list[str], heading_lines: set[int]) -> list[Anchor]:
    """Lead-ins at the start of a paragraph (after a blank line or a heading) or of a list item."""
    out: list[Anchor] = []
    n = len(lines)
    for i, line in enumerate(lines):
        if not line.strip() or i in heading_lines:
            continue
        item = _LIST_ITEM.match(line)
        starts_paragraph = i == 0 or not lines[i - 1].strip() or (i - 1) in heading_lines
        if not (starts_paragraph or item):
            continue
        found = _lead_in(line)
        if found is None:
            continue
        label, rest = found
        indent = len(item.group("indent")) if item else -1
        end = i + 1
        while end < min(n, i + 60):
            nxt = lines[end]
            if not nxt.strip() or end in heading_lines:
                break
            sub = _LIST_ITEM.match(nxt)
            if sub and len(sub.group("indent")) <= indent:
                break
            if not item and sub is None and _lead_in(nxt) is not None and _LEAD_BOLD.match(nxt.lstrip()):
                break
            end += 1
        out.append(Anchor("lead-in", label, normalise_heading(label), i, 0, rest or " ", (i + 1, end), raw))
        if len(out) >= MAX_ANCHORS:
            break
    return out


def _md_tables(lines: list[str]) -> list[Anchor]:
    """Header cells of Markdown pipe tables, each with the table's data rows as body."""
    out: list[Anchor] = []
    for i in range(len(lines) - 1):
        if "|" not in lines[i] or not _TABLE_SEP.match(lines[i + 1]) or "-" not in lines[i + 1]:
            continue
        rows = []
        for j in range(i + 2, len(lines)):
            if "|" not in lines[j] or not lines[j].strip():
                break
            rows.append(lines[j])
        body = "\n".join(rows) or " "
        header = _cells(lines[i])
        for cell in header[:MAX_TABLE_COLUMNS]:
            if cell:
                out.append(Anchor("table", cell, normalise_heading(cell), i, 0, body))
        if len(header) == 2:  # a key | value table: each key heads its row ("| 数据集 | 百度自建数据集 |")
            for j, row in enumerate(rows[:200], start=i + 2):
                cells = _cells(row)
                if len(cells) == 2 and cells[0]:
                    out.append(Anchor("table", cells[0], normalise_heading(cells[0]), j, 0, cells[1] or " "))
        if len(out) >= MAX_ANCHORS:
            break
    return out


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


_TR = re.compile(r"<tr\b", re.I)
_CELL = re.compile(r"<(t[hd])\b[^>]{0,300}>", re.I)


def _html_tables(lines: list[str]) -> list[Anchor]:
    """Header cells of HTML tables (`<th>`, or the cells of the first row), each with the data rows as body."""
    text = "\n".join(lines)
    out: list[Anchor] = []
    for t in re.finditer(r"<table\b.*?(</table>|$)", text[:MAX_TABLE_CHARS], re.I | re.S):
        start = t.start()
        block = t.group(0)
        rows = [m.start() for m in _TR.finditer(block)]
        if not rows:
            continue
        spans = list(zip(rows, rows[1:] + [len(block)], strict=True))
        header_rows = [s for s in spans if re.search(r"<th\b", block[s[0] : s[1]], re.I)] or spans[:1]
        data = " ".join(block[a:b] for a, b in spans if (a, b) not in header_rows)
        body = re.sub(r"\s+", " ", _TAG.sub(" ", data)).strip() or " "
        for a, b in header_rows[:3]:
            row = block[a:b]
            cells = list(_CELL.finditer(row))[:MAX_TABLE_COLUMNS]
            for k, c in enumerate(cells):
                end = cells[k + 1].start() if k + 1 < len(cells) else len(row)
                cell = re.sub(r"\s+", " ", _TAG.sub(" ", row[c.end() : end])).strip()
                if cell:
                    line = text.count("\n", 0, start + a + c.start())
                    out.append(Anchor("table", cell, normalise_heading(cell), line, 0, body))
        if len(out) >= MAX_ANCHORS:
            break
    return out


# Sentences the Hugging Face card templates ship with: present in every unfilled template, so no evidence.
_BOILERPLATE = re.compile(
    r"carbon emissions can be estimated using the[^\n]*|use the code below to get started with the model\.?"
    r"|users (\(both direct and downstream\) )?should be made aware of the risks, biases and limitations of the"
    r" (model|dataset)\.(?: more information needed for further recommendations\.)?",
    re.IGNORECASE,
)
_HEADING_LINE = re.compile(
    r"^ {0,3}#{1,6}(?:[ \t].*)?$|^\s*<h[1-6][^>]*>.*</h[1-6]>\s*$", re.MULTILINE | re.IGNORECASE
)
_CONTACT_LINE = re.compile(
    r"^\s*(?:[-*+]\s*)?\**(?:contact|questions|feedback)\**\s*:|mailto:|\b[\w.+-]+@[\w-]+\.(?:com|org|net|ai"
    r"|io|edu|de|fr|uk)\b",
    re.IGNORECASE | re.MULTILINE,
)


def _clean(text: str) -> str:
    """Section text without comments, sub-headings, template sentences, placeholders, tags and link targets."""
    text = _HTML_COMMENT.sub(" ", text)
    text = _HEADING_LINE.sub(" ", text)
    text = _BOILERPLATE.sub(" ", text)
    text = _TEMPLATE_VAR.sub(" ", text)
    text = _PLACEHOLDER.sub(" ", text)
    text = _TAG.sub(" ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)  # drop link targets
    # Template scaffolding: labels with nothing after them once placeholders are gone ("- **Developed by:**",
    # "**Estimated carbon emissions:** *(Forthcoming.)*", "- Hours used: [More Information Needed]").
    text = re.sub(
        r"^[ \t]*(?:[-*+][ \t]+)?(?:(?:\*\*|__)[^*_\n]{1,80}(?:\*\*|__)|[^\W\d_][^:\n*_]{0,60}:)[ \t*_().:,;-]*$",
        " ",
        text,
        flags=re.MULTILINE,
    )
    # Table header rows (labels, not content), empty rows and separators.
    text = re.sub(
        r"^[^\n|]*\|[^\n]*\n(?=[ \t]*\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$)",
        " \n",
        text,
        flags=re.M,
    )
    return re.sub(r"^[\s|:-]*$", " ", text, flags=re.MULTILINE)


def _substance(text: str) -> str:
    """What is left of section text once comments, templates, placeholders and sub-headings are removed."""
    return re.sub(r"[\W_]+", "", _clean(text))


def _size(substance: str) -> int:
    """Length of substantive text; a CJK or Hangul character weighs about a short Latin word (3 letters)."""
    return len(substance) + 2 * sum(len(run) for run in _CJK_RUN.findall(substance))


def _placeholder_quote(body: str, kind: AnchorKind) -> str:
    """The placeholder a section holds, quoted as evidence."""
    m = _PLACEHOLDER.search(_HTML_COMMENT.sub(" ", body))
    if m:
        return m.group(0).strip()[:80]
    var = _TEMPLATE_VAR.search(body)
    if var:
        return var.group(0)[:80]
    shown = [ln.strip() for ln in _TAG.sub(" ", _HTML_COMMENT.sub(" ", body)).split("\n") if ln.strip()]
    if kind == "table" or (shown and all("|" in ln for ln in shown)):
        return "(an empty table)"
    visible = re.sub(r"\s+", " ", " ".join(shown)).strip(" |:-")
    if visible:
        return visible[:80]
    return "(only an HTML comment)" if "<!--" in body else "(empty)"


def _drop_non_answers(text: str) -> str:
    """The text without clauses that only say the matter was not looked at ('biases have not been studied')."""
    return "\n".join(c for c in _CLAUSE.split(text) if not _NON_ANSWER.search(c))


def _judge(spec: SectionSpec, body: str) -> bool:
    """Whether a section body documents the section (not only a placeholder or a non-answer).

    After a non-answer, what is left must still be on the topic (for a dataset's biases: about bias).
    """
    body = body[:MAX_JUDGED_CHARS]
    if spec.non_answer and _NON_ANSWER.search(body):
        body = _drop_non_answers(body)
        if spec.secondary_body != r"(?!)" and not re.search(spec.secondary_body, _clean(body), re.I):
            return False
    if _size(_substance(body)) >= MIN_CONTENT_CHARS or _table_rows(body):
        return True
    return bool(re.search(spec.short_ok, _clean(body)))


def _table_rows(body: str) -> bool:
    """Whether the body holds a table with a filled data row (a results table is content, however short)."""
    lines = body.split("\n")
    for i in range(1, len(lines) - 1):
        if "|" in lines[i - 1] and _TABLE_SEP.match(lines[i]) and "-" in lines[i]:
            for row in lines[i + 1 :]:
                if "|" not in row:
                    break
                cells = [c for c in _clean(row).strip().strip("|").split("|") if re.search(r"\w", c)]
                if len(cells) >= 2:
                    return True
    return False


def _excerpt(text: str, limit: int = 1200) -> str:
    text = _HTML_COMMENT.sub("", text).strip()
    if len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        text = text[: cut if cut > limit // 2 else limit].rstrip() + "\n\n…"
    return text


@lru_cache(maxsize=256)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], tuple[re.Pattern[str], ...]]:
    """All the patterns as one regex (a quick 'any?'), and each on its own (which one)."""
    return re.compile("|".join(f"(?:{p})" for p in patterns) or r"(?!)"), tuple(map(re.compile, patterns))


def _rank(patterns: tuple[str, ...], exclude: str, norm: str) -> int:
    """Index of the first pattern the heading matches (lower is more specific), or -1."""
    if not norm:
        return -1
    anyone, each = _compiled(patterns)
    variants = _heading_variants(norm)
    if not any(anyone.search(v) for v in variants) or _compiled((exclude,))[0].search(norm):
        return -1
    return next((i for i, rx in enumerate(each) if any(rx.search(v) for v in variants)), -1)


def _matches(patterns: tuple[str, ...], exclude: str, norm: str) -> bool:
    return _rank(patterns, exclude, norm) >= 0


def find_anchors(text: str) -> tuple[list[str], list[Anchor]]:
    """The masked lines of a card body and every heading, lead-in and table header cell in it.

    Anchors are found in the masked lines (no code, no comments); their bodies are the raw text, code included,
    so a citation section holding only a BibTeX block still has content.
    """
    lines = _mask(text)
    raw = [ln[:2000] for ln in text.split("\n")]
    headings = _headings(lines)
    ends = _heading_ends(headings, len(lines))
    anchors = [
        Anchor("heading", h.text, h.norm, h.line, h.level, "", (h.line + 1, end), raw)
        for h, end in zip(headings, ends, strict=True)
    ]
    anchors += _lead_ins(lines, raw, {h.line for h in headings})
    anchors += _md_tables(lines) + _html_tables(lines)
    return lines, anchors


def detect_sections(
    text: str,
    specs: tuple[SectionSpec, ...] = MODEL_SECTIONS,
    *,
    line_offset: int = 0,
    metadata: dict[str, object] | None = None,
) -> tuple[SectionFact, ...]:
    """Check every spec against the card body. Line numbers are 1-based in the whole card file."""
    lines, anchors = find_anchors(text)
    headings = [a for a in anchors if a.kind == "heading"]
    meta = metadata or {}
    facts: list[SectionFact] = []
    sentences: list[tuple[int, str]] | None = None  # candidate lines for the sentence cues, made when needed
    for spec in specs:
        fact = _find(spec, anchors, line_offset)
        if fact is None or not fact.present:
            if spec.cues and sentences is None:
                sentences = _cue_lines(lines)
            alt = _fallback(spec, text, lines, sentences or [], headings, meta, line_offset)
            fact = alt or fact
        facts.append(fact or SectionFact(key=spec.key, label=spec.label, present=False))
    return tuple(facts)


def _find(spec: SectionSpec, anchors: list[Anchor], line_offset: int) -> SectionFact | None:
    """The first anchor that documents the section (headings first), else the first placeholder one."""
    placeholder: SectionFact | None = None
    for kind in ("heading", "lead-in", "table"):
        patterns = spec.table_patterns if kind == "table" else spec.patterns
        ranked = [
            (rank, a)
            for a in anchors
            if a.kind == kind and (rank := _rank(patterns, spec.exclude, a.norm)) >= 0
        ]
        # The most specific pattern first ('Ethical Considerations and Limitations' before 'Safety').
        for _, a in sorted(ranked, key=lambda t: t[0]):
            fact = _fact(spec, a, line_offset, _judge(spec, a.body))
            if fact.present:
                return fact
            placeholder = placeholder or fact
    for a in anchors:
        if (
            a.kind != "table"
            and _matches(spec.secondary, spec.exclude, a.norm)
            and re.search(spec.secondary_body, _drop_non_answers(_clean(a.body)), re.I)
            and _judge(spec, a.body)
        ):
            return _fact(spec, a, line_offset, True)
    return placeholder


def _fact(spec: SectionSpec, a: Anchor, line_offset: int, present: bool) -> SectionFact:
    return SectionFact(
        key=spec.key,
        label=spec.label,
        present=present,
        placeholder=not present,
        heading=a.text.strip()[:MAX_HEADING_CHARS],
        line=a.line + 1 + line_offset,
        excerpt=_excerpt(a.body) if present else "",
        found_by=a.kind,
        placeholder_text="" if present else _placeholder_quote(a.body, a.kind),
    )


_ANY_CUE = re.compile(
    "|".join(f"(?:{c})" for spec in MODEL_SECTIONS + DATASET_SECTIONS for c in spec.cues), re.IGNORECASE
)


# Every cue needs one of these words: a plain substring test skips most lines before any regex runs.
_CUE_WORDS = (
    "not", "against", "prohibit", "co2", "carbon", "greenhouse", "wh", "gpu",
    "cite", "send", "submit", "direct", "address", "contact", "reach", "バイアス", "偏", "편향",
)  # fmt: skip


def _cue_lines(lines: list[str]) -> list[tuple[int, str]]:
    """(index, cleaned line) for the prose lines where some sentence cue could match, checked cheaply first."""
    out = []
    for i, ln in enumerate(lines[:MAX_CUE_LINES]):
        low = ln[:1000].lower()
        if low.lstrip().startswith("|") or not any(w in low for w in _CUE_WORDS):
            continue
        if _ANY_CUE.search(_TAG.sub(" ", ln[:1000])):
            out.append((i, _clean(ln)))
    return out


def _fallback(
    spec: SectionSpec,
    text: str,
    lines: list[str],
    sentences: list[tuple[int, str]],
    headings: list[Anchor],
    meta: dict[str, object],
    line_offset: int,
) -> SectionFact | None:
    """Evidence that a section's content exists without a heading, lead-in or table for it."""
    key, label = spec.key, spec.label
    if key == "model_description":
        # Introductory text before the first second-level heading is the description on many cards.
        first = next((h.line for h in headings if h.level >= 2), len(lines))
        intro_lines = [(i, ln) for i, ln in enumerate(lines[:first]) if not _ATX.match(ln)]
        intro = "\n".join(ln for _, ln in intro_lines)[:MAX_JUDGED_CHARS]
        if _size(_substance(intro)) >= 80:
            start = next((i for i, ln in intro_lines if _substance(ln)), 0)
            return SectionFact(
                key,
                label,
                True,
                heading="(introductory text)",
                line=start + 1 + line_offset,
                excerpt=_excerpt(intro),
                found_by="introduction",
            )
    if key == "citation":
        m = _BIBTEX.search(text)
        if m:
            line = text.count("\n", 0, m.start()) + 1 + line_offset
            return SectionFact(key, label, True, heading="(BibTeX entry)", line=line, found_by="text")
    if key == "contact":
        prose = "\n".join(lines)
        m = _CONTACT_LINE.search(prose)
        if m:
            line = prose.count("\n", 0, m.start()) + 1 + line_offset
            return SectionFact(key, label, True, heading="(contact line)", line=line, found_by="text")
    for i, sentence in sentences if spec.cues else []:
        for cue in spec.cues:
            m = re.search(cue, sentence, re.IGNORECASE)
            if m:
                return SectionFact(
                    key,
                    label,
                    True,
                    heading=f"(sentence: '{m.group(0)}')",
                    line=i + 1 + line_offset,
                    excerpt=_excerpt(lines[i].strip(), 400),
                    found_by="text",
                )
    if key == "evaluation" and meta.get("model-index"):
        return SectionFact(key, label, True, heading="(metadata: model-index)", found_by="metadata")
    if key == "environmental_impact" and meta.get("co2_eq_emissions"):
        return SectionFact(key, label, True, heading="(metadata: co2_eq_emissions)", found_by="metadata")
    return None


# The languages the section patterns cover: a card in another language may hold sections they cannot read.
COVERED_LANGUAGES = frozenset({"en", "de", "fr", "es", "it", "pt", "zh"})
# (language, letters of its script, letters per word: a CJK character is about a word, a Latin word ~5 letters)
_SCRIPTS: tuple[tuple[str, re.Pattern[str], float], ...] = (
    ("ko", re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]"), 2.5),
    ("ja", re.compile(r"[\u3040-\u30ff]"), 2.0),
    ("zh", re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]"), 1.5),
    ("ru", re.compile(r"[\u0400-\u04ff]"), 6.0),
    ("ar", re.compile(r"[\u0600-\u06ff]"), 5.0),
    ("he", re.compile(r"[\u0590-\u05ff]"), 5.0),
    ("hi", re.compile(r"[\u0900-\u097f]"), 5.0),
    ("th", re.compile(r"[\u0e00-\u0e7f]"), 5.0),
    ("el", re.compile(r"[\u0370-\u03ff]"), 6.0),
    ("latin", re.compile(r"[A-Za-z\u00c0-\u024f]"), 5.0),
)
_STOPWORDS = {
    "en": "the and of to is in for with this that are on be it as by from",
    "de": "der die das und ist nicht mit für ein eine wird sind auf den dem zu",
    "fr": "le les et est des une pour dans avec sur pas du au ce qui sont",
    "es": "el los las y es una para con por del que se como al su son",
    "it": "il gli di è che una per con della non sono del dei nel alla",
    "pt": "o os é não uma para com do da dos das que em ao são pelo",
    "nl": "het een en van is dat niet voor met zijn wordt op te ook deze",
}
_STOPSETS = {lang: frozenset(words.split()) for lang, words in _STOPWORDS.items()}
_MIN_WORDS = 15


def _prose(text: str) -> str:
    """Card text without code, HTML, URLs and link targets: what the authors wrote in their language."""
    text = "\n".join(_mask(text[:100_000]))
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = _TAG.sub(" ", text)
    text = re.sub(r"\]\([^)]*\)|https?://\S+", " ", text)
    return text


def detect_language(text: str) -> str | None:
    """The language of a card's prose as an ISO 639-1 code, from its scripts and a few stopwords.

    None when there is too little text, or Latin-script text in a language the stopword lists do not know.
    """
    prose = _prose(text)
    words: dict[str, float] = {}
    for lang, rx, per_word in _SCRIPTS:
        words[lang] = len(rx.findall(prose)) / per_word
    if words["ja"] and words["ja"] >= 0.1 * (words["ja"] + words["zh"]):  # kana: Japanese, kanji included
        words["ja"] += words.pop("zh")
    best = max(words, key=lambda k: words[k])
    if words[best] < _MIN_WORDS:
        return None
    if best == "ru" and re.search(r"[іїєґ]", prose, re.I):
        return "uk"
    if best == "ar" and re.search(r"[پچژگ]", prose):
        return "fa"
    if best != "latin":
        return best
    tokens = Counter(re.findall(r"[^\W\d_]+", prose.lower()))
    hits = {lang: sum(tokens[w] for w in stop) for lang, stop in _STOPSETS.items()}
    lang = max(hits, key=lambda k: hits[k])
    ranked = sorted(hits.values(), reverse=True)
    if ranked[0] < 5 or ranked[0] < 1.3 * ranked[1]:
        return None
    return lang


def sections_limited(text: str, language: str | None) -> bool:
    """True when the card is in a language the section patterns do not cover and so are most of its headings.

    A Korean card with English headings is read as usual; one with Korean headings may hold sections the
    patterns cannot see, so the sections not found are unknown rather than missing.
    """
    if language is None or language in COVERED_LANGUAGES:
        return False
    script = next((rx for lang, rx, _ in _SCRIPTS if lang == language), None)
    if language == "ja":
        script = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
    if script is None:  # a Latin-script language: its headings are taken to be in it too
        return True
    headings = find_headings(text)
    if not headings:
        return True
    own = sum(1 for h in headings if script.search(h.text))
    return own * 3 >= len(headings)


def completeness_score(facts: tuple[SectionFact, ...]) -> float:
    """Share of recommended sections present with substance, as a percentage (0-100)."""
    if not facts:
        return 0.0
    return round(100.0 * sum(f.present for f in facts) / len(facts), 1)
