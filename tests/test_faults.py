"""Faults and hostile input (issue 12, defects 4-10): each case asserts the exit code, the message,
a bounded time and what is kept for resume.

The endpoint is our fault-injecting server (tests/fakeopenai.py); model and run folders are
crafted here (FIFOs, device links, traversal shard paths). Subprocess cases keep stdin open as a
pipe, so a process that read the standard-input device would hang, and the timeout would say so.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fakeopenai import FakeOpenAI, fake_choice, fake_completion
from helpers import tiny_suite_yaml

from audit.cli import main
from audit.collect.local import read_local_folder
from audit.config import Sampling
from audit.errors import UsageError
from audit.manifest import verify
from audit.sample.openai import EndpointError, OpenAIBackend
from audit.suites import Prompt

REPO = Path(__file__).resolve().parents[1]
CARD = "---\nlicense: mit\n---\n# Model\n\nA model.\n"
SUITE = tiny_suite_yaml("tiny-faults")
PROMPTS = [Prompt(f"p{i}", text) for i, text in enumerate(["Hello there", "You are", "The weather is"])]
SEEDS = {p.id: 100 * i for i, p in enumerate(PROMPTS)}


@pytest.fixture
def server() -> Any:
    s = FakeOpenAI()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A cache of the test's own (in process and for subprocesses)."""
    monkeypatch.setenv("MODEL_AUDIT_CACHE", str(tmp_path / "cache"))
    return {**os.environ, "PYTHONPATH": str(REPO), "MODEL_AUDIT_CACHE": str(tmp_path / "cache")}


@pytest.fixture
def card(tmp_path: Path) -> Path:
    p = tmp_path / "model.md"
    p.write_text(CARD)
    return p


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(SUITE)
    return p


def run_args(card: Path, suite: Path, url: str, out: Path, *extra: str) -> list[str]:
    return [
        "-q",
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
        "json",
        *extra,
    ]


def samples_of(out: Path) -> dict[tuple[str, int], str]:
    rows = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    return {(r["prompt_id"], r["sample_index"]): r["output"] for r in rows}


def safetensors(path: Path, shapes: dict[str, list[int]]) -> None:
    header = json.dumps({k: {"dtype": "F32", "shape": v, "data_offsets": [0, 0]} for k, v in shapes.items()})
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode())


def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "README.md").write_text(CARD)
    (folder / "config.json").write_text('{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}')
    return folder


