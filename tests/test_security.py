"""The three security fixes: references validated before any call, one writer per run folder, no
credential of a URL in any artifact, log or error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from fakeopenai import FakeOpenAI

from audit.cli import main
from audit.collect import parse_ref
from audit.collect.refs import check_repo_id, revision_problem
from audit.errors import InvalidRefError
from audit.redact import redact_options, redact_text, redact_url
from audit.runlock import RunFolderBusyError, RunFolderLock, lock_paths

REPO = Path(__file__).resolve().parents[1]
CARD = "---\nlicense: mit\n---\n# M\n\nA model.\n"


# ------------------------------------------------------------------ 1. references


@pytest.mark.parametrize(
    "revision",
    [
        "../../../../some/file",
        "main/../../x",
        "/etc/passwd",
        "..",
        "a\\b",
        "v1\x00",
        "v1\nmain",
        "v1 2",
        "-rf",
        "release/.hidden",
        "x.lock",
        "a//b",
        "a@{1}",
    ],
)
def test_bad_revision_is_a_usage_error(revision: str) -> None:
    with pytest.raises(InvalidRefError) as err:
        parse_ref(f"org/name@{revision}")
    assert err.value.exit_code == 2
    assert "hint" not in err.value.message and err.value.hint


@pytest.mark.parametrize(
    "revision", ["main", "v1.0", "release/v1", "refs/pr/12", "refs/convert/parquet", "0" * 40, "a1b2c3d"]
)
def test_hub_revision_forms_still_work(revision: str) -> None:
    ref = parse_ref(f"org/name@{revision}")
    assert (ref.repo_id, ref.revision) == ("org/name", revision)
    assert revision_problem(revision) is None


@pytest.mark.parametrize("repo_id", ["../x", "org/../x", "org/na me", "a/b/c", "org\\x", "/abs", "org/x\x07"])
def test_bad_repo_ids_rejected(repo_id: str) -> None:
    with pytest.raises(InvalidRefError):
        check_repo_id(repo_id)


def test_traversal_revision_writes_nothing_and_asks_nothing(
    hub: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.add_model("org/name", {"README.md": CARD})
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    cache = tmp_path / "hf-cache"
    rel = os.path.relpath(victim, cache / "models--org--name" / "refs")
    code = main(["-q", "run", f"org/name@{rel}", "--cache-dir", str(cache), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "is not a valid branch, tag or commit" in err and "hint:" in err
    assert victim.read_text() == "keep me"
    assert hub.requests == []  # refused before any call
    assert not (tmp_path / "o").exists()


def test_dataset_and_base_ids_from_a_card_are_checked(hub: Any, options: Any) -> None:
    from audit.collect import collect_dataset
    from audit.collect.hub import fetch_repo

    with pytest.raises(InvalidRefError):
        fetch_repo("../../x", None, options, repo_type="dataset")
    facts = collect_dataset("org/../../x", options)
    assert not facts.available
    assert hub.requests == []


# ------------------------------------------------------------------ 2. one writer per run folder

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from audit.runlock import RunFolderLock
    with RunFolderLock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(60)
    """
)


