"""Agreement of the section detector with hand labels on real cards, and the layouts real cards use.

The labels in tests/fixtures/labels/ were written by reading the cards in ../shared/data/cards (each cell names the
line that decides it) before the detector was changed. Before the change the detector agreed on 197 of 220 model
section cells (89.5%) and 44 of 48 dataset statement cells (91.7%); after it, 219 of 220 and 48 of 48 (measured on
the same cards it was tuned on). Run with `pytest -s` to see the confusion tables.
The synthetic cards in tests/fixtures/labels/synthetic/ cover the layouts the misses came from and run without
../shared.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from audit.collect.cardfacts import card_language, dataset_facts, model_sections, personal_info_statement
from audit.collect.cardparse import parse_card
from audit.collect.sections import (
    DATASET_SECTIONS,
    MODEL_SECTIONS,
    detect_language,
    detect_sections,
    sections_limited,
)
from audit.model import SectionFact

LABELS = Path(__file__).parent / "fixtures" / "labels"
SYNTHETIC = LABELS / "synthetic"
TARGET = 0.95
PI_CLASSES = ("present", "absent", "unclear", "undocumented")


def _labels(name: str) -> dict[str, dict[str, dict[str, Any]]]:
    cards: dict[str, dict[str, dict[str, Any]]] = yaml.safe_load((LABELS / name).read_text(encoding="utf-8"))[
        "cards"
    ]
    return cards


def _check_quotes(folder: Path, labels: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Each labelled line still says what the label quotes (the shared cards have not moved under the labels)."""
    for name, cells in labels.items():
        lines = (folder / name).read_text(encoding="utf-8").split("\n")
        for key, cell in cells.items():
            if cell.get("line"):
                assert lines[cell["line"] - 1].strip().startswith(cell["quote"].rstrip("…")), (name, key)


def _sections(path: Path) -> dict[str, SectionFact]:
    facts, _ = model_sections(parse_card(path.read_bytes()))
    return {f.key: f for f in facts}


def test_model_section_agreement(shared_data: Path) -> None:
    """Per-section confusion table over the labelled real model cards; agreement at least 95%."""
    labels = _labels("model_sections.yaml")
    folder = shared_data / "cards" / "models"
    _check_quotes(folder, labels)
    table: dict[str, Counter[str]] = {s.key: Counter() for s in MODEL_SECTIONS}
    misses, same_line, both, limited = [], 0, 0, []
    for name, cells in labels.items():
        found = _sections(folder / name)
        language, is_limited = card_language(parse_card((folder / name).read_bytes()))
        if is_limited:
            limited.append(f"{name} ({language})")
        for key, cell in cells.items():
            got, want = found[key].present, bool(cell["present"])
            table[key]["TP" if got and want else "FP" if got else "FN" if want else "TN"] += 1
            if got != want:
                misses.append(f"  {name} {key}: labelled {want} (line {cell['line']}), detector {got}")
            elif got:
                both += 1
                same_line += found[key].line == cell["line"]
    agree = sum(c["TP"] + c["TN"] for c in table.values())
    total = sum(sum(c.values()) for c in table.values())
    print(
        f"\nModel sections: {len(labels)} cards, {total} cells, agreement {agree}/{total} = {agree / total:.1%}"
    )
    print(f"{'section':<24}{'TP':>5}{'FP':>5}{'FN':>5}{'TN':>5}{'agree':>9}")
    for key, c in table.items():
        n = sum(c.values())
        print(f"{key:<24}{c['TP']:>5}{c['FP']:>5}{c['FN']:>5}{c['TN']:>5}{(c['TP'] + c['TN']) / n:>9.1%}")
    print(f"Same line as the label on {same_line} of {both} sections both call present.")
    print(f"Section matching limited by language: {', '.join(limited) or 'none'}")
    print("\n".join(["Disagreements:", *misses]) if misses else "No disagreements.")
    assert agree / total >= TARGET, misses


