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
