"""The wheel ships probes/ and templates/: build it, install it in a fresh venv, render a report from it."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from helpers import FULL_BODY, card

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_renders(tmp_path: Path) -> None:
    pytest.importorskip("hatchling", reason="building the wheel needs hatchling (pip install hatchling)")
    dist = tmp_path / "dist"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(dist.glob("model_risk_audit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "audit/_data/templates/report.html.j2" in names
    assert "audit/_data/templates/report.css" in names
    assert any(n.startswith("audit/_data/probes/") for n in names)
    assert "audit/catalogue/findings.yaml" in names
    assert not any(n.startswith("tests/") for n in names)

    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # Dependencies come from the test environment's site-packages; the package itself only from the wheel.
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "work"
    work.mkdir()
    (work / "card.md").write_text(card({"license": "cc-by-nc-4.0", "datasets": ["a/b"]}, FULL_BODY))
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH"}}
    env["HF_HUB_OFFLINE"] = "1"
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import audit, audit.resources as r; print(audit.__file__); print(r.templates_dir()); print(r.probes_dir())",
        ],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    module_file, templates, probes = probe.stdout.split()
    assert (
        module_file.startswith(str(site)) and templates.startswith(str(site)) and probes.startswith(str(site))
    )
    res = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "audit",
            "-q",
            "run",
            "card.md",
            "--out",
            "out",
            "--format",
            "html,pdf,json,md",
        ],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert {p.name for p in (work / "out").iterdir()} == {
        "report.json",
        "report.html",
        "report.pdf",
        "report.md",
        "manifest.json",
    }
    assert "license.noncommercial" in (work / "out" / "report.html").read_text()
