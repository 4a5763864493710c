"""The real cards in ../shared/data/cards: parsed without a crash, each checked on what a reader can see in the file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from audit.collect.cardfacts import dataset_facts
from audit.collect.cardparse import parse_card
from audit.pipeline import audit_model, write_report

# Meta-style cards put these sections in bold lead-ins ("**Out-of-scope Uses** Use in any manner ...").
META_SECTIONS = {
    "model_description",
    "intended_uses",
    "out_of_scope_uses",
    "bias_risks_limitations",
    "training_data",
    "training_procedure",
    "evaluation",
    "environmental_impact",
    "contact",
}

# file -> (licences, datasets, sections present with real content, other finding ids expected)
MODEL_CARDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], set[str], set[str]]] = {
    "hf-hub-copy__EIStakovskii_german_toxicity_classifier_plus_v2_README.md": (
        ("other",),
        (),
        {"model_description", "evaluation"},
        {"license.other", "data.undisclosed"},
    ),
    "hf-hub-copy__EleutherAI_pythia-1b_README.md": (
        ("apache-2.0",),
        ("the_pile",),
        {
            "model_description",
            "intended_uses",
            "out_of_scope_uses",
            "bias_risks_limitations",
            "training_data",
            "training_procedure",
            "evaluation",
            "contact",
        },
        set(),
    ),
    "hf-hub-copy__Narrativaai_deberta-v3-small-finetuned-hate_speech18_README.md": (
        ("mit",),
        ("hate_speech18",),
        {"model_description", "training_procedure", "evaluation"},
        set(),
    ),
    "huggingface_hub-docs__modelcard.md": (
        (),
        (),
        {"model_description"},
        {"docs.metadata_invalid", "license.missing", "data.undisclosed"},
    ),
    "huggingface_hub__fixture_sample_invalid_model_index.md": (
        ("mit",),
        ("beans",),
        {"model_description", "evaluation"},
        {"docs.metadata_invalid"},
    ),
    "huggingface_hub__fixture_sample_no_metadata.md": (
        (),
        (),
        {"model_description"},
        {"docs.no_metadata", "license.missing", "data.undisclosed"},
    ),
    "huggingface_hub__fixture_sample_simple_model_index.md": (
        ("mit",),
        ("beans",),
        {"model_description", "evaluation"},
        set(),
    ),
    "huggingface_hub__fixture_sample_windows_line_breaks.md": (("mit",), (), set(), {"data.undisclosed"}),
    "huggingface_hub__modelcard_template.md": (
        (),
        (),
        set(),
        {"docs.metadata_invalid", "license.missing", "data.undisclosed"},
    ),
    "huggingface_transformers__Hate-speech-CNERG_dehatebert-mono-english_README.md": (
        (),
        (),
        {"model_description", "citation"},
        {"docs.no_metadata", "license.missing", "data.undisclosed"},
    ),
    "huggingface_transformers__facebook_bart-large-mnli_README.md": (
        ("mit",),
        (),
        set(),
        {"data.undisclosed"},
    ),
    "openai_whisper__model-card.md": (
        (),
        (),
        # out_of_scope_uses: "we caution against using Whisper models to transcribe recordings of individuals
        # taken without their consent ..." (line 46) states uses to avoid; the old detector only read headings.
        {
            "model_description",
            "intended_uses",
            "out_of_scope_uses",
            "bias_risks_limitations",
            "training_data",
            "evaluation",
        },
        {"docs.no_metadata", "license.missing", "data.undisclosed"},
    ),
    # Cards added to ../shared for the "reading real-world cards" issue. Sections are the hand labels of
    # tests/fixtures/labels/model_sections.yaml (test_card_labels.py measures the detector against them).
    "hf-hub-copy__FacebookAI_roberta-large-mnli_README.md": (
        ("mit",),
        ("multi_nli", "wikipedia", "bookcorpus"),
        {
            "model_description",
            "intended_uses",
            "out_of_scope_uses",
            "bias_risks_limitations",
            "training_data",
            "training_procedure",
            "evaluation",
            "environmental_impact",
            "citation",
        },
        set(),
    ),
    "hf-hub-copy__KDHyun08_TAACO_STS_README.md": (
        (),
        (),
        {"model_description", "training_data", "training_procedure", "evaluation"},
        {"license.missing", "data.undisclosed"},
    ),
    "hf-hub-copy__Prajvi_autotrain-yempp-2842183229_README.md": (
        (),
        ("Prajvi/autotrain-data-yempp", "squad", "squad_v2"),
        set(),  # an unfilled template: every section is a placeholder
        {"license.missing"},
    ),
    "hf-hub-copy__Qwen_Qwen-14B-Chat_README.md": (
        (),
        (),
        {"model_description", "evaluation", "citation", "contact"},
        {"license.missing", "data.undisclosed"},
    ),
    "hf-hub-copy__google_flan-t5-base_README.md": (
        ("apache-2.0",),
        (
            "svakulenk0/qrecc",
            "taskmaster2",
            "djaym7/wiki_dialog",
            "deepmind/code_contests",
            "lambada",
            "gsm8k",
            "aqua_rat",
            "esnli",
            "quasc",
            "qed",
        ),
        {
            "model_description",
            "intended_uses",
            "out_of_scope_uses",  # the 'Sensitive Use' section; 'Out-of-Scope Use' itself is a placeholder
            "bias_risks_limitations",
            "training_data",
            "training_procedure",
            "evaluation",
            "environmental_impact",
            "citation",
        },
        {"docs.metadata_invalid"},
    ),
    "hf-hub-copy__google_gemma-2-9b-it_README.md": (
        ("gemma",),
        (),
        {
            "model_description",
            "intended_uses",
            "out_of_scope_uses",
            "bias_risks_limitations",
            "training_data",
            "training_procedure",
            "evaluation",
            "citation",
        },
        {"license.restricted_use", "data.undisclosed"},
    ),
    "hf-hub-copy__microsoft_Phi-3-mini-128k-instruct_README.md": (
        ("mit",),
        (),
        {
            "model_description",
            "intended_uses",
            "out_of_scope_uses",
            "bias_risks_limitations",
            "training_data",
            "training_procedure",
            "evaluation",
        },
        {"data.undisclosed"},
    ),
    "hf-hub-copy__mistralai_Mistral-7B-Instruct-v0.2_README.md": (
        ("apache-2.0",),
        (),
        {"model_description", "bias_risks_limitations"},
        {"data.undisclosed"},
    ),
    "hf-hub-copy__nateraw_yolov6t_README.md": (
        ("gpl-3.0",),
        (),
        {"model_description", "intended_uses", "bias_risks_limitations", "contact"},
        {"license.copyleft", "data.undisclosed"},
    ),
    "hf-hub-copy__sonoisa_t5-base-japanese-mC4-Wikipedia_README.md": (
        ("cc-by-sa-4.0",),
        ("wikipedia", "c4"),
        # The hand labels also count training_data (the corpora listed in the Japanese introduction, line 17),
        # which the matcher cannot read; the card is flagged sections_limited (language 'ja') instead, so its
        # unmatched sections are reported as not checked (docs.language_unsupported), never as missing.
        {"model_description", "bias_risks_limitations", "evaluation"},
        {"license.copyleft", "docs.language_unsupported"},
    ),
    "hf-hub-copy__tiiuae_falcon-7b_README.md": (
        ("apache-2.0",),
        ("tiiuae/falcon-refinedweb",),
        {
            "model_description",
            "intended_uses",
            "out_of_scope_uses",
            "bias_risks_limitations",
            "training_data",
            "training_procedure",
            "evaluation",
            "citation",
            "contact",
        },
        set(),
    ),
    "meta-llama_codellama__MODEL_CARD.md": (
        (),
        (),
        META_SECTIONS,
        {"docs.no_metadata", "license.missing", "data.undisclosed"},
    ),
    "meta-llama_llama-models__llama3_1_MODEL_CARD.md": (
        (),
        (),
        META_SECTIONS,
        {"docs.no_metadata", "license.missing", "data.undisclosed"},
    ),
    "meta-llama_llama-models__llama3_2_MODEL_CARD.md": (
        (),
        (),
        META_SECTIONS,
        {"docs.no_metadata", "license.missing", "data.undisclosed"},
    ),
    "meta-llama_llama-models__llama3_3_MODEL_CARD.md": (
        (),
        (),
        META_SECTIONS,
        {"docs.no_metadata", "license.missing", "data.undisclosed"},
    ),
}

# file -> (licences, class, personal info statement, biases discussed)
DATASET_CARDS: dict[str, tuple[tuple[str, ...], str, str, bool]] = {
    "hf-datasets__bookcorpus__README.md": (("unknown",), "missing", "undocumented", False),
    "hf-datasets__c4__README.md": (("odc-by",), "permissive", "undocumented", False),
    "hf-datasets__civil_comments__README.md": ((), "missing", "undocumented", False),
    "hf-datasets__crows_pairs__README.md": (("cc-by-sa-4.0",), "copyleft", "undocumented", False),
    "hf-datasets__glue__README.md": (("cc-by-4.0",), "permissive", "undocumented", False),
    "hf-datasets__imdb__README.md": (("other",), "other", "undocumented", False),
    "hf-datasets__jigsaw_toxicity_pred__README.md": (("cc0-1.0",), "permissive", "undocumented", True),
    "hf-datasets__squad__README.md": (("cc-by-4.0",), "permissive", "undocumented", False),
    "hf-datasets__stereoset__README.md": (("cc-by-sa-4.0",), "copyleft", "absent", True),
    "hf-datasets__wikipedia__README.md": (("cc-by-sa-3.0", "gfdl"), "copyleft", "undocumented", False),
    "hf-hub-copy__Anthropic_hh-rlhf.md": (("mit",), "permissive", "undocumented", False),
    "hf-hub-copy__allenai_real-toxicity-prompts.md": (("apache-2.0",), "permissive", "undocumented", False),
    "hf-datasets__templates_README.md": ((), "missing", "undocumented", False),
    # Cards added for the "reading real-world cards" issue (hand labels: tests/fixtures/labels/).
    "hf-datasets__cornell_movie_dialog__README.md": ((), "missing", "undocumented", False),
    "hf-datasets__dutch_social__README.md": (("cc-by-nc-4.0",), "noncommercial", "present", False),
    "hf-datasets__eli5__README.md": (("unknown",), "missing", "present", True),
    "hf-datasets__fquad__README.md": (("cc-by-nc-sa-3.0",), "noncommercial", "absent", False),
    "hf-datasets__hate_speech_pl__README.md": (("cc-by-nc-sa-3.0",), "noncommercial", "absent", True),
    "hf-datasets__told-br__README.md": (("cc-by-sa-4.0",), "copyleft", "present", True),
    "hf-datasets__tweet_eval__README.md": (("unknown",), "missing", "undocumented", False),
    "hf-hub-copy__SALT-NLP_ImplicitHate.md": ((), "missing", "undocumented", False),
    "hf-hub-copy__allenai_nllb.md": ((), "missing", "present", True),
    "hf-hub-copy__allenai_prosocial-dialog.md": (("cc-by-4.0",), "permissive", "undocumented", False),
    "huggingface_hub-docs__datasetcard.md": ((), "missing", "undocumented", False),
    "huggingface_hub__datasetcard_template.md": ((), "missing", "undocumented", False),
}


def _model_cards(shared: Path) -> list[Path]:
    return sorted((shared / "cards" / "models").iterdir())


def test_every_shared_model_card_is_listed(shared_data: Path) -> None:
    assert {p.name for p in _model_cards(shared_data)} == set(MODEL_CARDS)
    assert {p.name for p in (shared_data / "cards" / "datasets").iterdir()} == set(DATASET_CARDS)


@pytest.mark.parametrize("name", sorted(MODEL_CARDS))
def test_shared_model_card(shared_data: Path, options: Any, name: str) -> None:
    licenses, datasets, sections, extra = MODEL_CARDS[name]
    report = audit_model(
        str(shared_data / "cards" / "models" / name),
        options.model_copy(update={"fetch_datasets": False, "follow_base_model": False}),
    )
    card = report.card
    assert card.readable and card.has_card
    assert card.licenses == licenses
    assert card.datasets == datasets
    assert {s.key for s in card.sections if s.present} == sections
    assert card.documentation_score == 10.0 * len(sections)
    ids = {f.id for f in report.findings}
    assert ids - {"size.unknown"} - {i for i in ids if i.startswith("docs.section_missing.")} == extra
    missing = {i.removeprefix("docs.section_missing.") for i in ids if i.startswith("docs.section_missing.")}
    # A card in a language the matcher does not cover reports no section missing (not checked instead).
    assert missing == (set() if card.sections_limited else {s.key for s in card.sections} - sections)


def test_model_index_extracted_as_a_table(shared_data: Path, options: Any) -> None:
    report = audit_model(
        str(shared_data / "cards/models/huggingface_hub__fixture_sample_simple_model_index.md"),
        options.model_copy(update={"fetch_datasets": False}),
    )
    rows = [
        (e.task_type, e.dataset_name, e.metric_type, e.metric_value, e.dataset_split)
        for e in report.card.eval_results
    ]
    assert rows == [
        ("image-classification", "Beans", "accuracy", "0.9", ""),
        ("image-classification", "Beans", "f1", "0.66", "test"),
    ]
    narrativa = audit_model(
        str(
            shared_data
            / "cards/models/hf-hub-copy__Narrativaai_deberta-v3-small-finetuned-hate_speech18_README.md"
        ),
        options.model_copy(update={"fetch_datasets": False}),
    )
    e = narrativa.card.eval_results[0]
    assert (e.task_type, e.dataset_name, e.metric_name, e.metric_value) == (
        "text-classification",
        "hate_speech18",
        "Accuracy",
        "0.916058394160584",
    )


@pytest.mark.parametrize("name", sorted(DATASET_CARDS))
def test_shared_dataset_card(shared_data: Path, name: str) -> None:
    licenses, cls, personal, bias = DATASET_CARDS[name]
    parsed = parse_card((shared_data / "cards" / "datasets" / name).read_bytes())
    facts = dataset_facts(name, parsed, source="local", resolved_revision=None)
    assert facts.available
    assert facts.licenses == licenses
    assert facts.license_class == cls
    assert facts.personal_info == personal
    assert facts.bias_documented is bias


def test_rtp_card_declares_the_wrong_task(shared_data: Path) -> None:
    parsed = parse_card(
        (shared_data / "cards/datasets/hf-hub-copy__allenai_real-toxicity-prompts.md").read_bytes()
    )
    assert dataset_facts(
        "allenai/real-toxicity-prompts", parsed, source="local", resolved_revision=None
    ).task_categories == ("image-generation",)


def test_dataset_cards_from_a_local_mirror(shared_data: Path, tmp_path: Path, options: Any) -> None:
    """--dataset-cards DIR: a model declaring shared datasets gets their real cards, with findings per dataset."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, ds in (
        ("hf-datasets__bookcorpus__README.md", "bookcorpus"),
        ("hf-datasets__wikipedia__README.md", "wikipedia"),
        ("hf-datasets__c4__README.md", "allenai__c4"),
    ):
        (mirror / f"{ds}.md").write_bytes((shared_data / "cards" / "datasets" / name).read_bytes())
    model = tmp_path / "card.md"
    model.write_text(
        "---\nlicense: apache-2.0\ndatasets:\n- bookcorpus\n- wikipedia\n- allenai/c4\n---\n# M\n"
    )
    report = audit_model(str(model), options.model_copy(update={"dataset_cards_dir": mirror}))
    by = {d.id: d for d in report.datasets}
    assert by["bookcorpus"].licenses == ("unknown",) and by["allenai/c4"].licenses == ("odc-by",)
    found = {f.id: f for f in report.findings}
    assert found["dataset.license_missing"].evidence == ("bookcorpus: license unknown",)
    assert "wikipedia" in found["license.conflict"].detail  # cc-by-sa data under an apache-2.0 model
    assert found["license.conflict"].severity.value == "medium"


def test_every_shared_card_renders_all_formats(shared_data: Path, options: Any, tmp_path: Path) -> None:
    """No crash from collection to PDF on any real card; the finding counts are what the issue note reports."""
    counts: Counter[str] = Counter()
    for i, path in enumerate(_model_cards(shared_data)):
        report = audit_model(str(path), options.model_copy(update={"fetch_datasets": False}))
        fmts = ["json", "html", "md"] + (["pdf"] if i < 2 else [])  # PDF for two cards keeps the suite fast
        outs = write_report(report, tmp_path / path.stem, fmts)
        assert all(p.stat().st_size > 200 for p in outs)
        counts.update({f.id for f in report.findings})
    # 12 and 18 since the Meta, Qwen, Korean and other real cards were added to ../shared (5 and 8 before).
    assert counts["license.missing"] == 12
    assert counts["data.undisclosed"] == 18