def test_dataset_statement_agreement(shared_data: Path) -> None:
    """Bias-documented confusion table and personal-information class matrix; agreement at least 95%."""
    labels = _labels("dataset_statements.yaml")
    folder = shared_data / "cards" / "datasets"
    _check_quotes(folder, labels)
    bias: Counter[str] = Counter()
    pi: Counter[tuple[str, str]] = Counter()
    misses = []
    for name, cells in labels.items():
        facts = dataset_facts(
            name, parse_card((folder / name).read_bytes()), source="local", resolved_revision=None
        )
        want_bias, want_pi = bool(cells["bias"]["present"]), cells["personal_info"]["class"]
        got = facts.bias_documented
        bias["TP" if got and want_bias else "FP" if got else "FN" if want_bias else "TN"] += 1
        pi[(want_pi, facts.personal_info)] += 1
        if got != want_bias:
            misses.append(f"  {name} bias: labelled {want_bias}, detector {got}")
        if facts.personal_info != want_pi:
            misses.append(f"  {name} personal_info: labelled {want_pi}, detector {facts.personal_info}")
    agree = bias["TP"] + bias["TN"] + sum(n for (want, got), n in pi.items() if want == got)
    total = 2 * len(labels)
    print(
        f"\nDataset statements: {len(labels)} cards, {total} cells, agreement {agree}/{total} = {agree / total:.1%}"
    )
    print(f"bias documented: TP {bias['TP']} FP {bias['FP']} FN {bias['FN']} TN {bias['TN']}")
    print("personal information (rows: label, columns: detector)")
    print(" " * 14 + "".join(f"{c:>14}" for c in PI_CLASSES))
    for want in PI_CLASSES:
        print(f"{want:<14}" + "".join(f"{pi[(want, got)]:>14}" for got in PI_CLASSES))
    print("\n".join(["Disagreements:", *misses]) if misses else "No disagreements.")
    assert agree / total >= TARGET, misses


# --- Layouts of real cards, as small synthetic cards (no ../shared needed) ---


def test_meta_style_bold_lead_ins() -> None:
    """`**Out-of-scope Uses** Use in any manner ...` and its kind: every section is found, each where it is."""
    found = _sections(SYNTHETIC / "meta_style_card.md")
    assert all(f.present for f in found.values()), [k for k, f in found.items() if not f.present]
    lines = (SYNTHETIC / "meta_style_card.md").read_text().split("\n")
    expected = {
        "out_of_scope_uses": ("lead-in", "**Out-of-scope Uses** Use in any manner"),
        "environmental_impact": ("lead-in", "**Carbon Footprint** Pretraining utilized"),
        "training_procedure": ("lead-in", "**Training Factors**"),
        "contact": ("lead-in", "**Where to send questions or comments about the model**"),
        "citation": ("lead-in", "**Citations details**"),
        "intended_uses": ("heading", "## Intended Use"),
        "evaluation": ("heading", "## Evaluation Results"),
    }
    for key, (kind, start) in expected.items():
        assert found[key].found_by == kind, key
        assert found[key].line is not None and lines[found[key].line - 1].startswith(start), key
    assert "violates applicable laws" in found["out_of_scope_uses"].excerpt
    assert "tCO2eq" in found["environmental_impact"].excerpt


def test_lead_in_must_open_a_paragraph_or_list_item() -> None:
    text = (
        "Some prose first\n**Out-of-scope Uses** Use in any manner that violates applicable laws or rules.\n"
    )
    assert not {s.key: s for s in detect_sections(text)}["out_of_scope_uses"].present
    for text in (
        "- Contact: questions go to the maintainers at team@example.org\n",
        "* Misuse: do not use the model to generate spam, malware or disinformation campaigns.\n",
        "_Out-of-scope use_: ranking job applicants or any decision about people's access to services.\n",
    ):
        facts = {s.key: s for s in detect_sections(text)}
        assert [s.found_by for s in facts.values() if s.present] == ["lead-in"], text


def test_html_table_co2_figures() -> None:
    found = _sections(SYNTHETIC / "html_table_co2.md")
    env = found["environmental_impact"]
    assert env.present and env.found_by == "table" and env.heading == "Carbon Emitted (tCO2eq)"
    lines = (SYNTHETIC / "html_table_co2.md").read_text().split("\n")
    assert (
        env.line is not None and "<strong>Carbon Emitted</strong>" in lines[env.line - 1]
    )  # the header cell
    empty = "| Model | CO2 emissions (kg) |\n|---|---|\n"
    fact = {s.key: s for s in detect_sections(empty)}["environmental_impact"]
    assert not fact.present and fact.placeholder and fact.placeholder_text == "(an empty table)"


