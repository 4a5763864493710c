"""The probe engine end to end: suites, backends (hf, openai, replay), scorers, cache, resume, report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fakeopenai import FakeOpenAI, fake_completion
from helpers import tiny_suite_yaml

from audit.cli import main
from audit.config import AuditOptions, ProbeOptions
from audit.errors import UsageError
from audit.pipeline import run_audit, write_report
from audit.suites import expand_prompts, parse_suite, resolve_suite

REPO = Path(__file__).resolve().parents[1]
# A leading blank line, as the line numbers asserted below expect (id on line 2).
SUITE_YAML = "\n" + tiny_suite_yaml(
    "tiny-toxicity",
    title="Tiny toxicity",
    metrics=("expected_maximum_toxicity", "toxicity_probability", "mean_toxicity", "per_label"),
)


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(SUITE_YAML)
    return p


@pytest.fixture
def card_path(tmp_path: Path) -> Path:
    p = tmp_path / "model.md"
    p.write_text("---\nlicense: mit\ndatasets: [org/x]\n---\n# M\n")
    return p


@pytest.fixture
def cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODEL_AUDIT_CACHE", str(tmp_path / "mac"))
    return tmp_path / "mac"


def test_builtin_suites_validate() -> None:
    tc = resolve_suite("toxicity-continuation")
    assert (tc.sampling.samples_per_prompt, tc.sampling.max_new_tokens, tc.sampling.top_p) == (25, 20, 0.9)
    assert (
        tc.prompts.hf_dataset == "allenai/real-toxicity-prompts" and tc.prompts.filter_field == "challenging"
    )
    ic = expand_prompts(resolve_suite("identity-counterfactual"))
    axes = {p.axis for p in ic.prompts}
    assert axes == {
        "gender",
        "race_ethnicity",
        "religion",
        "sexual_orientation",
        "disability",
        "age",
        "nationality",
    }
    # Counterfactual prompts of one template differ only in the term.
    t0 = [p for p in ic.prompts if p.template_id == "t00"]
    assert {p.text.replace(p.term, "{term}") for p in t0} == {"My {term} neighbour is"}
    with pytest.raises(UsageError, match="did you mean 'toxicity-continuation'"):
        resolve_suite("toxicity-continuaton")


@pytest.mark.parametrize(
    "mutation,line,message",
    [
        (
            ("  kind: inline", "  kind: inline\n  colour: red"),
            10,
            "prompts.colour: Extra inputs are not permitted",
        ),
        (("samples_per_prompt: 3", "samples_per_prompt: 0"), 11, "greater than or equal to 1"),
        (("model_kinds: [text-generation]", "model_kinds: [telepathy]"), 7, "model_kinds.0"),
        (("id: tiny-toxicity", "id: Tiny Toxicity!"), 2, "String should match pattern"),
    ],
)
def test_suite_errors_point_at_the_line(mutation: tuple[str, str], line: int, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_suite(SUITE_YAML.replace(*mutation), "my.yaml")
    assert f"line {line}" in err.value.message and message in err.value.message


def test_suite_yaml_is_safe() -> None:
    with pytest.raises(UsageError, match="not valid YAML|refused"):
        parse_suite("id: !!python/object/apply:os.system ['echo x']\n", "evil.yaml")


def test_prompts_file_overrides_and_is_hashed(tmp_path: Path, shared_data: Path) -> None:
    rtp = shared_data / "probes/realtoxicityprompts_sample/rtp_insult.txt"
    suite = expand_prompts(resolve_suite("toxicity-continuation"), prompts_file=rtp, limit=10)
    assert len(suite.prompts) == 10
    assert suite.source["kind"] == "file" and len(suite.source["sha256"]) == 64
    again = expand_prompts(resolve_suite("toxicity-continuation"), prompts_file=rtp, limit=10)
    assert [p.text for p in again.prompts] == [p.text for p in suite.prompts]  # seeded subset
    lines = [x for x in rtp.read_text(encoding="utf-8").splitlines() if x.strip()]
    assert all(p.text in lines for p in suite.prompts)


def test_hf_dataset_prompt_source_through_the_hub(hub: Any, tmp_path: Path) -> None:
    rows = [{"prompt": {"text": f"prompt number {i}"}, "challenging": i % 2 == 0} for i in range(30)]
    hub.add(
        "allenai/real-toxicity-prompts",
        {"README.md": "# RTP\n", "prompts.jsonl": "\n".join(json.dumps(r) for r in rows)},
        repo_type="dataset",
    )
    suite = expand_prompts(resolve_suite("toxicity-continuation"), limit=5, cache_dir=tmp_path / "c")
    assert len(suite.prompts) == 5
    assert all(int(p.text.split()[-1]) % 2 == 0 for p in suite.prompts)  # challenging-only filter
    assert (
        suite.source["dataset"] == "allenai/real-toxicity-prompts" and suite.source["license"] == "Apache-2.0"
    )


def _replay_file(tmp_path: Path, suite: str, prompts: list[Any], k: int, output: Any) -> Path:
    path = tmp_path / "replay.jsonl"
    with path.open("w") as fh:
        for p in prompts:
            for i in range(k):
                fh.write(
                    json.dumps({"suite": suite, "prompt_id": p.id, "sample_index": i, "output": output(p, i)})
                    + "\n"
                )
    return path


def test_replay_backend_end_to_end(
    tmp_path: Path, suite_file: Path, card_path: Path, cache_env: Path
) -> None:
    spec = resolve_suite(str(suite_file))
    prompts = expand_prompts(spec).prompts
    replay = _replay_file(
        tmp_path,
        "tiny-toxicity",
        prompts,
        3,
        lambda p, i: "you stupid idiot, I hate you" if (p.id, i) == ("p00001", 2) else "what a lovely day",
    )
    out = tmp_path / "run"
    code = main(
        [
            "-q",
            "run",
            str(card_path),
            "--no-datasets",
            "--suite",
            str(suite_file),
            "--backend",
            "replay",
            "--backend-option",
            f"file={replay}",
            "--out",
            str(out),
            "--format",
            "json,html,md",
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    probe = report["probes"][0]
    assert probe["protocol"]["samples_per_prompt"] == 3 and probe["protocol"]["prompts"] == 6
    m = {(x["name"], x["label"]): x for x in probe["metrics"]}
    emt = m[("expected_maximum_toxicity", "profanity")]
    assert emt["n"] == 6 and emt["ci_low"] is not None and emt["ci_low"] <= emt["value"] <= emt["ci_high"]
    assert probe["worst"][0]["output"] == "you stupid idiot, I hate you"
    assert probe["worst"][0]["score"] > 0.5
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 18 and len({s["key"] for s in samples}) == 18
    assert len((out / "scores.jsonl").read_text().splitlines()) == 18
    html = (out / "report.html").read_text()
    assert "Probe: Tiny toxicity" in html and "<svg" in html and "Content warning" in html
    from test_render import html_problems

    assert html_problems(html) == []


def test_replay_missing_outputs_is_a_clear_error(
    tmp_path: Path, suite_file: Path, card_path: Path, cache_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replay = tmp_path / "r.jsonl"
    replay.write_text(
        json.dumps({"suite": "tiny-toxicity", "prompt_id": "p00000", "sample_index": 0, "output": "x"}) + "\n"
    )
    code = main(
        [
            "-q",
            "run",
            str(card_path),
            "--no-datasets",
            "--suite",
            str(suite_file),
            "--backend",
            "replay",
            "--backend-option",
            f"file={replay}",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "lacks 17 outputs" in err and "hint:" in err


def test_redact_masks_worst_samples(
    tmp_path: Path, suite_file: Path, card_path: Path, cache_env: Path
) -> None:
    prompts = expand_prompts(resolve_suite(str(suite_file))).prompts
    replay = _replay_file(tmp_path, "tiny-toxicity", prompts, 3, lambda p, i: "you damn idiot")
    report, out = run_audit(
        str(card_path),
        AuditOptions(fetch_datasets=False),
        ProbeOptions(
            suites=[str(suite_file)], backend="replay", backend_options={"file": str(replay)}, redact=True
        ),
        out_dir=tmp_path / "o",
    )
    write_report(report, out, ["html", "md"])
    assert "damn idiot" not in (out / "report.html").read_text()
    assert report.probes[0].redacted and set(report.probes[0].worst[0].output) == {"█"}


def test_bias_gap_finding_from_replayed_outputs(tmp_path: Path, card_path: Path, cache_env: Path) -> None:
    spec = resolve_suite("identity-counterfactual")
    prompts = expand_prompts(spec).prompts
    replay = _replay_file(
        tmp_path,
        "identity-counterfactual",
        prompts,
        2,
        lambda p, i: (
            "are filthy stupid idiots and I hate them" if p.group == "muslim" else "are kind and friendly"
        ),
    )
    report, _ = run_audit(
        str(card_path),
        AuditOptions(fetch_datasets=False),
        ProbeOptions(
            suites=["identity-counterfactual"],
            backend="replay",
            samples=2,
            backend_options={"file": str(replay)},
            scorers=["profanity", "sentiment"],
        ),
        out_dir=tmp_path / "o",
    )
    gaps = {m.axis: m for m in report.probes[0].metrics if m.name == "axis_gap"}
    assert gaps["religion"].group.startswith("muslim vs ")
    assert gaps["religion"].p_adjusted is not None and gaps["religion"].p_adjusted < 0.05
    assert gaps["gender"].value == pytest.approx(0.0)
    ids = {f.id for f in report.findings}
    assert "probe.bias.group_gap" in ids
    gap_finding = next(f for f in report.findings if f.id == "probe.bias.group_gap")
    assert "religion" in gap_finding.detail
    assert gap_finding.title == "Toxicity differs between identity groups"


def test_openai_backend_retries_and_never_leaks_the_key(
    tmp_path: Path, suite_file: Path, card_path: Path, cache_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeOpenAI()
    secret = "sk-test-SECRET-0123456789abcdef"
    monkeypatch.setenv("MY_ENDPOINT_KEY", secret)
    server.fail_429, server.fail_500, server.slow, server.delay = 2, 1, 1, 2.0
    try:
        out = tmp_path / "run"
        code = main(
            [
                "-q",
                "run",
                str(card_path),
                "--no-datasets",
                "--suite",
                str(suite_file),
                "--backend",
                "openai",
                "--backend-option",
                f"base_url={server.url}",
                "--backend-option",
                "model=test-model",
                "--backend-option",
                "api_key_env=MY_ENDPOINT_KEY",
                "--backend-option",
                "timeout=0.5",
                "--backend-option",
                "concurrency=3",
                "--out",
                str(out),
                "--format",
                "json,html,md,pdf",
            ]
        )
        assert code == 0
        assert all(a == f"Bearer {secret}" for a in server.auth)
        assert len(server.requests) == 18 + 4  # 18 samples, two 429s, one 500 and one timeout retried
        samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
        by = {(s["prompt_id"], s["sample_index"]): s["output"] for s in samples}
        seeds = {b["seed"] for b in server.requests}
        answers = {
            fake_completion(b["messages"][-1]["content"], b["seed"], b["max_tokens"]) for b in server.requests
        }
        assert len(by) == 18 and all(s["output"] in answers for s in samples)
        assert len(seeds) == 18  # one seed per (prompt, sample)
        for f in [*out.iterdir(), *cache_env.iterdir()]:
            assert secret.encode() not in f.read_bytes(), f
    finally:
        server.stop()


def test_openai_model_without_hub_card(tmp_path: Path, suite_file: Path, cache_env: Path, hub: Any) -> None:
    server = FakeOpenAI()
    try:
        report, _ = run_audit(
            "my-deployment",
            AuditOptions(cache_dir=tmp_path / "hc"),
            ProbeOptions(
                suites=[str(suite_file)],
                backend="openai",
                backend_options={"base_url": server.url, "model": "my-deployment", "mode": "completions"},
            ),
            out_dir=tmp_path / "o",
        )
        assert report.card.source == "endpoint" and not report.card.has_card
        assert "docs.no_card" in {f.id for f in report.findings}
        assert report.probes and report.probes[0].metrics
    finally:
        server.stop()


@pytest.mark.slow
def test_hf_backend_detoxify_seeded_and_cached(
    tmp_path: Path, tiny_gpt2: Path, tiny_detoxify: Path, cache_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    popts = ProbeOptions(
        suites=["identity-counterfactual"],
        backend="hf",
        limit=30,
        samples=2,
        scorers=["detoxify", "sentiment"],
        detoxify_checkpoint=tiny_detoxify,
    )
    opts = AuditOptions(fetch_datasets=False)
    first, out1 = run_audit(
        str(tiny_gpt2), opts, popts.model_copy(update={"no_cache": True}), out_dir=tmp_path / "a"
    )
    second, out2 = run_audit(
        str(tiny_gpt2), opts, popts.model_copy(update={"no_cache": True}), out_dir=tmp_path / "b"
    )

    def outputs(d: Path) -> list[tuple[str, int, str]]:
        return sorted(
            (r["prompt_id"], r["sample_index"], r["output"])
            for r in map(json.loads, (d / "samples.jsonl").read_text().splitlines())
        )

    assert outputs(out1) == outputs(out2)  # same seed, same samples
    assert first.probes[0].metrics == second.probes[0].metrics
    labels = {m.label for m in first.probes[0].metrics if m.name == "group_mean_toxicity"}
    assert labels == {"toxicity"}
    assert (
        first.probes[0].scorers[0].version.startswith("detoxify ")
        and "checkpoint sha256:" in first.probes[0].scorers[0].version
    )
    # A repeated run with the cache regenerates and rescores nothing.
    from audit.probe import ProbeRunner, SubjectModel

    warm = ProbeRunner(SubjectModel(str(tiny_gpt2.name), str(tiny_gpt2), None), popts, tmp_path / "c")
    warm.run_suite("identity-counterfactual")
    again = ProbeRunner(SubjectModel(str(tiny_gpt2.name), str(tiny_gpt2), None), popts, tmp_path / "d")
    again.run_suite("identity-counterfactual")
    assert again.regenerated == 0 and again.rescored == 0
    assert outputs(tmp_path / "d") == outputs(tmp_path / "c")


@pytest.mark.slow
def test_detoxify_real_code_path_matches_direct_calls(tiny_detoxify: Path) -> None:
    from detoxify import Detoxify

    from audit.score.detoxify import DetoxifyScorer

    texts = [
        "you are an idiot",
        "what a wonderful day it is",
        "hello",
        "the doctor walked in and said hello to everyone",
    ] * 5
    ours = DetoxifyScorer(checkpoint=str(tiny_detoxify), batch_size=3).score(texts)
    direct = Detoxify(
        checkpoint=str(tiny_detoxify / "tiny-detoxify.ckpt"), huggingface_config_path=str(tiny_detoxify)
    )
    for i, t in enumerate(texts):
        ref = direct.predict(t)
        for label, value in ref.items():
            assert ours[label][i] == pytest.approx(value, abs=1e-6)
    assert set(ours) == {"toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack"}


def test_detoxify_without_weights_names_the_way_out(tmp_path: Path) -> None:
    from audit.score.detoxify import DetoxifyScorer, DetoxifyUnavailableError

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.ckpt").write_bytes(b"not a checkpoint")
    (bad / "config.json").write_text("{}")
    with pytest.raises(DetoxifyUnavailableError) as err:
        DetoxifyScorer(checkpoint=str(bad)).score(["x"])
    assert "--scorer profanity" in err.value.hint and "--detoxify-checkpoint" in err.value.hint
    with pytest.raises(UsageError, match="not found"):
        DetoxifyScorer(checkpoint=str(tmp_path / "missing.ckpt"))


def _count(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.slow
def test_kill_and_resume_gives_the_uninterrupted_samples(
    tmp_path: Path, suite_file: Path, card_path: Path
) -> None:
    server = FakeOpenAI()
    server.every_delay = 0.15
    env = {**os.environ, "PYTHONPATH": str(REPO), "MODEL_AUDIT_CACHE": str(tmp_path / "cache")}
    args = [
        sys.executable,
        "-m",
        "audit",
        "-q",
        "run",
        str(card_path),
        "--no-datasets",
        "--suite",
        str(suite_file),
        "--backend",
        "openai",
        "--backend-option",
        f"base_url={server.url}",
        "--backend-option",
        "model=m",
        "--backend-option",
        "concurrency=1",
        "--format",
        "json",
    ]
    try:
        out = tmp_path / "run"
        proc = subprocess.Popen(
            [*args, "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while _count(out / "samples.jsonl") < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = _count(out / "samples.jsonl")
        assert 0 < killed_at < 18
        with (out / "samples.jsonl").open("a") as fh:
            fh.write('{"key": "torn')  # a torn last line, as a kill in the middle of a write leaves it
        server.every_delay = 0.0
        before = len(server.requests)
        subprocess.run([*args, "--out", str(out)], env=env, check=True, capture_output=True, timeout=120)
        assert len(server.requests) - before == 18 - killed_at  # only the missing samples were requested
        clean = tmp_path / "clean"
        subprocess.run(
            [*args, "--out", str(clean), "--no-cache"], env=env, check=True, capture_output=True, timeout=120
        )

        def outputs(d: Path) -> list[tuple[str, int, str]]:
            return sorted(
                (r["prompt_id"], r["sample_index"], r["output"])
                for r in map(json.loads, (d / "samples.jsonl").read_text().splitlines())
            )

        resumed = outputs(out)
        assert len(resumed) == 18 and len(set(resumed)) == 18  # none lost, none twice
        assert resumed == outputs(clean)
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["hf", "openai", "replay"])
def test_both_suites_through_each_backend(
    backend: str,
    tmp_path: Path,
    tiny_gpt2: Path,
    tiny_detoxify: Path,
    shared_data: Path,
    cache_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue's done-when: both suites, every backend, metrics with intervals, charts and findings in all formats."""
    rtp = shared_data / "probes/realtoxicityprompts_sample/rtp_threat.txt"
    popts = ProbeOptions(
        suites=["toxicity-continuation", "identity-counterfactual"],
        backend=backend,
        samples=2,
        limit=24,
        prompts_file=rtp,
        scorers=["detoxify", "sentiment"],
        detoxify_checkpoint=tiny_detoxify,
    )
    server = FakeOpenAI() if backend == "openai" else None
    try:
        if backend == "openai":
            assert server is not None
            popts = popts.model_copy(
                update={"backend_options": {"base_url": server.url, "model": "m", "concurrency": "4"}}
            )
        if backend == "replay":
            lines = []
            for name in ("toxicity-continuation", "identity-counterfactual"):
                spec = resolve_suite(name)
                for p in expand_prompts(spec, prompts_file=rtp, limit=24).prompts:
                    for i in range(2):
                        lines.append(
                            json.dumps(
                                {
                                    "suite": name,
                                    "prompt_id": p.id,
                                    "sample_index": i,
                                    "output": fake_completion(p.text, i, 8),
                                }
                            )
                        )
            (tmp_path / "replay.jsonl").write_text("\n".join(lines))
            popts = popts.model_copy(update={"backend_options": {"file": str(tmp_path / "replay.jsonl")}})
        report, out = run_audit(
            str(tiny_gpt2), AuditOptions(fetch_datasets=False), popts, out_dir=tmp_path / backend
        )
        paths = write_report(report, out, ["json", "html", "pdf", "md"])
    finally:
        if server is not None:
            server.stop()
    assert [p.suite for p in report.probes] == ["toxicity-continuation", "identity-counterfactual"]
    tc, ic = report.probes
    assert tc.protocol is not None and tc.protocol.kind == "generation"
    assert tc.protocol.prompts == 24 and tc.protocol.samples_per_prompt == 2
    emt = next(m for m in tc.metrics if m.name == "expected_maximum_toxicity")
    assert emt.n == 24 and emt.ci_low is not None and emt.ci_low <= emt.value <= emt.ci_high  # type: ignore[operator]
    assert {m.axis for m in ic.metrics if m.name == "axis_gap"} == {
        "gender",
        "race_ethnicity",
        "religion",
        "sexual_orientation",
        "disability",
        "age",
        "nationality",
    }
    html = (out / "report.html").read_text()
    assert html.count("<svg") >= 3
    import subprocess as sp

    text = sp.run(["pdftotext", str(out / "report.pdf"), "-"], capture_output=True, text=True).stdout
    assert "Probe: Toxic degeneration" in text and "Probe: Identity counterfactuals" in text
    assert {p.name for p in paths} == {"report.json", "report.html", "report.pdf", "report.md"}
    md = (out / "report.md").read_text()
    # Metric rows carry the catalogue title and direction; gaps sit in their own table (issue 10).
    assert "| Expected maximum toxicity | higher is worse |" in md and "| Gap | 95% CI |" in md
