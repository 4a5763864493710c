"""The findings catalogue: complete entries, one helper that enforces it, calibrated severities, generated docs."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EMITTED_FINDINGS, REPO_ROOT
from pydantic import ValidationError

from audit.analyze import analyse, card_findings, verdict
from audit.collect import Collected
from audit.collect.cardparse import parse_card
from audit.collect.sections import MODEL_SECTIONS
from audit.config import AuditOptions
from audit.findings import (
    CATALOGUE_PATH,
    FINDINGS,
    catalogue,
    catalogue_problems,
    concern_rank,
    finding,
    load_catalogue,
    render_markdown,
)
from audit.model import CardFacts, Finding, SectionFact, Severity

NOW = dt.datetime(2026, 11, 28, tzinfo=dt.timezone.utc)
S = Severity


def test_every_entry_is_complete() -> None:
    assert len(FINDINGS) == len(catalogue().findings) >= 40
    for fid, e in FINDINGS.items():
        assert e.id == fid
        for text in (e.title, e.rationale, e.recommendation, e.raised_when):
            assert len(text.split()) >= 2, f"{fid}: too short: {text!r}"
        assert e.severity in e.allowed
        assert e.frameworks == ()  # left for the framework mapping; allowed, not required


def test_each_card_section_has_its_own_entry() -> None:
    for spec in MODEL_SECTIONS:
        e = FINDINGS[f"docs.section_missing.{spec.key}"]
        assert e.title == f"Card section missing: {spec.label}"
        assert e.category == "documentation"
    assert sum(1 for i in FINDINGS if i.startswith("docs.section_missing.")) == len(MODEL_SECTIONS) == 10


def test_helper_builds_from_the_catalogue() -> None:
    f = finding("weights.pickle_only", subject="org/m", evidence=["a.bin"])
    e = FINDINGS["weights.pickle_only"]
    assert (f.id, f.severity, f.category, f.title, f.recommendation, f.subject, f.evidence) == (
        "weights.pickle_only",
        S.high,
        "security",
        e.title,
        e.recommendation,
        "org/m",
        ("a.bin",),
    )
    assert f.detail == e.detail  # the catalogue's default detail
    lower = finding("license.conflict", subject="m", detail="share-alike data", severity="medium")
    assert lower.severity is S.medium and lower.detail == "share-alike data"


def test_helper_rejects_unknown_ids_and_disallowed_severities() -> None:
    with pytest.raises(KeyError, match="did you mean 'license.missing'"):
        finding("license.mising", subject="m", detail="x")
    with pytest.raises(ValueError, match="allowed: medium, low"):
        finding("dataset.personal_info", subject="m", severity=S.high)
    with pytest.raises(ValueError, match="allowed: high"):
        finding("weights.pickle_only", subject="m", severity="critical")
    with pytest.raises(ValueError, match="no default detail"):
        finding("license.missing", subject="m")
    with pytest.raises(TypeError):
        finding("weights.pickle_only", "m")  # type: ignore[misc]


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "findings.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_catalogue_file_is_validated(tmp_path: Path) -> None:
    data = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    good = dict(data["findings"][0])
    for bad, message in (
        ({**good, "colour": "red"}, "Extra inputs are not permitted"),
        ({**good, "severity": "low", "severities": ["high", "medium"]}, "not in its allowed set"),
        ({**good, "id": "Probe Toxicity"}, "dotted lower_snake_case"),
        ({**good, "category": "vibes"}, "belongs to no section"),
        ({**good, "rationale": ""}, "at least 1 character"),
    ):
        with pytest.raises(ValidationError, match=message):
            load_catalogue(_write(tmp_path, {**data, "findings": [bad]}))
    with pytest.raises(ValidationError, match="listed twice"):
        load_catalogue(_write(tmp_path, {**data, "findings": [good, good]}))
    mapped = {**good, "frameworks": [{"framework": "nist-ai-rmf-1.0", "item": "MEASURE 2.11"}]}
    assert load_catalogue(_write(tmp_path, {**data, "findings": [mapped]})).findings[0].frameworks


def test_severity_calibration_follows_the_order_of_concern() -> None:
    sev = {fid: e.severity for fid, e in FINDINGS.items()}
    docs = [fid for fid in FINDINGS if fid.startswith("docs.section_missing.")]
    # Documentation gaps: at most medium; citation, contact, environmental impact at most low.
    assert max(sev[d].rank for d in docs) == S.medium.rank
    for key in ("citation", "contact", "environmental_impact", "training_procedure"):
        assert sev[f"docs.section_missing.{key}"].rank <= S.low.rank
    for key in ("bias_risks_limitations", "intended_uses"):
        assert sev[f"docs.section_missing.{key}"] is S.medium
    # Supply-chain security and undisclosed training data rank above every documentation gap ...
    for fid in ("weights.pickle_only", "code.remote_code", "data.undisclosed"):
        assert sev[fid].rank > max(sev[d].rank for d in docs)
    # ... and measured harm and forbidding licence terms are at least as high as anything.
    for fid in ("probe.toxicity.high", "probe.bias.group_gap", "license.noncommercial", "license.missing"):
        assert sev[fid] is S.high
    assert max(s.rank for s in sev.values()) == S.high.rank
    # A measured bias sorts before a documentation gap of the same severity.
    probe = finding("probe.bias.association", subject="s", detail="d")
    gap = finding("docs.section_missing.bias_risks_limitations", subject="m", detail="d")
    assert concern_rank(probe) < concern_rank(gap)


def test_docs_are_generated_from_the_catalogue() -> None:
    committed = (REPO_ROOT / "docs" / "findings.md").read_text(encoding="utf-8")
    assert committed == render_markdown(), "regenerate: python -m audit.findings > docs/findings.md"
    for fid, e in FINDINGS.items():
        assert f"`{fid}`" in committed
        assert " ".join(e.rationale.split()) in committed
    assert "The **documentation score** is the share of the ten sections present" in committed
    assert "Parameter counts come, in order of preference" in committed


def _finding_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "Finding")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "Finding")
        )
    ]


def test_no_finding_is_built_outside_the_helper() -> None:
    pkg = REPO_ROOT / "audit"
    offenders = {
        str(p.relative_to(REPO_ROOT)): lines
        for p in sorted(pkg.rglob("*.py"))
        if p.name not in ("model.py", "findings.py") and (lines := _finding_calls(p))
    }
    assert offenders == {}
    assert _finding_calls(pkg / "findings.py")  # the helper itself is found by the same check


def test_the_session_check_sees_findings_built_by_the_audit() -> None:
    before = len(EMITTED_FINDINGS)
    card = CardFacts(subject="org/m", source="local", has_card=False, readable=False)
    built = card_findings(card, AuditOptions(), NOW)
    assert EMITTED_FINDINGS[before:] == built and {f.id for f in built} == {
        "docs.no_card",
        "license.missing",
        "size.unknown",
    }
    assert all(catalogue_problems(f) == [] for f in built)
    # A finding built by audit code without the helper would be recorded and reported.
    scope: dict[str, Any] = {"__name__": "audit.rogue", "Finding": Finding, "S": S}
    exec("f = Finding('docs.no_card', S.high, 'documentation', 'No card!', 'd')", scope)  # noqa: S102
    assert EMITTED_FINDINGS[-1] is scope["f"]
    assert catalogue_problems(scope["f"]) == [
        "docs.no_card: title 'No card!' is not the catalogue's 'The model has no model card'",
        f"docs.no_card: recommendation '' is not the catalogue's {FINDINGS['docs.no_card'].recommendation!r}",
    ]
    EMITTED_FINDINGS.pop()  # built on purpose: keep it out of the session's check
    built_by_test = Finding("x.y", S.low, "c", "t", "d")
    assert EMITTED_FINDINGS[-1] is not built_by_test
    assert catalogue_problems(built_by_test) == ["x.y: not a catalogue id"]


def _card(**kw: Any) -> CardFacts:
    base: dict[str, Any] = {
        "subject": "org/m",
        "source": "local",
        "has_metadata": True,
        "licenses": ("apache-2.0",),
        "license_class": "permissive",
        "datasets": ("org/d",),
        "parameters": 1000,
        "size_class": "small",
    }
    return CardFacts(**{**base, **kw})


def _ids(card: CardFacts) -> dict[str, Finding]:
    return {f.id: f for f in card_findings(card, AuditOptions(), NOW)}


def test_metadata_invalid_comes_from_the_typed_fact_not_from_words() -> None:
    # A problem message that mentions "metadata" and "YAML" but is no metadata problem raises nothing.
    chatty = _card(problems=("config.json mentions metadata and YAML front matter",))
    assert "docs.metadata_invalid" not in _ids(chatty)
    broken = _card(metadata_ok=False, metadata_problems=("the YAML front matter is never closed with '---'",))
    f = _ids(broken)["docs.metadata_invalid"]
    assert f.evidence == ("the YAML front matter is never closed with '---'",) and f.severity is S.medium


@pytest.mark.parametrize(
    "text,code",
    [
        (b"---\nlicense: mit\n# no end\n", "unclosed"),
        (b"---\nlicense: [mit\n---\nbody\n", "unparseable"),
        (b"---\n- a\n- b\n---\nbody\n", "not_mapping"),
        (b"---\nx: " + b"a" * 600_000 + b"\n---\nbody\n", "too_large"),
    ],
)
def test_parser_reports_typed_metadata_problems(text: bytes, code: str) -> None:
    parsed = parse_card(text)
    assert not parsed.metadata_ok
    assert [p.code for p in parsed.metadata_problems] == [code]
    assert parsed.metadata_problems[0].message in parsed.problems
    assert parse_card(b"---\nlicense: mit\n---\nbody\n").metadata_problems == []


def test_undisclosed_data_is_medium_when_the_card_describes_it_in_prose() -> None:
    prose = SectionFact("training_data", "Training data", True, heading="Training Data", line=12)
    described = _ids(_card(datasets=(), sections=(prose,)))["data.undisclosed"]
    assert described.severity is S.medium and "line 12" in described.evidence[1]
    silent = _ids(_card(datasets=()))["data.undisclosed"]
    assert silent.severity is S.high
    assert silent.evidence == ("metadata: no 'datasets' field", "card: no training-data section")


def test_no_card_is_one_finding_with_a_detail_per_source() -> None:
    local = _ids(_card(has_card=False, readable=False))["docs.no_card"]
    endpoint = _ids(_card(source="endpoint", has_card=False, readable=False, problems=("no Hub card: 404",)))
    assert local.evidence == ("local: no README.md",)
    assert endpoint["docs.no_card"].evidence == ("no Hub card: 404",)
    assert "OpenAI-compatible endpoint" in endpoint["docs.no_card"].detail
    assert local.title == endpoint["docs.no_card"].title and local.detail != endpoint["docs.no_card"].detail


def test_verdict_names_the_findings_that_set_the_rating() -> None:
    gap = finding(
        "docs.section_missing.bias_risks_limitations", subject="m", detail="d", evidence=["no heading"]
    )
    bias = finding(
        "probe.bias.association", subject="s", detail="d", evidence=["disability-valence: d = 1.145"]
    )
    low = finding("docs.section_missing.contact", subject="m", detail="d")
    v = verdict([gap, low, bias])
    assert v.rating == "review"
    assert v.reasons == (
        "medium: Strong embedding association [probe.bias.association] (disability-valence: d = 1.145)",
        "medium: Card section missing: Bias, risks and limitations "
        "[docs.section_missing.bias_risks_limitations] (no heading)",
    )
    pickle = finding("weights.pickle_only", subject="m", evidence=["model.bin"])
    high = verdict([gap, pickle, bias])
    assert high.rating == "high risk" and high.reasons == (
        "high: Weights are only in pickle format [weights.pickle_only] (model.bin)",
    )
    assert verdict([low]).rating == "low risk" and verdict([low]).reasons == ()
    assert verdict([]).reasons == ()


def test_a_card_missing_only_its_bias_section_is_not_high_risk() -> None:
    sections = tuple(
        SectionFact(s.key, s.label, s.key != "bias_risks_limitations", heading=s.label)
        for s in MODEL_SECTIONS
    )
    findings = analyse(Collected(_card(sections=sections), (), (), None), AuditOptions(), NOW)
    assert {f.id for f in findings} == {"docs.section_missing.bias_risks_limitations", "size.class"}
    v = verdict(findings)
    assert v.rating == "review" and len(v.reasons) == 1 and "Bias, risks and limitations" in v.reasons[0]