def test_vendor_synonyms() -> None:
    filler = "Ranking job applicants, medical diagnosis, or any decision with legal effect on a person."
    for heading, key in (
        ("## Uses to avoid", "out_of_scope_uses"),
        ("## Prohibited uses", "out_of_scope_uses"),
        ("## Misuse", "out_of_scope_uses"),
        ("## Compute and energy", "environmental_impact"),
        ("## CO2 emissions", "environmental_impact"),
        ("## Reporting issues", "contact"),
        ("## Maintainers", "contact"),
        ("## How to cite", "citation"),
        ("## Training factors", "training_procedure"),
    ):
        facts = {s.key: s for s in detect_sections(f"{heading}\n\n{filler}\n")}
        assert facts[key].present and facts[key].found_by == "heading", heading
    uses_to_avoid = {s.key: s for s in detect_sections(f"## Uses to avoid\n\n{filler}\n")}
    assert not uses_to_avoid["intended_uses"].present  # 'uses' alone does not make it the intended uses
    assert not {s.key: s for s in detect_sections(f"## How to use\n\n{filler}\n")}["intended_uses"].present
    assert not {s.key: s for s in detect_sections(f"## Model Card Authors\n\n{filler}\n")}["contact"].present


def test_sentences_that_document_a_section() -> None:
    text = (
        "## Model use\n\nThe model transcribes speech. In particular, we caution against using it to transcribe "
        "recordings of people taken without their consent.\n\nWhere to send questions or comments about the model: "
        "the issue tracker of the repository.\n"
    )
    facts = {s.key: s for s in detect_sections(text)}
    assert facts["out_of_scope_uses"].present and facts["out_of_scope_uses"].found_by == "text"
    assert facts["out_of_scope_uses"].line == 3
    assert facts["contact"].present and facts["contact"].line == 5


@pytest.mark.parametrize(
    "body,quote",
    [
        ("[More Information Needed]", "[More Information Needed]"),
        ("TBD", "TBD"),
        ("Coming soon", "Coming soon"),
        ("N/A", "N/A"),
        ("<!-- Fill in the results -->", "(only an HTML comment)"),
        ("| Benchmark | Score |\n|---|---|", "(an empty table)"),
    ],
)
def test_placeholder_only_sections_are_missing_with_the_placeholder_quoted(body: str, quote: str) -> None:
    fact = {s.key: s for s in detect_sections(f"## Evaluation\n\n{body}\n\n## Other\n\nText.\n")}[
        "evaluation"
    ]
    assert not fact.present and fact.placeholder and fact.found_by == "heading" and fact.line == 1
    assert fact.placeholder_text == quote


def test_lead_in_placeholder_is_quoted() -> None:
    fact = {s.key: s for s in detect_sections("**Carbon Footprint** [More Information Needed]\n")}[
        "environmental_impact"
    ]
    assert (
        not fact.present
        and fact.found_by == "lead-in"
        and fact.placeholder_text == "[More Information Needed]"
    )


def test_dataset_bias_section_matched_to_its_own_heading() -> None:
    """'Discussion of Biases: [More Information Needed]' is not rescued by a real 'Social Impact' section."""
    facts = dataset_facts(
        "x",
        parse_card((SYNTHETIC / "dataset_bias_placeholder.md").read_bytes()),
        source="local",
        resolved_revision=None,
    )
    assert not facts.bias_documented
    bias = {s.key: s for s in facts.sections}["bias"]
    assert bias.heading == "Discussion of Biases" and bias.placeholder_text == "[More Information Needed]"
    assert facts.personal_info == "present"
    assert facts.personal_info_excerpt == "Usernames are not anonymized in the dataset."


@pytest.mark.parametrize(
    "text,documented",
    [
        # A limitations section counts when it is about the data's biases, and only then.
        (
            "### Discussion of Biases\n\n[More Information Needed]\n\n### Other Known Limitations\n\n"
            "Most annotators were students, so the labels are skewed towards young urban speakers.\n",
            True,
        ),
        (
            "### Discussion of Biases\n\n[More Information Needed]\n\n### Other Known Limitations\n\n"
            "Dataset provided for research purposes only. Please check the licence.\n",
            False,
        ),
        (
            "### Discussion of Biases\n\nThe social biases of this dataset have not yet been investigated.\n",
            False,
        ),
        (
            "### Discussion of Biases\n\nBiases have not been studied; the web text likely carries the "
            "stereotypes common online.\n",
            True,
        ),
        (
            "## Limitations\n\nThe corpus over-represents US English and under-represents other varieties.\n",
            True,
        ),
    ],
)
def test_dataset_bias_documented(text: str, documented: bool) -> None:
    assert {s.key: s for s in detect_sections(text, DATASET_SECTIONS)}["bias"].present is documented


