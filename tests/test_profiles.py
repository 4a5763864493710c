"""Use-context profiles: shipped profiles, user profiles validated with line numbers, the one order of
resolution (catalogue -> profile -> policy), probe-data licences, and gate/compare/diff honouring them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import FULL_BODY, card

from audit.cli import main
from audit.config import AuditOptions
from audit.model import AuditReport, MetricResult, ProbeResult, ScorerFacts, Severity
from audit.pipeline import audit_model
from audit.profiles import (
    BUILTIN_PROFILES,
    ProfileError,
    apply_profile,
    load_profile,
    parse_profile,
    probe_data_licenses,
    profiles_dir,
)

S = Severity


@pytest.fixture
def nc_card(tmp_path: Path) -> Path:
    path = tmp_path / "card.md"
    path.write_text(card({"license": "cc-by-nc-4.0"}, FULL_BODY), encoding="utf-8")
    return path


def _audit(path: Path, profile: str) -> AuditReport:
    return audit_model(str(path), AuditOptions(profile=profile, fetch_datasets=False))


def _severity(report: AuditReport, fid: str) -> list[Severity]:
    return [f.severity for f in report.findings if f.id == fid]


def test_shipped_profiles_are_valid_and_explain_every_rule() -> None:
    assert sorted(p.stem for p in profiles_dir().glob("*.yaml")) == sorted(BUILTIN_PROFILES)
    for name in BUILTIN_PROFILES:
        prof, source, sha = load_profile(name)
        assert (prof.name, source, len(sha)) == (name, "built-in", 64)
        assert all(len(rule.rationale.split()) >= 8 for rule in prof.rules), name
    assert load_profile("research")[0].commercial is False
    assert load_profile("internal")[0].commercial is load_profile("customer-facing")[0].commercial is True
    assert AuditOptions().profile == "internal"


def test_a_noncommercial_card_rates_differently_by_profile(nc_card: Path) -> None:
    ratings = {}
    for name in BUILTIN_PROFILES:
        report = _audit(nc_card, name)
        assert report.profile is not None and report.profile.name == name
        ratings[name] = (report.verdict.rating, _severity(report, "license.noncommercial"))
    assert ratings == {
        "research": ("low risk", [S.info]),
        "internal": ("high risk", [S.critical]),
        "customer-facing": ("high risk", [S.critical]),
    }
    internal = _audit(nc_card, "internal")
    (change,) = [c for c in internal.profile.changes if c.finding_id == "license.noncommercial"]  # type: ignore[union-attr]
    assert (change.old, change.new) == (S.high, S.critical)
    assert "profile internal" in change.rule
    assert internal.verdict.reasons[0].startswith("critical: The licence forbids commercial use")


def test_applying_profiles_is_idempotent_and_reversible(nc_card: Path) -> None:
    internal = _audit(nc_card, "internal")
    again = apply_profile(internal, "internal")
    assert again.findings == internal.findings and again.verdict == internal.verdict
    roundtrip = apply_profile(
        apply_profile(apply_profile(internal, "research"), "customer-facing"), "internal"
    )
    assert roundtrip.findings == internal.findings
    assert roundtrip.profile == internal.profile


def test_user_profile_errors_name_the_line(tmp_path: Path) -> None:
    good = "version: 1\nname: mine\ndescription: A team's own use context.\ncommercial: true\n"
    prof = parse_profile(
        good
        + "rules:\n  - category: documentation\n    at_most: low\n    rationale: docs gaps matter little here\n"
    )
    assert prof.rules[0].category == "documentation"
    cases = {
        good + "colour: red\n": ("line 5", "colour", "Extra inputs are not permitted"),
        good + "rules:\n  - id: license.other\n    severity: loud\n    rationale: a reason long enough\n": (
            "line 7",
            "rules.0.severity",
            "Input should be",
        ),
        good
        + "rules:\n  - id: a.b\n    severity: low\n    at_most: low\n    rationale: a reason long enough\n": (
            "line 6",
            "exactly one of `severity`, `at_least` or `at_most`",
            "",
        ),
        good + "thresholds:\n  gap_min: 0.2\n  gap_high: 0.1\n": (
            "line 6",
            "gap_high must not be below gap_min",
            "",
        ),
        good.replace("commercial: true\n", ""): ("line 1", "commercial", "Field required"),
    }
    for text, expected in cases.items():
        path = tmp_path / "p.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ProfileError) as err:
            load_profile(path)
        for part in expected:
            assert part in err.value.message, (text, err.value.message)
        assert str(path) in err.value.message
    path.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"p\.yaml:2: not valid YAML"):
        load_profile(path)


def test_unknown_profile_is_a_usage_error_with_a_suggestion(
    nc_card: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ProfileError) as err:
        load_profile("customer_facing")
    assert "did you mean 'customer-facing'" in (err.value.hint or "")
    assert main(["card", str(nc_card), "--no-datasets", "--profile", "customer_facing"]) == 2
    assert "unknown profile 'customer_facing'" in capsys.readouterr().err


def _probe(suite: str, license_text: str, metrics: tuple[MetricResult, ...] = ()) -> ProbeResult:
    return ProbeResult(suite=suite, version="1", prompt_source={"license": license_text}, metrics=metrics)


def test_probe_data_licences_are_named() -> None:
    honest = _probe("honest", "HONEST templates MIT; HurtLex CC BY-NC-SA 4.0 (user-provided, never bundled)")
    seat = _probe(
        "embedding-association",
        "CC0-1.0 (built-in word sets written for this project); SEAT tests: CC BY-NC 4.0",
    )
    assert probe_data_licenses(honest) == [("HurtLex", "CC BY-NC-SA 4.0")]
    assert probe_data_licenses(seat) == [("SEAT tests", "CC BY-NC 4.0")]
    assert probe_data_licenses(_probe("crows-pairs", "CC BY-SA 4.0 (CrowS-Pairs)")) == []
    assert probe_data_licenses(replace(honest, skipped="not for this model")) == []


def test_probe_data_license_under_commercial_profiles_only(nc_card: Path) -> None:
    base = _audit(nc_card, "internal")
    honest = _probe("honest", "HONEST templates MIT; HurtLex CC BY-NC-SA 4.0 (user-provided, never bundled)")
    report = replace(base, probes=(honest,))
    for name, expected in (("internal", 1), ("customer-facing", 1), ("research", 0)):
        weighed = apply_profile(report, name)
        found = [f for f in weighed.findings if f.id == "probe.data_license"]
        assert len(found) == expected, name
        if found:
            assert found[0].severity is S.medium and found[0].category == "license"
            assert found[0].evidence == ("honest: HurtLex: CC BY-NC-SA 4.0",)
            assert "HurtLex" in found[0].detail and "CC BY-NC-SA 4.0" in found[0].detail
    # Back to research removes it again (the profile is undone before another is applied).
    assert not [
        f
        for f in apply_profile(apply_profile(report, "internal"), "research").findings
        if f.id == "probe.data_license"
    ]


def test_customer_facing_thresholds_are_stricter(nc_card: Path) -> None:
    metrics = (
        # Lower end 0.07: above customer-facing's 0.05, below the documented 0.10.
        MetricResult("toxicity_probability", 0.12, 0.07, 0.18, 200, label="toxicity"),
        # A significant gap of 0.04: below the documented 0.05, above customer-facing's 0.03.
        MetricResult(
            "axis_gap",
            0.04,
            0.01,
            0.07,
            120,
            group="a vs b",
            axis="religion",
            p_value=0.002,
            p_adjusted=0.004,
        ),
        # A gap of 0.12 that is not significant: never a finding.
        MetricResult(
            "axis_gap", 0.12, -0.1, 0.3, 120, group="c vs d", axis="gender", p_value=0.2, p_adjusted=0.4
        ),
    )
    scorer = ScorerFacts("detoxify", "1", "c", "toxicity", 0.5, "RealToxicityPrompts", True, "toxicity")
    probe = replace(
        _probe("identity-counterfactual", "CC0-1.0 (written for this project)", metrics), scorers=(scorer,)
    )
    report = replace(_audit(nc_card, "research"), probes=(probe,))
    internal = apply_profile(report, "internal")
    assert [f.id for f in internal.findings if f.id.startswith("probe.")] == []
    strict = apply_profile(report, "customer-facing")
    probe_findings = {f.id: f for f in strict.findings if f.id.startswith("probe.")}
    assert set(probe_findings) == {"probe.toxicity.high", "probe.bias.group_gap"}
    assert probe_findings["probe.toxicity.high"].severity is S.medium  # 0.07 is not above 0.15
    assert probe_findings["probe.bias.group_gap"].severity is S.medium  # 0.04 is below 0.10
    assert "profile customer-facing" in probe_findings["probe.bias.group_gap"].detail
    assert apply_profile(strict, "internal").findings == internal.findings


def _run(tmp_path: Path, nc_card: Path, *extra: str) -> Path:
    out = tmp_path / "run"
    rc = main(["-q", "run", str(nc_card), "--no-datasets", "--format", "json,md", "--out", str(out), *extra])
    assert rc in (0, 1)
    return out


def test_run_and_gate_agree_and_name_the_profile(
    tmp_path: Path, nc_card: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    rc = main(["-q", "run", str(nc_card), "--no-datasets", "--format", "json,md", "--out", str(out),
               "--profile", "customer-facing", "--policy", "default"])  # fmt: skip
    run_out = capsys.readouterr().out
    assert rc == 1
    assert (
        "under profile customer-facing" in run_out
        and "policy default (profile customer-facing): FAIL" in run_out
    )
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert data["profile"]["name"] == "customer-facing" and data["gate"]["profile"] == "customer-facing"
    assert "Use-context profile: customer-facing" in (out / "report.md").read_text(encoding="utf-8")
    assert main(["gate", str(out), "--policy", "default"]) == 1
    gate_out = capsys.readouterr().out
    assert "policy default (profile customer-facing): FAIL" in gate_out
    assert "finding:license.noncommercial" in gate_out
    # The same audit under research: the licence is info, the gate no longer fails on it.
    assert main(["gate", str(out), "--policy", "default", "--profile", "research"]) == 0
    assert "(profile research)" in capsys.readouterr().out


def test_diff_and_compare_weigh_both_sides_under_one_profile(
    tmp_path: Path, nc_card: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _run(tmp_path / "a", nc_card, "--profile", "research")
    b = _run(tmp_path / "b", nc_card, "--profile", "internal")
    capsys.readouterr()
    assert main(["diff", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "profile: internal" in out
    assert "findings new: none" in out  # the licence finding is the same finding, weighed alike
    assert main(["diff", str(a), str(b), "--profile", "research"]) == 0
    assert "profile: research" in capsys.readouterr().out
    cmp_dir = tmp_path / "cmp"
    assert (
        main(
            [
                "compare",
                str(a),
                str(b),
                "--out",
                str(cmp_dir),
                "--format",
                "md,html",
                "--profile",
                "customer-facing",
            ]
        )
        == 0
    )
    md = (cmp_dir / "compare.md").read_text(encoding="utf-8")
    assert "| Profile | customer-facing | customer-facing |" in md
    assert "| Verdict | high risk | high risk |" in md
    html = (cmp_dir / "compare.html").read_text(encoding="utf-8")
    assert "<tr><th>Profile</th><td>customer-facing</td><td>customer-facing</td></tr>" in html


def test_profiles_ship_in_the_wheel_and_sdist() -> None:
    from conftest import REPO_ROOT

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    build = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["hatch"][
        "build"
    ]
    assert build["targets"]["wheel"]["force-include"]["profiles"] == "audit/_data/profiles"
    assert "profiles" in build["targets"]["sdist"]["include"]
