"""Section detection on the many ways real cards name their sections."""

from __future__ import annotations

import pytest

from audit.collect.sections import (
    DATASET_SECTIONS,
    MODEL_SECTIONS,
    completeness_score,
    detect_sections,
    normalise_heading,
)

FILLER = "This paragraph has enough real words in it to count as documentation of the section."


def present(text: str) -> set[str]:
    return {s.key for s in detect_sections(text, MODEL_SECTIONS) if s.present}


@pytest.mark.parametrize(
    "heading,key",
    [
        ("# **Intended Use**", "intended_uses"),
        ("## Intended Uses:", "intended_uses"),
        ("## Model Use", "intended_uses"),
        ("### Direct Use", "intended_uses"),
        ("## Ethical Considerations and Limitations", "bias_risks_limitations"),
        ("## Bias, Risks, and Limitations", "bias_risks_limitations"),
        ("<h2>Limitations</h2>", "bias_risks_limitations"),
        ("## <span>Risks</span>", "bias_risks_limitations"),
        ("**Out-of-Scope Use**", "out_of_scope_uses"),
        ("## 3. Out of scope use cases", "out_of_scope_uses"),
        ("## Misuse and Malicious Use", "out_of_scope_uses"),
        ("## Training Data 📚", "training_data"),
        ("#### Training data", "training_data"),
        ("## Training procedure", "training_procedure"),
        ("### Training Hyperparameters [optional]", "training_procedure"),
        ("## Evaluation Results", "evaluation"),
        ("## Metrics (at validation):", "evaluation"),
        ("## Environmental Impact", "environmental_impact"),
        ("## Carbon Emissions", "environmental_impact"),
        ("## Citation [optional]", "citation"),
        ("## BibTeX entry and citation info", "citation"),
        ("## Model Card Contact", "contact"),
        ("## Model Details", "model_description"),
        ("## Description", "model_description"),
        ("## Verwendungszweck", "intended_uses"),
        ("## Einschränkungen", "bias_risks_limitations"),
        ("## Données d'entraînement", "training_data"),
        ("## Évaluation", "evaluation"),
        ("## Usos previstos", "intended_uses"),
        ("## 训练数据", "training_data"),
        ("## 局限性", "bias_risks_limitations"),
        ("## 引用", "citation"),
    ],
)
def test_heading_variants(heading: str, key: str) -> None:
    assert key in present(f"{heading}\n\n{FILLER}\n")


def test_setext_headings() -> None:
    text = f"Intended uses\n-------------\n\n{FILLER}\n\nLimitations\n===========\n\n{FILLER}\n"
    assert {"intended_uses", "bias_risks_limitations"} <= present(text)


def test_bold_line_heading_needs_blank_line_before() -> None:
    assert "intended_uses" in present(f"intro\n\n**Intended uses**\n\n{FILLER}\n")
    # Bold text inside a paragraph is not a heading.
    assert "intended_uses" not in present(f"Some text\n**Intended uses**\n{FILLER}\n")


def test_placeholders_do_not_count() -> None:
    text = (
        "## Intended uses\n\n[More Information Needed]\n\n"
        "## Training data\n\nMore information needed\n\n"
        "## Evaluation\n\n<!-- Provide results here -->\n{{ results | default('', true) }}\n\n"
        "## Citation\n\n**BibTeX:**\n\n[More Information Needed](https://example.org)\n"
    )
    facts = {s.key: s for s in detect_sections(text, MODEL_SECTIONS)}
    for key in ("intended_uses", "training_data", "evaluation", "citation"):
        assert not facts[key].present
        assert facts[key].placeholder
        assert facts[key].line is not None


def test_subsections_count_for_parent() -> None:
    text = f"## Uses\n\n### Direct Use\n\n{FILLER}\n\n## Other\n"
    facts = {s.key: s for s in detect_sections(text, MODEL_SECTIONS)}
    assert facts["intended_uses"].present and facts["intended_uses"].heading == "Uses"
    assert facts["intended_uses"].line == 1


def test_headings_inside_code_blocks_are_ignored() -> None:
    text = "```python\n# Intended uses\nprint(1)\n```\n\n~~~\n## Limitations\n~~~\n"
    assert present(text) == set()


def test_line_numbers_include_front_matter_offset() -> None:
    facts = {s.key: s for s in detect_sections(f"## Citation\n\n{FILLER}\n", MODEL_SECTIONS, line_offset=10)}
    assert facts["citation"].line == 11


def test_fallbacks_intro_bibtex_model_index_co2() -> None:
    intro = "This model detects hate speech in English tweets. It was fine-tuned from multilingual BERT by the authors."
    text = f"{intro}\n\n## Usage\n\n```\n@article{{key2020,\n title={{T}}\n}}\n```\n"
    facts = {
        s.key: s
        for s in detect_sections(text, MODEL_SECTIONS, metadata={"model-index": [{}], "co2_eq_emissions": 3})
    }
    assert facts["model_description"].present and facts["model_description"].heading == "(introductory text)"
    assert facts["citation"].present and facts["citation"].line == 6
    assert facts["evaluation"].heading == "(metadata: model-index)"
    assert facts["environmental_impact"].present


