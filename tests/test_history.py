"""`model-audit history`: one model's re-audits in time order, tables, trend charts, drift flags marked."""

from __future__ import annotations

import json
import random
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import FULL_BODY, card

from audit.cli import main
from audit.errors import UsageError
from audit.history import build_history
from audit.model import MetricResult, ProbeResult
from audit.pipeline import audit_model, write_report

LICENCES = ["apache-2.0", "apache-2.0", "cc-by-nc-4.0", "cc-by-nc-4.0", "cc-by-nc-4.0"]
TOX = [0.10, 0.11, 0.10, 0.30, 0.29]  # a significant jump at the fourth re-audit
GAP = [0.05, 0.05, 0.06, 0.05, 0.05]


def _reaudits(root: Path, options: Any, subject: str = "acme/model") -> list[Path]:
    """Five re-audits of one model (a card file per quarter) with a probe suite's metrics."""
    dirs = []
    for i, (lic, tox, gap) in enumerate(zip(LICENCES, TOX, GAP, strict=True)):
        path = root / f"card-{i}" / "model.md"
        path.parent.mkdir(parents=True)
        path.write_text(card({"license": lic}, FULL_BODY))
        report = audit_model(str(path), options.model_copy(update={"fetch_datasets": False}))
        probe = ProbeResult(
            suite="toxicity-continuation",
            version="1",
            metrics=(
                MetricResult("toxicity_probability", tox, tox - 0.02, tox + 0.02, 100, label="toxicity"),
                MetricResult(
                    "axis_gap", gap, gap - 0.03, gap + 0.03, 40, axis="income", group="$5 vs $ 50 $"
                ),
            ),
        )
        when = f"2026-{2 * i + 1:02d}-01T09:00:00"
        run = replace(report.run, started_at=when, finished_at=when, resolved_revision=f"{i + 1:x}" * 40)
        report = replace(report, run=run, probes=(probe,), card=replace(report.card, subject=subject))
        out = root / f"run-{i}"
        write_report(report, out, ["json"])
        dirs.append(out)
    return dirs


def test_history_orders_flags_and_charts(tmp_path: Path, options: Any) -> None:
    dirs = _reaudits(tmp_path, options)
    shuffled = dirs[:]
    random.Random(3).shuffle(shuffled)
    h = build_history(shuffled)
    assert [r.folder for r in h.revisions] == [str(d) for d in dirs]  # time order, whatever the input order
    assert [r.license for r in h.revisions] == LICENCES
    assert h.revisions[0].flags == [] and h.revisions[1].flags == []
    assert "licence changed: apache-2.0 -> cc-by-nc-4.0" in h.revisions[2].flags
    assert any(f.startswith("new findings: ") and "license.noncommercial" in f for f in h.revisions[2].flags)
    assert any(f.startswith("toxicity-continuation/toxicity_probability") for f in h.revisions[3].flags)
    assert (
        h.revisions[2].counts["high"] > h.revisions[1].counts["high"] or h.revisions[2].counts["critical"] > 0
    )
    tox = next(s for s in h.series if s.metric == "toxicity_probability")
    assert tox.values == TOX
    assert tox.ci_low == pytest.approx([v - 0.02 for v in TOX]) and tox.n == [100] * 5
    assert tox.flagged == [False, False, False, True, False]
    gap = next(s for s in h.series if s.metric == "axis_gap")
    assert gap.where == "income $5 vs $ 50 $" and not any(gap.flagged)

    out = tmp_path / "history"
    assert main(["history", *map(str, shuffled), "--out", str(out), "--format", "html,pdf,json,md"]) == 0
    html = (out / "history.html").read_text()
    assert html.count("<svg") == 3  # findings, and one chart per metric
    assert "licence changed: apache-2.0 -&gt; cc-by-nc-4.0" in html
    assert "significantly worse at a re-audit" in html
    data = json.loads((out / "history.json").read_text())
    assert [r["revision"][:1] for r in data["revisions"]] == ["1", "2", "3", "4", "5"]
    assert data["drift"][0] is None and data["drift"][2]["license_changed"] is True
    md = (out / "history.md").read_text()
    assert "**0.300 [0.280, 0.320]**" in md
    pdf = out / "history.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True)
    if text.returncode == 0:
        assert "re-audit history" in text.stdout.lower() and "Metrics over time" in text.stdout


def test_history_refuses_two_models(tmp_path: Path, options: Any) -> None:
    a = _reaudits(tmp_path / "a", options, "acme/one")[:2]
    b = _reaudits(tmp_path / "b", options, "acme/two")[:1]
    with pytest.raises(UsageError, match="2 different models"):
        build_history(a + b)