@pytest.mark.parametrize(
    "statement,expected",
    [
        ("Usernames are not anonymized in the dataset.", "present"),
        (
            "Some answers are about contemporary public figures or individuals who appeared in the news.",
            "present",
        ),
        ("The recordings come from people who have donated their voice online.", "present"),
        ("The authors removed the speaker IDs but did not otherwise anonymize the data.", "present"),
        ("No anonymization has been carried out on the tweets or user data.", "present"),
        ("Medical records of patients are included.", "present"),
        ("The dataset does not contain names, but it may include usernames.", "present"),
        ("The data was anonymized, yet it may still contain names of public figures.", "present"),
        ("No effort was made to remove personal information.", "present"),
        ("The dataset contains no personal information.", "absent"),
        ("No personal or sensitive information is included in this dataset.", "absent"),
        ("The data does not contain any personally identifiable information.", "absent"),
        ("All names were removed before release.", "absent"),
        ("Tweets were anonymized by replacing user mentions with a tag.", "absent"),
        ("Financial records were excluded from the corpus.", "absent"),
        ("Faces in the images were blurred and cannot be identified.", "absent"),
        ("Speakers are identified only by a random id; their names are not released.", "absent"),
        ("The corpus was collected from public web pages.", "unclear"),
    ],
)
def test_personal_information_admissions_and_denials(statement: str, expected: str) -> None:
    section = SectionFact("personal_info", "Personal and sensitive information", True, excerpt=statement)
    assert personal_info_statement(section)[0] == expected


def test_korean_card_is_flagged_not_reported_missing() -> None:
    parsed = parse_card((SYNTHETIC / "korean_card.md").read_bytes())
    assert card_language(parsed) == ("ko", True)
    found = {k for k, f in _sections(SYNTHETIC / "korean_card.md").items() if f.present}
    assert {
        "model_description",
        "intended_uses",
        "training_data",
        "evaluation",
        "bias_risks_limitations",
    } <= found


def test_chinese_card_is_read() -> None:
    parsed = parse_card((SYNTHETIC / "chinese_card.md").read_bytes())
    assert card_language(parsed) == ("zh", False)
    found = {k for k, f in _sections(SYNTHETIC / "chinese_card.md").items() if f.present}
    assert found == {"model_description", "training_data", "evaluation", "bias_risks_limitations", "citation"}


def test_bilingual_headings() -> None:
    filler = "本节内容足够长，说明模型的用途与限制。This paragraph has enough words to count as content."
    for heading, key in (
        ("## 介绍（Introduction）", "model_description"),
        ("## 评测效果（Evaluation）", "evaluation"),
        ("## 联系我们（Contact Us）", "contact"),
        ("## ベンチマーク", "evaluation"),
    ):
        assert {s.key: s for s in detect_sections(f"{heading}\n\n{filler}\n")}[key].present, heading


@pytest.mark.parametrize(
    "text,language",
    [
        (
            "This model classifies the sentiment of product reviews. It was trained on the public data of the "
            "shop and it is evaluated with accuracy on a held-out set of reviews from the same period.",
            "en",
        ),
        (
            "Dieses Modell klassifiziert die Stimmung von Produktbewertungen. Es wurde mit den öffentlichen Daten "
            "des Shops trainiert und ist nicht für medizinische Entscheidungen gedacht, die mit dem Modell getroffen "
            "werden.",
            "de",
        ),
        (
            "このモデルは日本語の文章を分類するためのモデルです。学習には公開されているニュース記事を使用しました。"
            "評価データでの精度は九十パーセントでした。",
            "ja",
        ),
        (
            "Эта модель классифицирует тональность отзывов о товарах. Она обучена на открытых данных магазина "
            "и не предназначена для медицинских решений.",
            "ru",
        ),
        ("short", None),
    ],
)
def test_detect_language(text: str, language: str | None) -> None:
    assert detect_language(text) == language


def test_uncovered_language_with_english_headings_is_not_limited() -> None:
    """A Korean card whose headings are English is read as usual: its missing sections are missing."""
    text = (
        "# Model\n\n본 모델은 한국어 문장 간 의미 유사도를 측정하기 위해 만든 모델이며 다양한 데이터로 추가 학습을 진행할 예정입니다. "
        "모델을 사용하기 위해서는 아래 코드를 참조하시길 바랍니다.\n\n## Training data\n\nKLUE STS 학습 데이터 세트\n\n"
        "## Evaluation\n\n테스트 세트에서 피어슨 상관계수 0.88을 기록했습니다.\n"
    )
    assert detect_language(text) == "ko"
    assert not sections_limited(text, "ko")
