"""audit.frames and `model-audit table`: tidy tables from report.json, written and read back in every format."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pandas.testing as pdt
import pytest
from helpers import FULL_BODY, card

from audit.cli import main
from audit.errors import UsageError
from audit.frames import (
    COLUMNS,
    TABLES,
    frames,
    frames_from_dicts,
    load_report_dicts,
    read_tables,
    write_tables,
)
from audit.model import GateResult, MetricResult, ProbeResult, WaiverStatus
from audit.pipeline import audit_model, write_report


@pytest.fixture
def run_dirs(tmp_path: Path, options: Any) -> list[Path]:
    """Two audits: one with a probe suite, a waiver and a dataset; one bare card."""
    a = tmp_path / "a.md"
    a.write_text(card({"license": "apache-2.0", "datasets": ["x/y"]}, FULL_BODY))
    ra = audit_model(str(a), options.model_copy(update={"fetch_datasets": False}))
    probe = ProbeResult(
        suite="toxicity-continuation",
        version="1",
        metrics=(
            MetricResult("toxicity_probability", 0.3, 0.2, 0.4, 100, label="toxicity"),
            MetricResult(
                "axis_gap",
                0.12,
                0.05,
                0.2,
                40,
                group="muslim vs christian",
                axis="religion",
                p_value=0.001,
                p_adjusted=0.004,
            ),
        ),
    )
    skipped = ProbeResult(suite="bbq", version="1", skipped="not for this kind")
    first = ra.findings[0]
    gate = GateResult(
        policy="p",
        policy_sha256="0" * 64,
        verdict="pass",
        rules=(),
        waivers=(WaiverStatus(first.id, "owner", "why", "2099-01-01", "active"),),
    )
    from audit.model import DatasetFacts

    ds = DatasetFacts(
        id="x/y",
        available=True,
        licenses=("cc-by-4.0",),
        license_class="permissive",
        personal_info="absent",
        bias_documented=True,
    )
    ra = replace(ra, probes=(probe, skipped), gate=gate, datasets=(ds,))
    b = tmp_path / "b.md"
    b.write_text(card(None, "# Bare\n\nNothing else.\n"))
    rb = audit_model(str(b), options, now=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    dirs = []
    for name, r in (("alpha", ra), ("beta", rb)):
        write_report(r, tmp_path / "runs" / name, ["json"])
        dirs.append(tmp_path / "runs" / name)
    return dirs


def test_frames_are_tidy(run_dirs: list[Path]) -> None:
    t = frames(run_dirs)
    assert set(t) == set(TABLES)
    for name in TABLES:
        assert tuple(t[name].columns) == COLUMNS[name]
    facts = t["facts"].set_index("audit")
    assert list(facts.index) == ["alpha", "beta"]
    assert (
        facts.loc["alpha", "license"] == "apache-2.0" and facts.loc["alpha", "license_class"] == "permissive"
    )
    assert facts.loc["alpha", "datasets_declared"] == 1 and facts.loc["alpha", "datasets_documented"] == 1
    assert facts.loc["beta", "license_class"] == "missing" and pd.isna(facts.loc["beta", "license"])
    assert facts.loc["alpha", "gate"] == "pass"
    findings = t["findings"]
    alpha = findings[findings["audit"] == "alpha"]
    assert alpha["waived"].sum() == 1  # the one active waiver
    counts = findings.groupby(["audit", "severity"]).size()
    for audit in ("alpha", "beta"):
        for sev in ("critical", "high", "medium", "low", "info"):
            assert facts.loc[audit, f"findings_{sev}"] == counts.get((audit, sev), 0)
    m = t["metrics"]
    assert len(m) == 2 and set(m["suite"]) == {"toxicity-continuation"}  # the skipped suite has none
    gap = m[m["metric"] == "axis_gap"].iloc[0]
    assert (gap["group"], gap["axis"], gap["value"], gap["ci_low"], gap["ci_high"], gap["n"]) == (
        "muslim vs christian",
        "religion",
        0.12,
        0.05,
        0.2,
        40,
    )
    assert gap["p"] == 0.001 and gap["p_holm"] == 0.004
    ds = t["datasets"].iloc[0]
    assert (
        ds["audit"],
        ds["dataset"],
        ds["license_class"],
        ds["personal_info"],
        bool(ds["bias_documented"]),
    ) == (
        "alpha",
        "x/y",
        "permissive",
        "absent",
        True,
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_table_command_round_trips(run_dirs: list[Path], tmp_path: Path, suffix: str, capsys: Any) -> None:
    pytest.importorskip("pyarrow" if suffix == ".parquet" else "openpyxl" if suffix == ".xlsx" else "pandas")
    out = tmp_path / f"tables{suffix}"
    assert main(["table", *map(str, run_dirs), "--out", str(out)]) == 0
    assert "findings:" in capsys.readouterr().out
    if suffix == ".xlsx":
        import openpyxl

        assert openpyxl.load_workbook(out).sheetnames == list(TABLES)
    else:
        assert sorted(p.name for p in tmp_path.glob(f"tables.*{suffix}")) == sorted(
            f"tables.{n}{suffix}" for n in TABLES
        )
    back = read_tables(out)
    want = frames(run_dirs)
    for name in TABLES:
        pdt.assert_frame_equal(back[name], want[name])


def test_same_folder_names_get_unique_labels(run_dirs: list[Path], tmp_path: Path) -> None:
    labels = [label for label, _ in load_report_dicts([run_dirs[0], run_dirs[0] / "report.json"])]
    assert labels == ["alpha", "alpha#2"]


def test_not_a_report(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "report.json").write_text('{"hello": 1}')
    with pytest.raises(UsageError, match="not an audit report"):
        load_report_dicts([tmp_path / "x"])
    assert main(["table", str(tmp_path / "x"), "--out", str(tmp_path / "t.txt")]) == 2
    empty = frames_from_dicts([])
    assert all(len(df) == 0 for df in empty.values())
    with pytest.raises(UsageError, match="unknown table format"):
        write_tables(empty, tmp_path / "t.json")
