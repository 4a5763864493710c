"""`model-audit shortlist`: search, audit each candidate, rank by risk, disqualify with reasons, reuse."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fakehub import FakeHub, add_catalog_dataset, add_catalog_model, generate_catalog

from audit.cli import main
from audit.executors import CandidateJob, audit_candidate
from audit.shortlist import Filters, evaluate, parse_count, parse_license_classes


def _resolve_gets(hub: FakeHub) -> set[str]:
    """Model repos whose files were downloaded (GET .../resolve/...)."""
    out = set()
    for method, path, _ in hub.requests:
        if method == "GET" and "/resolve/" in path and not path.startswith("/datasets/"):
            out.add(path.split("/resolve/")[0].lstrip("/"))
    return out


def _designed(hub: FakeHub) -> None:
    """Three permissive candidates whose risk order is clear, and two that the filters disqualify."""
    add_catalog_dataset(hub, "data/documented", license="cc-by-4.0", documented=True)
    # safest: every section, one fully documented dataset
    add_catalog_model(hub, "design/alpha", datasets=("data/documented",), sections=6, downloads=10)
    # three sections missing (training data, evaluation: medium; citation: info)
    add_catalog_model(hub, "design/bravo", datasets=("data/documented",), sections=3, downloads=30)
    # no section, no dataset declared: data.undisclosed (high) and more
    add_catalog_model(hub, "design/charlie", sections=0, downloads=20)
    add_catalog_model(hub, "design/delta", license="cc-by-nc-4.0", downloads=40)  # noncommercial
    add_catalog_model(hub, "design/echo", params=70_000_000_000, downloads=50)  # too large
    add_catalog_model(hub, "design/gated", downloads=60, gated=True)
    add_catalog_model(hub, "design/other-task", task="summarization", downloads=70)


def test_shortlist_ranks_disqualifies_and_reuses(hub: FakeHub, tmp_path: Path, capsys: Any) -> None:
    _designed(hub)
    out = tmp_path / "sl"
    argv = [
        "shortlist",
        "--task",
        "text-classification",
        "--license-class",
        "permissive",
        "--max-params",
        "7B",
        "--limit",
        "50",
        "--out",
        str(out),
        "--workers",
        "4",
        "--cache-dir",
        str(tmp_path / "hf"),
    ]
    assert main(argv) == 0
    # the search sent what list_models sends: pipeline tag, sort, limit and the fields asked for
    params = dict(hub.searches[0])
    assert params["pipeline_tag"] == "text-classification" and params["sort"] == "downloads"
    assert params["limit"] == "50" and ("expand", "sha") in hub.searches[0]
    data = json.loads((out / "shortlist.json").read_text())
    assert [r["candidate"] for r in data["ranked"]] == ["design/alpha", "design/bravo", "design/charlie"]
    assert [r["rank"] for r in data["ranked"]] == [1, 2, 3]
    alpha, bravo, charlie = data["ranked"]
    assert alpha["datasets_declared"] == 1 and alpha["datasets_documented"] == 1
    assert charlie["findings"]["high"] > alpha["findings"]["high"]
    assert bravo["findings"]["medium"] > alpha["findings"]["medium"]
    reasons = {r["candidate"]: r["reasons"] for r in data["disqualified"]}
    assert reasons == {
        "design/delta": [
            "licence class noncommercial (wanted permissive)",
            # the default profile (internal use is commercial) makes this finding critical
            "critical finding license.noncommercial: The licence forbids commercial use",
        ],
        "design/echo": ["70.0B parameters (at most 7.0B wanted)"],
    }
    failed = {r["candidate"]: r["reason"] for r in data["failed"]}
    assert list(failed) == ["design/gated"] and "gated" in failed["design/gated"]
    assert "design/other-task" not in json.dumps(data)  # not a text-classification model
    for name in ("shortlist.html", "shortlist.pdf", "shortlist.md"):
        assert (out / name).stat().st_size > 500
    html = (out / "shortlist.html").read_text()
    assert "design/alpha" in html and "licence class noncommercial" in html and "is gated" in html
    md = (out / "shortlist.md").read_text()
    assert "| 1 | design/alpha |" in md
    text = subprocess.run(["pdftotext", str(out / "shortlist.pdf"), "-"], capture_output=True, text=True)
    if text.returncode == 0:
        assert "design/charlie" in text.stdout and "Disqualified" in text.stdout
    for name in ("alpha", "bravo", "charlie", "delta", "echo"):  # each candidate in its own run folder
        assert (out / "candidates" / f"design__{name}" / "report.json").is_file()

    # Re-run after two candidates got new commits: only those two are fetched again.
    for rid in ("design/bravo", "design/delta"):
        repo = hub.get("model", rid)
        assert repo is not None
        files = dict(repo.commits[repo.refs["main"]])
        files["README.md"] = files["README.md"] + b"\nUpdated.\n"
        repo.commit(files)
    hub.requests.clear()
    err = capsys.readouterr().err  # not a terminal: one log line per finished candidate
    assert sum(f"[{i}/6] " in err for i in range(1, 7)) == 6
    assert err.count(" audited design/") == 5 and err.count(" failed design/gated") == 1
    assert main(argv[:-4] + ["--format", "json", "--cache-dir", str(tmp_path / "hf")]) == 0
    assert _resolve_gets(hub) == {"design/bravo", "design/delta"}
    api = {p for m, p, _ in hub.requests if p.startswith("/api/models/")}
    assert api <= {"/api/models/design/bravo", "/api/models/design/delta", "/api/models/design/gated"}
    again = json.loads((out / "shortlist.json").read_text())
    assert again["reused"] == 3 and again["audited"] == 2
    assert [r["candidate"] for r in again["ranked"]] == ["design/alpha", "design/bravo", "design/charlie"]
    assert "3 reused" in capsys.readouterr().out


def test_issue_command_over_a_generated_catalog(hub: FakeHub, tmp_path: Path) -> None:
    """The command of the issue against a catalog with gated, missing and slow models: nothing aborts."""
    generate_catalog(hub, 90, slow_delay=0.05)
    out = tmp_path / "gen"
    argv = [
        "-q",
        "shortlist",
        "--task",
        "text-classification",
        "--license-class",
        "permissive",
        "--limit",
        "50",
    ]
    argv += ["--out", str(out), "--format", "json,md", "--cache-dir", str(tmp_path / "hf")]
    assert main(argv) == 0
    data = json.loads((out / "shortlist.json").read_text())
    listed = [
        r.repo_id
        for r in hub.repos.values()
        if r.repo_type == "model" and r.info.get("pipeline_tag") == "text-classification"
    ]
    assert data["candidates"] == len(listed) > 5
    rows = data["ranked"] + data["disqualified"] + data["failed"]
    assert sorted(r["candidate"] for r in rows) == sorted(listed)
    assert all(r["license_class"] == "permissive" for r in data["ranked"])
    assert all(r["reasons"] for r in data["disqualified"])
    keys = [
        (sum(r["findings"][s] * 10 ** (4 - i) for i, s in enumerate(("critical", "high", "medium", "low"))))
        for r in data["ranked"]
    ]
    assert keys == sorted(keys)  # ranked by risk
    for r in data["failed"]:
        repo = hub.get("model", r["candidate"])
        assert repo is not None and (repo.gated or repo.missing), r
        assert r["reason"]


def test_profile_decides_what_is_critical(hub: FakeHub, tmp_path: Path) -> None:
    """A critical finding under the profile disqualifies, with the finding as the reason; another profile ranks it."""
    add_catalog_model(hub, "p/noncommercial", license="cc-by-nc-4.0")
    add_catalog_model(hub, "p/apache")
    base = ["-q", "shortlist", "p/noncommercial", "p/apache", "--format", "json", "--no-datasets"]
    assert main(base + ["--out", str(tmp_path / "internal")]) == 0
    data = json.loads((tmp_path / "internal" / "shortlist.json").read_text())
    assert data["profile"] == "internal"
    assert [r["candidate"] for r in data["ranked"]] == ["p/apache"]
    (row,) = data["disqualified"]
    assert row["reasons"] == ["critical finding license.noncommercial: The licence forbids commercial use"]
    assert main(base + ["--out", str(tmp_path / "research"), "--profile", "research"]) == 0
    data = json.loads((tmp_path / "research" / "shortlist.json").read_text())
    assert data["profile"] == "research" and not data["disqualified"]
    assert {r["candidate"] for r in data["ranked"]} == {"p/noncommercial", "p/apache"}


def test_evaluate_reads_critical_findings_from_the_reports(hub: FakeHub, tmp_path: Path) -> None:
    add_catalog_model(hub, "crit/model")
    job = CandidateJob(
        ref="crit/model",
        out_dir=str(tmp_path / "c"),
        options={"cache_dir": str(tmp_path / "hf"), "fetch_datasets": False},
        probe_options={"auto_suites": False},
        formats=("json",),
    )
    outcome = audit_candidate(job)
    assert outcome.status == "audited", outcome.reason
    path = tmp_path / "c" / "report.json"
    data = json.loads(path.read_text())
    data["findings"][0]["severity"] = "critical"
    path.write_text(json.dumps(data))
    result = evaluate([outcome], Filters(), tmp_path, {"candidates": 1})
    assert not result.ranked
    (row,) = result.disqualified
    first = data["findings"][0]
    assert row["reasons"] == [f"critical finding {first['id']}: {first['title']}"]


def test_rate_limit_is_honoured(hub: FakeHub, tmp_path: Path) -> None:
    """A 429 with Retry-After makes the candidate wait and retry, not fail."""
    add_catalog_model(hub, "busy/model", rate_limited=2, retry_after=1)
    job = CandidateJob(
        ref="busy/model",
        out_dir=str(tmp_path / "b"),
        options={"cache_dir": str(tmp_path / "hf"), "fetch_datasets": False},
        probe_options={"auto_suites": False},
        formats=("json",),
    )
    outcome = audit_candidate(job)
    assert outcome.status == "audited", outcome.reason
    assert outcome.attempts == 2 and outcome.seconds >= 1.0


def test_refs_file_and_arguments(hub: FakeHub, tmp_path: Path) -> None:
    add_catalog_model(hub, "f/one")
    add_catalog_model(hub, "f/two")
    models = tmp_path / "models.txt"
    models.write_text("# candidates\nf/one\n\nf/two  # second\nnot a ref!\n")
    out = tmp_path / "o"
    assert (
        main(["-q", "shortlist", "f/one", "--models", str(models), "--out", str(out), "--format", "json"])
        == 0
    )
    data = json.loads((out / "shortlist.json").read_text())
    assert data["candidates"] == 3 and not hub.searches  # no search when REFs are given
    assert [r["candidate"] for r in data["failed"]] == ["not a ref!"]
    assert {r["candidate"] for r in data["ranked"]} == {"f/one", "f/two"}


def test_usage_errors(capsys: Any) -> None:
    assert parse_count("7B") == 7_000_000_000 and parse_count("350M") == 350_000_000
    assert parse_count("1.5e9") == 1_500_000_000
    assert parse_license_classes("permissive, copyleft") == ("permissive", "copyleft")
    assert main(["shortlist", "x/y", "--license-class", "free"]) == 2
    assert "unknown licence class 'free'" in capsys.readouterr().err
    assert main(["shortlist", "x/y", "--max-params", "lots"]) == 2


def test_ray_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["shortlist", "x/y", "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert "needs Ray" in err and "model-risk-audit[scale]" in err


def test_fake_hub_search_pages_sorts_and_waits(hub: FakeHub) -> None:
    """The search endpoint as list_models uses it: Link-header pages, descending sort, filters, latency."""
    import time

    from audit.shortlist import search_candidates

    ids = generate_catalog(hub, 40, failures=False)
    hub.page_size = 3
    found = search_candidates(limit=10, sort="likes")
    assert len(found) == 10 and len(hub.searches) == 4  # pages of 3 followed through the Link header
    likes = {r.repo_id: r.info["likes"] for r in hub.repos.values() if r.repo_type == "model"}
    assert [c.ref for c in found] == sorted(ids, key=lambda i: (-likes[i], i))[:10]
    assert all(c.revision == hub.repos[("model", c.ref)].refs["main"] for c in found)
    de = search_candidates(language="de", library="peft", limit=100)
    for c in de:
        tags = hub.repos[("model", c.ref)].info["tags"]
        assert "de" in tags and "peft" in tags
    hub.latency = 0.2
    t0 = time.monotonic()
    search_candidates(limit=1)
    assert time.monotonic() - t0 >= 0.2


def test_a_candidate_is_reused_only_with_the_same_probe_options(tmp_path: Path) -> None:
    import json as _json

    from audit.config import AuditOptions, ProbeOptions
    from audit.executors import reusable
    from audit.pipeline import recorded_probe_options

    options = AuditOptions().model_dump(mode="json")
    first = ProbeOptions(suites=["toxicity-continuation"], samples=5, auto_suites=False)
    report = {
        "run": {
            "resolved_revision": "abc",
            "inputs": {"options": options, "probes": recorded_probe_options(first)},
        }
    }
    (tmp_path / "report.json").write_text(_json.dumps(report))
    assert reusable(tmp_path, "abc", options, first)
    assert not reusable(tmp_path, "abd", options, first)  # a new revision
    assert not reusable(tmp_path, "abc", options, first.model_copy(update={"samples": 25}))
    assert not reusable(tmp_path, "abc", options, first.model_copy(update={"scorers": ["profanity"]}))
    assert not reusable(tmp_path, "abc", options, first.model_copy(update={"backend": "openai"}))
