"""Governance frameworks: identifiers validated against the cited list, every finding id and metric
mapped, the training-compute estimate, and the section in HTML, PDF and Markdown."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import yaml
from helpers import FULL_BODY, card
from pydantic import ValidationError

from audit.compute import card_compute_inputs, estimate_training_compute, training_tokens
from audit.config import AuditOptions
from audit.frameworks import (
    FRAMEWORKS_PATH,
    NoItem,
    framework_map,
    item_ids,
    load_framework_map,
    mapping_problems,
)
from audit.model import CardFacts
from audit.pipeline import apply_policy, audit_model, write_report

# Metric names the probe methods emit (audit/aggregate.py and audit/methods/*), and suite-level metric
# names that stand for emitted ones.
EMITTED_METRICS = (
    "toxicity_probability",
    "expected_maximum_toxicity",
    "mean_toxicity",
    "label_mean",
    "label_expected_maximum",
    "group_mean_toxicity",
    "negative_sentiment_rate",
    "axis_gap",
    "paired_difference",
    "effect_size",
    "stereotype_preference",
    "honest_score",
    "bias_score_ambig",
    "bias_score_disambig",
    "accuracy_ambig",
    "accuracy_disambig",
    "flip_rate",
    "score_change",
)
SUITE_ALIASES = {
    "per_label": "label_mean",
    "group_negative_sentiment_rate": "negative_sentiment_rate",
    "accuracy": "accuracy_ambig",
}

# The published identifier shapes: NIST AI 100-1 subcategories, Regulation (EU) 2024/1689 article
# points and Annex XI points (Section.point(letter)), ISO/IEC 42001:2023 Table A.1 controls.
SHAPES = {
    "nist-ai-rmf-1.0": re.compile(r"^(GOVERN|MAP|MEASURE|MANAGE) \d\.\d{1,2}$"),
    "eu-ai-act": re.compile(r"^(Art\. \d{2}\(\d\)(\([a-d]\))?|Annex XI \d\.\d\([a-f]\))$"),
    "iso-iec-42001-2023": re.compile(r"^A\.\d{1,2}(\.\d{1,2}){1,2}$"),
}


def test_framework_identifiers_are_valid_and_cited() -> None:
    fm = framework_map()
    assert [f.id for f in fm.frameworks] == ["nist-ai-rmf-1.0", "eu-ai-act", "iso-iec-42001-2023"]
    for fw in fm.frameworks:
        for item in fw.items:
            assert SHAPES[fw.id].match(item.id), (fw.id, item.id)
    citations = {f.id: f.citation for f in fm.frameworks}
    assert "NIST AI 100-1" in citations["nist-ai-rmf-1.0"] and "January 2023" in citations["nist-ai-rmf-1.0"]
    assert "Regulation (EU) 2024/1689" in citations["eu-ai-act"]
    assert (
        "ISO/IEC 42001:2023" in citations["iso-iec-42001-2023"]
        and "Annex A" in citations["iso-iec-42001-2023"]
    )
    titles = {f"{fw.id}:{i.id}": " ".join(i.title.split()) for fw in fm.frameworks for i in fw.items}
    # Spot checks against the published texts (hand-copied).
    assert titles["nist-ai-rmf-1.0:GOVERN 6.1"].endswith(
        "including risks of infringement of a third-party's intellectual property or other rights."
    )
    assert titles["nist-ai-rmf-1.0:MEASURE 2.11"] == (
        "Fairness and bias – as identified in the MAP function – are evaluated and results are documented."
    )
    assert titles["eu-ai-act:Art. 51(2)"].endswith(
        "measured in floating point operations is greater than 10^25."
    )
    assert titles["iso-iec-42001-2023:A.7.5"] == "Data provenance"
    assert titles["iso-iec-42001-2023:A.10.3"] == "Suppliers"
    # Every reference used by a mapping is a listed item (the loader refuses anything else).
    refs = item_ids()
    for targets in list(fm.findings.values()) + list(fm.metrics.values()) + list(fm.facts.values()):
        if not isinstance(targets, NoItem):
            assert set(targets) <= refs


def test_an_unlisted_identifier_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(FRAMEWORKS_PATH.read_text(encoding="utf-8"))
    data["findings"]["license.missing"] = ["nist-ai-rmf-1.0:GOVERN 9.9"]
    path = tmp_path / "frameworks.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ValidationError, match="'nist-ai-rmf-1.0:GOVERN 9.9' is not a listed framework item"):
        load_framework_map(path)
    data["findings"]["license.missing"] = {"none": "no"}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ValidationError):
        load_framework_map(path)  # a `none` needs a reason of some length


def test_every_catalogue_id_and_probe_metric_is_mapped() -> None:
    # The findings catalogue is read when the test runs, not at import.
    from audit.findings import FINDINGS
    from audit.resources import probes_dir

    # Each shipped suite's declared metrics, read as data (the suites' own validation is tested elsewhere).
    declared = [
        yaml.safe_load(f.read_text(encoding="utf-8")).get("metrics", []) for f in probes_dir().glob("*.yaml")
    ]
    suite_metrics = {SUITE_ALIASES.get(m, m) for names in declared for m in names}
    assert len(suite_metrics) >= 10
    assert mapping_problems(list(FINDINGS), sorted(set(EMITTED_METRICS) | suite_metrics)) == []
    fm = framework_map()
    assert set(fm.findings) == set(FINDINGS), "mapped ids that are not in the catalogue"
    nones = {fid: t.none for fid, t in fm.findings.items() if isinstance(t, NoItem)}
    assert set(nones) == {
        "docs.card_truncated",
        "docs.language_unsupported",
        "docs.section_missing.citation",
        "provenance.hub_unavailable",
        "run.invalid_model",
        "run.output_quality",
    }
    assert all(len(reason.split()) >= 8 for reason in nones.values())


def _card(**kw: object) -> CardFacts:
    return CardFacts(subject="org/m", source="card-file", **kw)  # type: ignore[arg-type]


def test_compute_estimate_above_the_threshold() -> None:
    text = "Llama-style model card.\n\nThe model was pretrained on 15.6T tokens of public data.\n"
    est = estimate_training_compute(
        _card(parameters=405_000_000_000, parameters_source="Hub", **card_compute_inputs(text))
    )
    assert est.tokens == 15_600_000_000_000 and est.tokens_source.startswith("line 3: ")
    assert est.flop == pytest.approx(6 * 405e9 * 15.6e12) == pytest.approx(3.7908e25)
    assert est.exceeds_threshold is True
    assert (
        "an estimate" in est.statement
        and "6 × 405B parameters × 15.6T tokens ≈ 3.79 × 10^25 FLOP" in est.statement
    )
    assert "above 10^25 FLOP" in est.statement and "systemic risk under Article 51(2)" in est.statement


def test_compute_estimate_below_the_threshold() -> None:
    text = "## Training data\nLlama 3 was pretrained on over 15 trillion tokens of data from publicly available sources."
    est = estimate_training_compute(
        _card(parameters=8_030_000_000, parameters_source="Hub", **card_compute_inputs(text))
    )
    assert est.flop == pytest.approx(6 * 8.03e9 * 15e12) == pytest.approx(7.227e23)
    assert est.exceeds_threshold is False
    assert "≈ 7.23 × 10^23 FLOP" in est.statement and "below the 10^25 FLOP" in est.statement


def test_compute_without_a_token_count_says_so() -> None:
    text = "A model with 7B parameters and a context window of 128K tokens."
    inputs = card_compute_inputs(text)
    assert inputs["training_tokens"] is None and inputs["parameters_stated"] == 7_000_000_000
    est = estimate_training_compute(_card(**inputs))
    assert est.flop is None and est.exceeds_threshold is None
    assert est.statement.startswith("The card states no number of training tokens")
    tokens_only = estimate_training_compute(_card(training_tokens=2_000_000_000_000))
    assert "parameter count is unknown" in tokens_only.statement and tokens_only.flop is None


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("The model was trained on 15T tokens.", 15e12),
        ("Trained on 2 trillion tokens with a context length of 4096 tokens.", 2e12),
        ("We pretrain on 1.4T tokens.", 1.4e12),
        ("pre-trained on 9.8 trillion high-quality tokens", 9.8e12),
        ("Pretraining data: 15T+ tokens", 15e12),
        ("The pre-training corpus has 1,400,000,000,000 tokens.", 1.4e12),
        ("a 2T-token corpus was used for training", 2e12),
        ("Context window: 128K tokens.", None),
        ("It supports a context length of 1 million tokens.", None),
        ("A vocabulary of 128,000 tokens.", None),
        ("Generates up to 2 billion tokens per day in production.", None),  # not about training
    ],
)
def test_training_token_patterns(text: str, tokens: float | None) -> None:
    found, _ = training_tokens(text)
    assert found == (int(tokens) if tokens is not None else None)


def test_a_card_file_gives_the_estimate_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "card.md"
    body = FULL_BODY + "\nThe 7B parameters model was pretrained on 2 trillion tokens of web text.\n"
    path.write_text(card({"license": "apache-2.0"}, body), encoding="utf-8")
    report = audit_model(str(path), AuditOptions(fetch_datasets=False))
    assert report.compute is not None and report.compute.flop == pytest.approx(8.4e22)
    assert report.compute.parameters_source.startswith("stated in the card (line ")


def _report(tmp_path: Path) -> object:
    path = tmp_path / "card.md"
    path.write_text(card({"license": "cc-by-nc-4.0", "datasets": ["org/data"]}, FULL_BODY), encoding="utf-8")
    return apply_policy(audit_model(str(path), AuditOptions(fetch_datasets=False)), "default")


def test_coverage_lists_evidence_and_what_a_reviewer_must_answer(tmp_path: Path) -> None:
    report = _report(tmp_path)
    cov = {c.framework: {i.item: i for i in c.items} for c in report.frameworks}  # type: ignore[attr-defined]
    nist = cov["nist-ai-rmf-1.0"]
    assert "finding license.noncommercial (critical)" in nist["GOVERN 6.1"].evidence
    assert "licence: cc-by-nc-4.0 (noncommercial)" in nist["GOVERN 6.1"].evidence
    assert nist["MANAGE 1.1"].answered and nist["MANAGE 1.1"].evidence == ("policy default: fail",)
    assert not nist["MEASURE 2.11"].answered and "reviewer must answer" in nist["MEASURE 2.11"].note
    eu = cov["eu-ai-act"]
    assert eu["Art. 53(1)(d)"].evidence[0] == "training datasets declared: 1 (org/data)"
    assert not eu["Art. 51(2)"].answered  # no token count in the card: a reviewer must establish it
    assert cov["iso-iec-42001-2023"]["A.10.3"].answered


@pytest.mark.slow
def test_frameworks_section_in_html_pdf_and_markdown(tmp_path: Path) -> None:
    from pypdf import PdfReader

    report = _report(tmp_path)
    out = tmp_path / "out"
    write_report(report, out, ("html", "pdf", "md"))  # type: ignore[arg-type]
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "### Governance frameworks" in md
    assert (
        "- `GOVERN 6.1` Policies and procedures" in md
        and "finding license.noncommercial \\(critical\\)" in md
    )
    assert "A reviewer must answer: " in md and "`MEASURE 2.11`" in md
    assert "**Training compute.** The card states no number of training tokens" in md
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<section id="frameworks">' in html and "<h2>Governance frameworks</h2>" in html
    assert "<code>Art. 53(1)(d)</code>" in html and "A reviewer must answer" in html
    assert '<span class="tag">profile: internal</span>' in html
    text = " ".join(
        page.extract_text() for page in PdfReader(io.BytesIO((out / "report.pdf").read_bytes())).pages
    )
    flat = " ".join(text.split())
    assert "Governance frameworks" in flat
    assert "GOVERN 6.1" in flat and "Art. 53(1)(d)" in flat and "A.10.3" in flat
    assert "profile: internal" in flat
