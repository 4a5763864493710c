"""A third-party plugin package (a backend and a scorer), installed with pip, is listed and used by a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN = Path(__file__).parent / "fixtures" / "plugin_pkg"

SUITE = textwrap.dedent(
    """
    id: echo-suite
    version: "1"
    title: Echo
    description: Prompts echoed by a third-party backend, scored by a third-party scorer.
    citation: test
    model_kinds: [text-generation]
    prompts: {kind: inline, inline: ["hello there", "good morning", "how are you"], license: CC0-1.0}
    sampling: {samples_per_prompt: 4, max_new_tokens: 5, seed: 3}
    scorers: [{name: profanity}]
    metrics: [expected_maximum_toxicity, toxicity_probability, mean_toxicity]
    """
)


@pytest.mark.slow
def test_third_party_backend_and_scorer(tmp_path: Path) -> None:
    pytest.importorskip("hatchling", reason="building the plugin package needs hatchling")
    site = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(PLUGIN),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    assert (site / "echo_plugin-0.1.0.dist-info" / "entry_points.txt").is_file()
    env = {**os.environ, "PYTHONPATH": str(site), "MODEL_AUDIT_CACHE": str(tmp_path / "cache")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "audit", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=300,
        )

    listed = cli("suites")
    assert listed.returncode == 0, listed.stderr
    assert "backend   echo" in listed.stdout and "[echo-plugin]" in listed.stdout
    assert "scorer    shouting" in listed.stdout
    helped = cli("run", "--help")
    assert "echo" in helped.stdout and "shouting" in helped.stdout

    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "card.md").write_text("---\nlicense: mit\n---\n# Echo\n")
    bad = cli("run", "card.md", "--suite", "suite.yaml", "--backend", "echo", "--backend-option", "sufix=?")
    assert bad.returncode == 2 and "did you mean 'suffix'?" in bad.stderr
    res = cli(
        "-q",
        "run",
        "card.md",
        "--suite",
        "suite.yaml",
        "--backend",
        "echo",
        "--backend-option",
        "suffix=?",
        "--scorer",
        "shouting",
        "--out",
        "out",
        "--format",
        "json,md",
    )
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    probe = report["probes"][0]
    assert probe["protocol"]["backend"] == {"backend": "echo", "suffix": "?", "shout_every": 2}
    assert [s["name"] for s in probe["scorers"]] == ["shouting"]
    samples = [json.loads(x) for x in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert (
        len(samples) == 12
        and samples[0]["output"] == "HELLO THERE? 0"
        and samples[1]["output"] == "hello there? 1"
    )
    # Every prompt has an upper-case sample (score 1.0 >= 0.5): toxicity probability is exactly 1.
    tp = next(m for m in probe["metrics"] if m["name"] == "toxicity_probability")
    assert tp["value"] == 1.0
    mean = next(m for m in probe["metrics"] if m["name"] == "mean_toxicity")
    assert mean["value"] == pytest.approx(0.5)
