"""The CLI is thin: no environment mutation, errors chain their cause and -v shows the traceback (redacted),
every command is dispatched explicitly, and the pipeline owns the run (lock, drift, gate, --if-changed)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import pytest

from audit import cli
from audit.cli import main

CARD = "---\nlicense: mit\n---\n# M\n\nA model.\n"


def test_verbose_shows_the_chained_traceback_of_a_mapped_error(
    hub: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["-v", "card", "org/does-not-exist", "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 3
    assert "Traceback (most recent call last)" in err
    assert "The above exception was the direct cause of the following exception" in err
    assert "RepoNotFoundError" in err and "error: model repo 'org/does-not-exist' was not found" in err
    code = main(["card", "org/does-not-exist", "--cache-dir", str(tmp_path / "c")])
    assert "Traceback" not in capsys.readouterr().err  # without -v: one line and a hint


def test_verbose_traceback_is_redacted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    card = tmp_path / "m.md"
    card.write_text(CARD)
    code = main(
        [
            "-v",
            "run",
            str(card),
            "--no-datasets",
            "--suite",
            "toxicity-continuation",
            "--backend",
            "openai",
            "--backend-option",
            "base_url=http://user:S3CRET-PW@127.0.0.1:9/v1",
            "--backend-option",
            "model=m",
            "--backend-option",
            "timeout=nan",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "S3CRET-PW" not in err


def test_offline_is_an_option_not_an_environment_change(
    hub: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.add_model("org/m", {"README.md": CARD})
    before = dict(os.environ)
    code = main(["card", "org/m", "--offline", "--cache-dir", str(tmp_path / "empty")])
    err = capsys.readouterr().err
    assert code == 3 and "not in the local Hugging Face cache" in err
    assert hub.requests == []  # nothing was asked of the Hub
    assert dict(os.environ) == before
    assert "os.environ[" not in inspect.getsource(cli)


def test_every_command_is_dispatched_explicitly() -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    commands = set(sub.choices)  # type: ignore[arg-type]
    assert commands == set(cli.COMMANDS)
    assert all(inspect.isfunction(fn) and fn.__name__ == f"cmd_{name}" for name, fn in cli.COMMANDS.items())
    assert "getattr(cli_" not in inspect.getsource(cli)  # no dispatch by a name string


def test_if_changed_lives_in_the_pipeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = tmp_path / "m.md"
    card.write_text(CARD)
    first = tmp_path / "first"
    assert main(["-q", "run", str(card), "--no-datasets", "--out", str(first), "--format", "json"]) == 0
    capsys.readouterr()
    code = main(
        ["-q", "run", str(card), "--no-datasets", "--if-changed", str(first), "--out", str(tmp_path / "b")]
    )
    assert code == 0 and "unchanged since" in capsys.readouterr().out
    assert not (tmp_path / "b").exists()


def test_if_changed_notices_a_new_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = tmp_path / "m.md"
    card.write_text(CARD)
    first = tmp_path / "first"
    assert main(["-q", "run", str(card), "--no-datasets", "--out", str(first), "--format", "json"]) == 0
    capsys.readouterr()
    args = ["-q", "run", str(card), "--no-datasets", "--if-changed", str(first), "--format", "json"]
    assert main([*args, "--profile", "research", "--out", str(tmp_path / "b")]) == 0
    assert "unchanged since" not in capsys.readouterr().out and (tmp_path / "b" / "report.json").is_file()