def _hold_lock(folder: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_fails_at_once_naming_the_holder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = tmp_path / "model.md"
    card.write_text(CARD)
    out = tmp_path / "run"
    assert main(["-q", "run", str(card), "--no-datasets", "--out", str(out), "--format", "json"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    proc = _hold_lock(out)
    try:
        for args in (
            ["run", str(card), "--no-datasets", "--out", str(out), "--format", "json"],
            ["render", str(out), "--format", "md"],
        ):
            t0 = time.monotonic()
            code = main(["-q", *args])
            err = capsys.readouterr().err
            assert code == 2, err
            assert time.monotonic() - t0 < 5
            assert f"pid {proc.pid}" in err and "being written by another process" in err
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing touched
    finally:
        proc.kill()
        proc.wait()
    # The lock lives beside the folder, never in it; once released, the next writer goes ahead.
    lock, _ = lock_paths(out)
    assert lock.parent == out.parent and not any(p.name.endswith(".lock") for p in out.iterdir())
    assert main(["-q", "render", str(out), "--format", "md"]) == 0


def test_lock_in_process_is_exclusive(tmp_path: Path) -> None:
    with RunFolderLock(tmp_path / "r"), pytest.raises(RunFolderBusyError), RunFolderLock(tmp_path / "r"):
        pass
    with RunFolderLock(tmp_path / "r"):
        pass


def test_repeated_and_torn_lines_dropped_wherever_they_are(tmp_path: Path) -> None:
    from audit.runfiles import RunFiles

    tmp_path.mkdir(exist_ok=True)
    recs = [{"key": f"k{i}", "output": f"o{i}"} for i in range(4)]
    lines = [json.dumps(r) for r in recs]
    dup = json.dumps({"key": "k1", "output": "other writer"})
    (tmp_path / "samples.jsonl").write_text(
        "\n".join([lines[0], lines[1], '{"key": "k9", "outp', dup, lines[2], lines[3]]) + "\n"
    )
    files = RunFiles(tmp_path, fresh=False)
    assert list(files.samples) == ["k0", "k1", "k2", "k3"]
    assert files.samples["k1"]["output"] == "o1"  # the first record of a key wins
    assert (tmp_path / "samples.jsonl").read_text().splitlines() == lines  # rewritten clean


def test_stale_temp_files_removed_by_next_writer(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    stale = out / ".report.json.abc123.tmp"
    stale.write_text("{half")
    keep = out / "notes.txt"
    keep.write_text("mine")
    with RunFolderLock(out):
        pass
    assert not stale.exists() and keep.exists()


# ------------------------------------------------------------------ 3. credentials in URLs


def test_redaction_helper() -> None:
    assert redact_url("http://user:PASSWORD@host:8000/v1") == "http://***@host:8000/v1"
    assert redact_url("https://h/v1?api-key=SECRET&api-version=2024-10-21") == (
        "https://h/v1?api-key=***&api-version=2024-10-21"
    )
    assert "SECRET" not in redact_url("https://acct.blob.core.windows.net/c?sv=1&sig=SECRET&se=2")
    assert (
        redact_url("https://h/v1?a=1;sig=SECRET;b=2") == "https://h/v1?a=1;sig=***;b=2"
    )  # ';' separators too
    assert "max_new_tokens" in redact_options({"max_new_tokens": "20"})
    assert redact_options({"max_new_tokens": "20", "api_key": "S", "api_key_env": "VAR"}) == {
        "max_new_tokens": "20",
        "api_key": "***",
        "api_key_env": "VAR",
    }
    assert "SECRET" not in redact_text("failed: POST http://u:SECRET@h/v1 (Bearer SECRETSECRET)")


def test_password_in_base_url_reaches_no_artifact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_AUDIT_CACHE", str(tmp_path / "cache"))
    suite = tmp_path / "tiny.yaml"
    suite.write_text(
        textwrap.dedent(
            """
            id: tiny
            version: "1"
            title: Tiny
            description: t
            citation: c
            model_kinds: [text-generation]
            prompts: {kind: inline, inline: ["Hello there", "You are"]}
            sampling: {samples_per_prompt: 2, max_new_tokens: 5, seed: 1}
            scorers: [{name: profanity}]
            metrics: [expected_maximum_toxicity]
            """
        )
    )
    card = tmp_path / "model.md"
    card.write_text(CARD)
    server = FakeOpenAI()
    secret = "PASSWORD-hunter2"
    url = server.url.replace("http://", f"http://user:{secret}@") + f"?api-key={secret}"
    out = tmp_path / "run"
    try:
        code = main(
            [
                "-v",
                "run",
                str(card),
                "--no-datasets",
                "--suite",
                str(suite),
                "--backend",
                "openai",
                "--backend-option",
                f"base_url={url}",
                "--backend-option",
                "model=m",
                "--out",
                str(out),
                "--format",
                "json,html,md,pdf",
            ]
        )
        outerr = capsys.readouterr()
        assert code == 0, outerr.err
        # An endpoint that fails: its error names the endpoint, without the password.
        server.fail_500 = 100
        code = main(
            [
                "run",
                str(card),
                "--no-datasets",
                "--suite",
                str(suite),
                "--no-cache",
                "--backend",
                "openai",
                "--backend-option",
                f"base_url={url}",
                "--backend-option",
                "model=m",
                "--backend-option",
                "max_retries=0",
                "--out",
                str(tmp_path / "run2"),
                "--format",
                "json",
            ]
        )
        failed = capsys.readouterr()
        assert code == 3
    finally:
        server.stop()
    report = (out / "report.json").read_text()
    assert "http://***@127.0.0.1" in report
    from pypdf import PdfReader

    pdf_text = "".join(page.extract_text() for page in PdfReader(out / "report.pdf").pages)
    assert secret not in pdf_text
    for path in [*tmp_path.rglob("*")]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in outerr.out + outerr.err + failed.out + failed.err
    assert "***@127.0.0.1" in failed.err