def test_completeness_score() -> None:
    text = "".join(f"## {h}\n\n{FILLER}\n\n" for h in ("Intended uses", "Limitations", "Training data"))
    facts = detect_sections(text, MODEL_SECTIONS)
    assert completeness_score(facts) == 30.0
    assert completeness_score(()) == 0.0


def test_normalise_heading() -> None:
    assert normalise_heading("**1. Intended Uses:** [optional]") == "intended uses"
    assert normalise_heading("<b>Éthique</b> & biais") == "ethique and biais"
    assert normalise_heading("IV. Training Data 📚") == "training data"


def test_dataset_sections() -> None:
    text = "### Personal and Sensitive Information\n\nThe data contains names and email addresses of users.\n"
    facts = {s.key: s for s in detect_sections(text, DATASET_SECTIONS)}
    assert facts["personal_info"].present
    assert "email addresses" in facts["personal_info"].excerpt


def test_how_each_section_was_found() -> None:
    intro = "This model detects hate speech in English tweets. It was fine-tuned from multilingual BERT by the authors."
    text = (
        f"{intro}\n\n## Citation\n\n```bibtex\n@article{{key2020,\n title={{T}}\n}}\n```\n\n"
        "- Contact: open an issue at https://example.org/issues\n"
    )
    facts = {s.key: s for s in detect_sections(text, MODEL_SECTIONS, metadata={"model-index": [{}]})}
    assert (facts["model_description"].found_by, facts["model_description"].line) == ("introduction", 1)
    # A citation section holding only a BibTeX block is content: code blocks count inside a section.
    assert (facts["citation"].found_by, facts["citation"].line) == ("heading", 3)
    assert (facts["contact"].found_by, facts["contact"].line) == ("lead-in", 11)
    assert facts["evaluation"].found_by == "metadata"
    assert facts["training_data"].found_by == "" and not facts["training_data"].present


def test_nested_sections_end_at_the_next_heading_of_their_level() -> None:
    text = f"# Card\n\n## Uses\n\n### Direct Use\n\n{FILLER}\n\n## Limitations\n\nTBD\n\n## Evaluation\n\n{FILLER}\n"
    facts = {s.key: s for s in detect_sections(text, MODEL_SECTIONS)}
    assert facts["intended_uses"].present and facts["intended_uses"].line == 3
    assert not facts["bias_risks_limitations"].present  # the TBD under it, not the evaluation after it
    assert facts["bias_risks_limitations"].placeholder_text == "TBD"


def test_a_table_header_alone_is_no_content() -> None:
    text = "## Evaluation\n\n| Benchmark | Metric | Score of the model on the test split |\n|---|---|---|\n"
    fact = {s.key: s for s in detect_sections(text, MODEL_SECTIONS)}["evaluation"]
    assert not fact.present and fact.placeholder_text == "(an empty table)"
    filled = text + "| MMLU | acc | 61.2 |\n"
    assert {s.key: s for s in detect_sections(filled, MODEL_SECTIONS)}["evaluation"].present


def test_normalise_heading_keeps_kana_and_hangul() -> None:
    assert normalise_heading("ベンチマーク") == "ベンチマーク"  # the dakuten are not accents
    assert normalise_heading("## 학습 데이터") == "학습 데이터"
    assert normalise_heading("介绍（Introduction）") == "介绍 introduction"


def test_layouts_of_generated_and_hub_cards() -> None:
    # AutoTrain: figures as list-item labels.
    autotrain = "# Model Trained Using AutoTrain\n\n- Problem type: Binary Classification\n- CO2 Emissions (in grams): 0.0186\n"
    env = {s.key: s for s in detect_sections(autotrain, MODEL_SECTIONS)}["environmental_impact"]
    assert env.present and env.found_by == "lead-in" and env.line == 4
    # BLOOM-style labels whose value is still to come are placeholders, quoted.
    bloom = "## Environmental Impact\n\n**Estimated carbon emissions:** *(Forthcoming.)*\n\n**Estimated electricity usage:** *(Forthcoming.)*\n"
    env = {s.key: s for s in detect_sections(bloom, MODEL_SECTIONS)}["environmental_impact"]
    assert not env.present and env.placeholder_text == "Forthcoming"
    # PaddleHub: a key | value table and headings inside list items, numbered 一、二、.
    paddle = (
        "# simnet_bow\n|模型名称|simnet_bow|\n| :--- | :---: |\n|数据集|百度自建数据集|\n\n## 一、模型基本信息\n\n"
        "- ### 模型介绍\n\n  - 短文本语义匹配是一个计算短文本相似度的模型，可以根据用户输入的两个文本计算出相似度得分。\n"
    )
    facts = {s.key: s for s in detect_sections(paddle, MODEL_SECTIONS)}
    assert (facts["training_data"].found_by, facts["training_data"].line) == ("table", 4)
    assert facts["model_description"].present and facts["model_description"].found_by == "heading"