def card_cli(folder: Path, env: dict[str, str]) -> tuple[int, dict[str, Any], float]:
    """`model-audit card DIR --json` in a subprocess with stdin an open pipe (reading it would hang)."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "audit", "-q", "card", str(folder), "--json"],
        env={**env, "HF_HUB_OFFLINE": "1"},
        stdin=subprocess.PIPE,
        capture_output=True,
        timeout=60,
        text=True,
    )
    data = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    return proc.returncode, data, time.monotonic() - start


def findings_of(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    items = data.get("findings") or data.get("card", {}).get("findings") or []
    return {f["id"]: f for f in items}


# ---------------------------------------------------------------- defect 4: hangs on crafted files


def test_fifo_named_model_safetensors_is_a_finding_and_never_opened(
    tmp_path: Path, env: dict[str, str]
) -> None:
    folder = model_folder(tmp_path)
    os.mkfifo(folder / "model.safetensors")
    start = time.monotonic()
    fetched = read_local_folder(folder, 1 << 20)
    assert time.monotonic() - start < 5
    assert "model.safetensors" not in fetched.files and fetched.parameters is None
    assert fetched.unsafe == ["model.safetensors is a FIFO, not a regular file"]
    code, data, took = card_cli(folder, env)
    assert code == 0 and took < 60
    assert "model.safetensors is a FIFO" in " ".join(findings_of(data)["files.unsafe_entry"]["evidence"])


def test_index_pointing_at_dev_stdin_is_a_finding(tmp_path: Path, env: dict[str, str]) -> None:
    folder = model_folder(tmp_path)
    safetensors(folder / "model-00001.safetensors", {"w": [2, 3]})
    index = {"weight_map": {"w": "model-00001.safetensors", "v": "/dev/stdin"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    fetched = read_local_folder(folder, 1 << 20)
    assert fetched.parameters is None  # an incomplete count is not reported
    assert fetched.unsafe == [
        "model.safetensors.index.json names a shard '/dev/stdin' is a path outside the folder"
    ]
    code, data, took = card_cli(folder, env)  # stdin is an open pipe: reading it would block to the timeout
    assert code == 0 and took < 60
    assert "/dev/stdin" in " ".join(findings_of(data)["files.unsafe_entry"]["evidence"])


def test_index_with_dotdot_shard_paths_is_a_finding(tmp_path: Path) -> None:
    folder = model_folder(tmp_path)
    safetensors(tmp_path / "outside.safetensors", {"w": [1000, 1000]})  # a real file outside the folder
    index = {"weight_map": {"w": "../outside.safetensors", "v": "sub/../../outside.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    fetched = read_local_folder(folder, 1 << 20)
    assert fetched.parameters is None
    assert len(fetched.unsafe) == 2 and all("outside the folder" in u for u in fetched.unsafe)


def test_weights_linked_to_dev_zero_are_a_finding(tmp_path: Path) -> None:
    folder = model_folder(tmp_path)
    os.symlink("/dev/zero", folder / "model.safetensors")
    start = time.monotonic()
    fetched = read_local_folder(folder, 1 << 20)
    assert time.monotonic() - start < 5
    assert fetched.unsafe == ["model.safetensors is a link leaving the folder (to /dev/zero)"]
    assert fetched.parameters is None and "model.safetensors" not in fetched.files


def test_card_linked_outside_the_folder_is_not_read(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    secret = tmp_path / "secret.md"
    secret.write_text("---\nlicense: mit\n---\nTOP SECRET\n")
    os.symlink(secret, folder / "README.md")
    fetched = read_local_folder(folder, 1 << 20)
    assert fetched.card is None
    assert fetched.unsafe == [f"README.md is a link leaving the folder (to {secret})"]


def test_links_inside_the_folder_and_to_hub_cache_blobs_still_work(tmp_path: Path) -> None:
    snap = tmp_path / "models--org--m" / "snapshots" / "abc"
    blobs = tmp_path / "models--org--m" / "blobs"
    snap.mkdir(parents=True)
    blobs.mkdir()
    safetensors(blobs / "1234", {"w": [4, 5], "b": [5]})
    (blobs / "5678").write_text(CARD)
    os.symlink("../../blobs/1234", snap / "model.safetensors")
    os.symlink("../../blobs/5678", snap / "README.md")
    fetched = read_local_folder(snap, 1 << 20)
    assert fetched.unsafe == [] and fetched.parameters == 25 and fetched.card == CARD.encode()


def _finished_run(tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI) -> Path:
    out = tmp_path / "run"
    assert main(run_args(card, suite, server.url, out)) == 0
    return out


def test_run_folder_symlink_to_dev_zero_refused_by_verify_and_render(
    tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI, env: dict[str, str], capsys: Any
) -> None:
    out = _finished_run(tmp_path, card, suite, server)
    os.symlink("/dev/zero", out / "extra.bin")
    start = time.monotonic()
    assert verify(out) == ["refused: extra.bin is a symbolic link (not hashed)"]
    capsys.readouterr()
    assert main(["verify", str(out)]) == 1
    assert "refused: extra.bin is a symbolic link" in capsys.readouterr().out
    assert main(["render", str(out), "--format", "md"]) == 2
    err = capsys.readouterr().err
    assert "extra.bin is a symbolic link" in err and "hint: remove them" in err
    assert time.monotonic() - start < 30
    os.unlink(out / "extra.bin")
    assert verify(out) == []  # nothing was written by the refused render


def test_run_folder_fifo_refused_by_verify_and_render(
    tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI, env: dict[str, str], capsys: Any
) -> None:
    out = _finished_run(tmp_path, card, suite, server)
    os.mkfifo(out / "pipe")
    start = time.monotonic()
    assert "refused: pipe is a FIFO (not hashed)" in verify(out)
    assert main(["render", str(out), "--format", "md"]) == 2
    assert "pipe is a FIFO" in capsys.readouterr().err
    assert time.monotonic() - start < 30


def test_samples_file_linked_to_dev_zero_is_refused(
    tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI, capsys: Any
) -> None:
    out = _finished_run(tmp_path, card, suite, server)
    (out / "scores.jsonl").unlink()
    os.symlink("/dev/zero", out / "scores.jsonl")
    start = time.monotonic()
    assert main(["render", str(out), "--format", "md"]) == 2
    assert "scores.jsonl" in capsys.readouterr().err
    assert any(p.startswith("refused: scores.jsonl") for p in verify(out))
    assert time.monotonic() - start < 30


# ---------------------------------------------------------------- defect 5: Ctrl-C


@pytest.mark.slow
def test_sigint_during_hanging_requests_ends_at_once_and_resume_gives_the_same_report(
    tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI, env: dict[str, str]
) -> None:
    server.honour_n = True
    server.script = ["ok", "ok"]  # two prompts finish, then every request hangs for 60 s
    server.fault_all = "hang"
    args = [sys.executable, "-m", "audit", *run_args(card, suite, server.url, tmp_path / "run")]
    args += ["--backend-option", "concurrency=2", "--backend-option", "timeout=60"]
    proc = subprocess.Popen(
        args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while server.in_flight < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.in_flight == 2  # both requests hang now
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    print(f"SIGINT to exit: {took:.2f} s")
    assert proc.returncode == 130 and b"interrupted" in err
    assert took < 5, (
        took
    )  # the hang would last 60 s; the issue asks for two seconds (slack for a busy machine)
    kept = samples_of(tmp_path / "run")
    assert len(kept) == 6  # the two finished prompts were written before the interrupt
    server.fault_all = ""
    before = server.count
    assert main(run_args(card, suite, server.url, tmp_path / "run")) == 0
    assert server.count - before == 4  # only the 4 missing prompts were asked (n=3 each)
    assert main(run_args(card, suite, server.url, tmp_path / "clean", "--no-cache")) == 0
    assert samples_of(tmp_path / "run") == samples_of(tmp_path / "clean")
    resumed = json.loads((tmp_path / "run" / "report.json").read_text())["probes"]
    clean = json.loads((tmp_path / "clean" / "report.json").read_text())["probes"]
    assert resumed == clean


# ---------------------------------------------------------------- defect 6: answer cap


def test_huge_answer_is_cut_and_the_cut_recorded(
    tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI
) -> None:
    server.honour_n = True
    server.script = ["huge"]
    out = tmp_path / "run"
    assert main(run_args(card, suite, server.url, out, "--backend-option", "concurrency=1")) == 0
    rows = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    cut = [r for r in rows if "truncated_from" in r]
    assert len(cut) == 3 and all(r["truncated_from"] == server.huge_chars for r in cut)
    assert all(len(r["output"]) == 512 for r in cut)  # max(512, 8 tokens x 32 characters)
    assert (out / "samples.jsonl").stat().st_size < 100_000
    notes = json.loads((out / "report.json").read_text())["probes"][0]["notes"]
    assert "3 of 18 answers exceeded the per-answer character limit and were cut" in notes


def test_body_over_the_hard_limit_is_refused(monkeypatch: pytest.MonkeyPatch, server: FakeOpenAI) -> None:
    import audit.sample.openai as backend_module

    monkeypatch.setattr(backend_module, "MAX_BODY_BYTES", 1 << 20)
    server.fault_all = "huge"
    backend = OpenAIBackend({"base_url": server.url, "model": "m"})
    with pytest.raises(EndpointError, match="more than 1 MiB"):
        list(backend.generate_many("s", PROMPTS[:1], Sampling(samples_per_prompt=1), SEEDS))
    assert server.count == 1  # not retried


# ---------------------------------------------------------------- defect 7: "$" in labels


def test_dollar_in_group_label_and_test_name_renders() -> None:
    from audit.model import MetricResult, ProbeResult
    from audit.render.charts import group_chart

    metrics = (
        MetricResult("group_mean_toxicity", 0.2, 0.1, 0.3, 10, group=r"$\notacommand{x}$", axis="a$b"),
        MetricResult("group_mean_toxicity", 0.1, 0.0, 0.2, 10, group="$5 and $", axis="a$b"),
        MetricResult("effect_size", 0.5, 0.1, 0.9, 10, axis=r"$\frac{", label="weat $1$"),
    )
    probe = ProbeResult(suite="s", version="1", metrics=metrics)
    assert "<svg" in str(group_chart(probe))
    assert "<svg" in str(group_chart(probe, "effect_size", by_axis=True))


# ---------------------------------------------------------------- defect 8: transport faults


@pytest.mark.parametrize("fault", ["close-mid-body", "reset", "malformed", "html", "500", "429", "429-bare"])
def test_transport_fault_is_retried(server: FakeOpenAI, fault: str) -> None:
    server.honour_n = True
    server.script = [fault]
    backend = OpenAIBackend({"base_url": server.url, "model": "m", "concurrency": "1"})
    start = time.monotonic()
    out = dict(
        backend.generate_many("s", PROMPTS[:1], Sampling(samples_per_prompt=2, max_new_tokens=5), SEEDS)
    )
    assert time.monotonic() - start < 10
    assert server.count == 2  # the fault, then the retry
    assert out[PROMPTS[0]] == [fake_choice("Hello there", 0, 5, i) for i in range(2)]


def test_retry_after_is_honoured(server: FakeOpenAI) -> None:
    server.script = ["429-retry-after"]
    server.retry_after = "1.5"
    backend = OpenAIBackend({"base_url": server.url, "model": "m"})
    start = time.monotonic()
    list(backend.generate_many("s", PROMPTS[:1], Sampling(samples_per_prompt=1), SEEDS))
    assert 1.4 < time.monotonic() - start < 10 and server.count == 2


def test_transport_fault_that_persists_is_an_endpoint_error_not_a_bug(
    tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI, capsys: Any
) -> None:
    server.fault_all = "html"
    out = tmp_path / "run"
    code = main([*run_args(card, suite, server.url, out), "--backend-option", "max_retries=1"])
    err = capsys.readouterr().err
    assert code == 3
    assert "answered a body that is not JSON ('<html>" in err and "unexpected" not in err
    assert "hint: is mode=chat right for this server" in err


@pytest.mark.slow
def test_close_mid_body_on_every_third_request_finishes_with_all_samples(
    tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI
) -> None:
    server.flaky_every = 3
    out = tmp_path / "run"
    assert main([*run_args(card, suite, server.url, out), "--backend-option", "concurrency=3"]) == 0
    got = samples_of(out)
    assert len(got) == 18
    server.flaky_every = 0
    clean = tmp_path / "clean"
    assert main([*run_args(card, suite, server.url, clean), "--no-cache"]) == 0
    assert got == samples_of(clean)  # the faults changed nothing
    assert server.count >= 2 * 18 + 18 // 3


# ---------------------------------------------------------------- defect 9: bad input is exit 2


def _run_error(argv: list[str], capsys: Any) -> tuple[int, str, float]:
    start = time.monotonic()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    return code, capsys.readouterr().err, time.monotonic() - start


def test_prompts_file_with_invalid_utf8_is_a_usage_error(
    tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI, capsys: Any
) -> None:
    bad = tmp_path / "prompts.txt"
    bad.write_bytes(b"fine\n\xff\xfe broken\n")
    argv = run_args(card, suite, server.url, tmp_path / "o", "--prompts", str(bad))
    code, err, took = _run_error(argv, capsys)
    assert code == 2 and took < 30
    assert "prompts.txt: not UTF-8 text (byte 5" in err and "hint: save the prompt file as UTF-8" in err
    assert server.count == 0


def test_prompts_file_with_bad_jsonl_is_a_usage_error(
    tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI, capsys: Any
) -> None:
    bad = tmp_path / "prompts.jsonl"
    bad.write_text('{"text": "one"}\n{"text": "two"\n')
    argv = run_args(card, suite, server.url, tmp_path / "o", "--prompts", str(bad))
    code, err, _ = _run_error(argv, capsys)
    assert code == 2 and "line 2 is not JSON" in err and "hint: .jsonl: one JSON object a line" in err


def _replay_args(card: Path, suite: Path, replay: Path, out: Path) -> list[str]:
    return [
        "-q", "run", str(card), "--no-datasets", "--suite", str(suite), "--backend", "replay",
        "--backend-option", f"file={replay}", "--out", str(out), "--format", "json",
    ]  # fmt: skip


def test_replay_file_with_invalid_utf8_is_a_usage_error(
    tmp_path: Path, card: Path, suite: Path, capsys: Any
) -> None:
    replay = tmp_path / "replay.jsonl"
    replay.write_bytes(b'{"suite": "tiny-faults", "prompt_id": "x", "sample_index": 0, "output": "\xff"}\n')
    code, err, _ = _run_error(_replay_args(card, suite, replay, tmp_path / "o"), capsys)
    assert code == 2 and "replay.jsonl: not UTF-8 text" in err and "hint:" in err


def test_replay_file_with_bad_jsonl_is_a_usage_error(
    tmp_path: Path, card: Path, suite: Path, capsys: Any
) -> None:
    replay = tmp_path / "replay.jsonl"
    replay.write_text('{"suite": "tiny-faults", "prompt_id": "x", "sample_index": 0, "output": "a"}\n{oops\n')
    code, err, _ = _run_error(_replay_args(card, suite, replay, tmp_path / "o"), capsys)
    assert code == 2 and "replay.jsonl:2: not a replay record (JSONDecodeError" in err


@pytest.mark.parametrize("value", ["-5", "nan", "inf", "0"])
def test_bad_timeout_is_a_usage_error_naming_the_option(
    value: str, tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI, capsys: Any
) -> None:
    argv = run_args(card, suite, server.url, tmp_path / "o", "--backend-option", f"timeout={value}")
    code, err, _ = _run_error(argv, capsys)
    assert code == 2, err
    assert f"invalid option timeout={value} for backend 'openai'" in err  # the registry's message
    assert "hint: timeout: seconds per request, a finite number above 0" in err
    assert len(err.strip().splitlines()) == 2 and server.count == 0


def test_base_url_without_scheme_is_a_usage_error(
    tmp_path: Path, card: Path, suite: Path, capsys: Any
) -> None:
    argv = run_args(card, suite, "user:PASSWORD@localhost:8000/v1", tmp_path / "o")
    code, err, _ = _run_error(argv, capsys)
    assert code == 2
    assert "invalid option base_url=*** for backend 'openai'" in err
    assert "not an http:// or https:// URL with a host" in err
    assert "hint: base_url: an http:// or https:// URL with a host, e.g. http://HOST:PORT/v1" in err
    assert "PASSWORD" not in err


def test_unknown_and_options_instance(server: FakeOpenAI) -> None:
    with pytest.raises(UsageError, match="unknown openai backend option.*: colour"):
        OpenAIBackend({"base_url": server.url, "model": "m", "colour": "red"})
    opts = OpenAIBackend.Options(base_url=server.url, model="m", concurrency=2)
    assert OpenAIBackend(opts).concurrency == 2


def test_out_naming_an_existing_file_is_a_usage_error(
    tmp_path: Path, card: Path, suite: Path, capsys: Any
) -> None:
    existing = tmp_path / "report.txt"
    existing.write_text("keep me")
    code, err, _ = _run_error(run_args(card, suite, "http://127.0.0.1:9/v1", existing), capsys)
    assert code == 2 and "report.txt exists and is not a folder" in err
    assert existing.read_text() == "keep me"


def test_deep_policy_yaml_is_a_usage_error(
    tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI, capsys: Any
) -> None:
    out = _finished_run(tmp_path, card, suite, server)
    policy = tmp_path / "policy.yaml"
    policy.write_text("findings: " + "[" * 100_000 + "]" * 100_000 + "\n")
    code, err, took = _run_error(["gate", str(out), "--policy", str(policy)], capsys)
    assert code == 2 and took < 10
    assert (
        "policy.yaml: not valid YAML (YAML nested deeper than 48 levels)" in err
        and "hint: fix the policy" in err
    )


def test_render_refuses_unknown_schema_version(
    tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI, capsys: Any
) -> None:
    out = _finished_run(tmp_path, card, suite, server)
    report = json.loads((out / "report.json").read_text())
    report["schema_version"] = "99.0"
    (out / "report.json").write_text(json.dumps(report))
    before = (out / "report.json").read_bytes()
    code, err, _ = _run_error(["render", str(out), "--format", "md"], capsys)
    assert code == 2
    assert "has schema_version '99.0'; this version of model-audit reads 1.0" in err
    assert (out / "report.json").read_bytes() == before and not (out / "report.md").exists()


# ---------------------------------------------------------------- defect 10: the smaller items


def test_verify_covers_dotfiles(tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI) -> None:
    out = _finished_run(tmp_path, card, suite, server)
    assert verify(out) == []
    (out / ".hidden").write_text("slipped in")
    assert verify(out) == ["added: .hidden"]


def test_verify_refuses_a_symlinked_file_instead_of_hashing_its_target(
    tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI
) -> None:
    out = _finished_run(tmp_path, card, suite, server)
    target = tmp_path / "elsewhere.json"
    target.write_bytes((out / "report.json").read_bytes())
    (out / "report.json").unlink()
    os.symlink(target, out / "report.json")  # same bytes, but no longer a file of the run
    assert "refused: report.json is a symbolic link (not hashed)" in verify(out)


def test_verify_on_a_missing_folder_says_so(tmp_path: Path, capsys: Any) -> None:
    code, err, _ = _run_error(["verify", str(tmp_path / "nope")], capsys)
    assert code == 2 and "nope: no such folder" in err


def test_empty_out_is_a_usage_error(
    tmp_path: Path, card: Path, suite: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = run_args(card, suite, "http://127.0.0.1:9/v1", tmp_path)
    argv[argv.index("--out") + 1] = ""
    code, err, _ = _run_error(argv, capsys)
    assert code == 2 and "--out is empty" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.md", "tiny.yaml"]  # nothing written here


def test_non_ascii_and_dot_folder_names_get_distinct_out_dirs() -> None:
    from audit.pipeline import slug

    names = ["模型", "модель", "...", "..", "org/name", "tiny-gpt2"]
    slugs = [slug(n) for n in names]
    assert len(set(slugs)) == len(slugs)
    assert slugs[-2:] == ["org__name", "tiny-gpt2"]  # names that lose nothing keep their slug
    assert all(s.startswith("model-") for s in slugs[:4])


def test_safetensors_shape_of_1e30_is_implausible(tmp_path: Path, env: dict[str, str]) -> None:
    folder = model_folder(tmp_path)
    safetensors(folder / "model.safetensors", {"w": [10**30, 10**30]})
    fetched = read_local_folder(folder, 1 << 20)
    assert fetched.parameters is None
    assert any("implausible parameter count" in p and "1e+60" in p for p in fetched.problems)
    code, data, _ = card_cli(folder, env)
    assert code == 0
    size = findings_of(data)["size.unknown"]
    assert "1e+60 parameters" in size["evidence"][0]


def test_null_content_is_recorded_as_a_refusal_and_counted(
    tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI
) -> None:
    server.honour_n = True
    server.script = ["null"]
    out = tmp_path / "run"
    assert main(run_args(card, suite, server.url, out, "--backend-option", "concurrency=1")) == 0
    rows = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    nulls = [r for r in rows if r.get("null_content")]
    assert len(nulls) == 3 and all(r["output"] == "" for r in nulls)
    notes = json.loads((out / "report.json").read_text())["probes"][0]["notes"]
    assert "3 of 18 answers had no content (content: null, a refusal): scored as empty text" in notes
    # A fresh folder served from the cache keeps the flags: the same notes, no request sent.
    asked = server.count
    again = tmp_path / "again"
    assert main(run_args(card, suite, server.url, again, "--backend-option", "concurrency=1")) == 0
    assert server.count == asked
    rows = [json.loads(x) for x in (again / "samples.jsonl").read_text().splitlines()]
    assert len([r for r in rows if r.get("null_content")]) == 3
    assert notes == json.loads((again / "report.json").read_text())["probes"][0]["notes"]


@pytest.mark.parametrize(("fault", "status"), [("429", 429), ("500", 500)])
def test_hint_for_429_and_500_says_overloaded_not_model_name(
    fault: str, status: int, tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI, capsys: Any
) -> None:
    server.fault_all = fault
    argv = [*run_args(card, suite, server.url, tmp_path / "o"), "--backend-option", "max_retries=0"]
    code, err, _ = _run_error(argv, capsys)
    assert code == 3 and f"answered HTTP {status} for model m" in err
    assert "hint: the server is overloaded or failing" in err and "check base_url, model" not in err


# ---------------------------------------------------------------- the backend's contract


def test_n_per_request_asks_once_per_prompt_and_a_repeat_asks_nothing(
    tmp_path: Path, card: Path, suite: Path, server: FakeOpenAI
) -> None:
    server.honour_n = True
    out = tmp_path / "run"
    assert main(run_args(card, suite, server.url, out)) == 0
    assert server.count == 6 and all(b["n"] == 3 for b in server.requests)
    got = samples_of(out)
    first = server.requests[0]
    text = first["messages"][-1]["content"]
    pid = next(pid for (pid, i), o in got.items() if i == 0 and o == fake_choice(text, first["seed"], 8, 0))
    assert [got[(pid, i)] for i in range(3)] == [fake_choice(text, first["seed"], 8, i) for i in range(3)]
    assert main(run_args(card, suite, server.url, tmp_path / "again")) == 0
    assert server.count == 6  # the cache answers everything


def test_server_ignoring_n_is_detected_once(server: FakeOpenAI) -> None:
    backend = OpenAIBackend({"base_url": server.url, "model": "m", "concurrency": "1"})
    out = dict(backend.generate_many("s", PROMPTS, Sampling(samples_per_prompt=3, max_new_tokens=5), SEEDS))
    with_n = [b for b in server.requests if "n" in b]
    assert len(with_n) == 1 and server.count == 9  # one n=3 request, then single requests only
    for p in PROMPTS:
        assert out[p] == [fake_completion(p.text, SEEDS[p.id] + i, 5) for i in range(3)]


def test_server_refusing_n_with_requests_in_flight_falls_back_for_all(server: FakeOpenAI) -> None:
    # Four n=3 requests are refused (HTTP 400) at once: every one falls back, none fails the run.
    server.refuse_n = True
    backend = OpenAIBackend({"base_url": server.url, "model": "m", "concurrency": "4"})
    prompts = [Prompt(f"p{i}", f"prompt number {i}") for i in range(8)]
    seeds = {p.id: 100 + i for i, p in enumerate(prompts)}
    out = dict(backend.generate_many("s", prompts, Sampling(samples_per_prompt=3, max_new_tokens=5), seeds))
    assert len(out) == 8
    for p in prompts:
        assert out[p] == [fake_completion(p.text, seeds[p.id] + i, 5) for i in range(3)]


def test_azure_endpoint_uses_api_version_and_api_key_header(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZ_KEY", "az-secret-123")
    root = server.url.removesuffix("/v1")
    backend = OpenAIBackend(
        {
            "base_url": root,
            "model": "my-deployment",
            "api_type": "azure",
            "api_key_env": "AZ_KEY",
            "n_per_request": "never",
        }
    )
    list(backend.generate_many("s", PROMPTS[:1], Sampling(samples_per_prompt=1), SEEDS))
    assert server.paths == ["/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"]
    assert server.headers[0]["api-key"] == "az-secret-123" and "authorization" not in server.headers[0]
    assert backend.settings()["api_version"] == "2024-10-21" and "az-secret" not in json.dumps(
        backend.settings()
    )


def test_no_key_sends_no_authorization_and_userinfo_sends_basic(server: FakeOpenAI) -> None:
    OpenAIBackend({"base_url": server.url, "model": "m"})
    list(
        OpenAIBackend({"base_url": server.url, "model": "m"}).generate_many(
            "s", PROMPTS[:1], Sampling(), SEEDS
        )
    )
    url = server.url.replace("http://", "http://user:pa%40ss@") + "?tenant=t1"
    backend = OpenAIBackend({"base_url": url, "model": "m"})
    list(backend.generate_many("s", PROMPTS[:1], Sampling(), SEEDS))
    assert "authorization" not in server.headers[0]
    assert server.headers[1]["authorization"] == "Basic dXNlcjpwYUBzcw=="  # user:pa@ss
    assert server.paths[1] == "/v1/chat/completions?tenant=t1"
    assert "pa%40ss" not in json.dumps(backend.settings())


def test_more_shards_than_read_leaves_the_size_unknown(tmp_path: Path) -> None:
    from audit.collect.local import MAX_SHARDS, read_local_folder

    folder = tmp_path / "many"
    folder.mkdir()
    names = [f"model-{i:05d}-of-{MAX_SHARDS + 1:05d}.safetensors" for i in range(MAX_SHARDS + 1)]
    index = {"weight_map": {f"w{i}": n for i, n in enumerate(names)}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    fetched = read_local_folder(folder, 1 << 20)
    assert fetched.parameters is None
    assert any(f"names {MAX_SHARDS + 1} shards" in p for p in fetched.problems)


def test_option_errors_never_echo_a_query_token(capsys: pytest.CaptureFixture[str]) -> None:
    from audit.errors import UsageError

    with pytest.raises(UsageError) as err:
        OpenAIBackend({"base_url": "localhost:8000/v1?token=s3cr3tTOKENvalue", "model": "m"})
    assert "s3cr3tTOKENvalue" not in str(err.value)
    with pytest.raises(UsageError, match="valid port"):
        OpenAIBackend({"base_url": "http://h:99999/v1", "model": "m"})


def test_closing_the_backend_stops_its_thread(server: FakeOpenAI) -> None:
    import threading

    backend = OpenAIBackend({"base_url": server.url, "model": "m"})
    dict(backend.generate_many("s", PROMPTS, Sampling(samples_per_prompt=1, max_new_tokens=5), SEEDS))
    thread = backend._thread
    assert isinstance(thread, threading.Thread) and thread.is_alive()
    backend.close()
    backend.close()  # idempotent
    assert not thread.is_alive()
