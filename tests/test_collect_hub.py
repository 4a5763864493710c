"""The Hub collector against the fake Hub: revisions, metadata, errors with hints, offline cache, concurrency."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fakehub import GOOD_TOKEN
from helpers import FULL_BODY, card

from audit.errors import (
    GatedRepoError,
    HubUnavailableError,
    OfflineCacheMissError,
    RepoNotFoundError,
    RevisionNotFoundError,
)
from audit.pipeline import audit_model

META = {
    "license": "mit",
    "datasets": ["org/d1"],
    "pipeline_tag": "text-generation",
    "library_name": "transformers",
    "base_model": "org/base",
}
CONFIG = {
    "model_type": "mistral",
    "architectures": ["MistralForCausalLM"],
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
    "intermediate_size": 14336,
    "max_position_embeddings": 32768,
    "sliding_window": 4096,
    "torch_dtype": "bfloat16",
}
INFO = {
    "downloads": 987,
    "likes": 65,
    "tags": ["text-generation", "custom-tag"],
    "safetensors": {"total": 7241732096, "parameters": {"BF16": 7241732096}},
    "library_name": "transformers",
    "pipeline_tag": "text-generation",
    "lastModified": "2026-09-30T08:00:00.000Z",
}


def add_model(hub: Any, **kw: Any) -> Any:
    files = {"README.md": card(META, FULL_BODY), "config.json": json.dumps(CONFIG), "model.safetensors": b"0"}
    return hub.add_model("org/model", files, info=INFO, **kw)


def test_hub_facts_field_by_field(hub: Any, options: Any) -> None:
    repo = add_model(hub)
    hub.add_model("org/base", {"README.md": card({"license": "apache-2.0"}, FULL_BODY)})
    hub.add_dataset(
        "org/d1",
        card({"license": ["cc-by-4.0"], "pretty_name": "D one", "task_categories": ["text-generation"]}),
    )
    r = audit_model("org/model", options)
    c = r.card
    assert c.source == "hub" and c.subject == "org/model"
    assert r.run.resolved_revision == c.resolved_revision == repo.refs["main"]
    assert c.licenses == ("mit",) and c.license_class == "permissive"
    assert c.datasets == ("org/d1",) and c.base_models == ("org/base",)
    assert c.pipeline_tag == "text-generation" and c.library_name == "transformers"
    assert c.hub is not None
    assert (c.hub.downloads, c.hub.likes, c.hub.gated) == (987, 65, None)
    assert c.hub.last_modified is not None and c.hub.last_modified.startswith("2026-09-30T08:00:00")
    assert "custom-tag" in c.tags
    assert c.files == ("README.md", "config.json", "model.safetensors")
    assert c.parameters == 7241732096 and c.parameters_source == "Hub safetensors metadata"
    a = c.architecture
    assert a is not None
    assert (a.model_type, a.context_length, a.num_layers, a.hidden_size, a.vocab_size) == (
        "mistral",
        32768,
        32,
        4096,
        32000,
    )
    assert a.attention == "grouped-query (32 query heads, 8 key-value heads), sliding window 4096"
    assert a.torch_dtype == "bfloat16"
    assert r.datasets[0].pretty_name == "D one" and r.datasets[0].licenses == ("cc-by-4.0",)
    assert r.base_models[0].licenses == ("apache-2.0",)


def test_revision_is_honoured_and_resolved(hub: Any, options: Any) -> None:
    repo = add_model(hub)
    old_sha = repo.refs["main"]
    new_sha = repo.commit({"README.md": card({**META, "license": "cc-by-nc-4.0"}, FULL_BODY)}, ref="main")
    repo.refs["v1.0"] = old_sha
    o = options.model_copy(update={"fetch_datasets": False, "follow_base_model": False})
    latest = audit_model("org/model", o)
    assert latest.run.resolved_revision == new_sha and latest.card.licenses == ("cc-by-nc-4.0",)
    tagged = audit_model("org/model@v1.0", o)
    assert tagged.run.resolved_revision == old_sha and tagged.card.licenses == ("mit",)
    assert tagged.subject.revision == "v1.0"
    by_sha = audit_model(f"org/model@{old_sha}", o)
    assert by_sha.card.licenses == ("mit",)
    assert any(p.endswith("/revision/v1.0") for _, p, _ in hub.requests)


def test_repo_not_found(hub: Any, options: Any) -> None:
    with pytest.raises(RepoNotFoundError) as err:
        audit_model("org/nope", options)
    assert "not found" in err.value.message and "HF_TOKEN" in err.value.hint


def test_bad_revision(hub: Any, options: Any) -> None:
    add_model(hub)
    with pytest.raises(RevisionNotFoundError) as err:
        audit_model("org/model@no-such-branch", options)
    assert "no-such-branch" in err.value.message


def test_gated_without_token_names_the_next_step(hub: Any, options: Any) -> None:
    add_model(hub, gated=True)
    with pytest.raises(GatedRepoError) as err:
        audit_model("org/model", options)
    assert "gated" in err.value.message
    assert "request access" in err.value.hint and "HF_TOKEN" in err.value.hint


def test_gated_with_token_works_and_token_never_reaches_the_report(
    hub: Any, options: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audit.pipeline import write_report

    monkeypatch.setenv("HF_TOKEN", GOOD_TOKEN)
    add_model(hub, gated=True)
    r = audit_model(
        "org/model", options.model_copy(update={"fetch_datasets": False, "follow_base_model": False})
    )
    assert r.card.hub is not None and r.card.hub.gated == "manual"
    assert any(auth for _, _, auth in hub.requests)
    paths = write_report(r, tmp_path / "out", ["json", "html", "md"])
    for p in paths:
        assert GOOD_TOKEN.encode() not in p.read_bytes()


def test_server_error_on_metadata_without_cache_is_a_clear_error(hub: Any, options: Any) -> None:
    add_model(hub, api_status=500)
    t0 = time.monotonic()
    with pytest.raises(HubUnavailableError) as err:
        audit_model("org/model", options)
    assert time.monotonic() - t0 < 5  # no 25-second retry loop
    assert "500" in err.value.message


def test_server_error_falls_back_to_the_cache(hub: Any, options: Any) -> None:
    repo = add_model(hub)
    o = options.model_copy(update={"fetch_datasets": False, "follow_base_model": False})
    first = audit_model("org/model", o)
    repo.api_status = 503
    second = audit_model("org/model", o)
    assert second.card.licenses == first.card.licenses
    assert second.card.hub is None and second.card.hub_error is not None and "503" in second.card.hub_error
    assert "provenance.hub_unavailable" in {f.id for f in second.findings}


def test_offline_with_empty_cache(hub: Any, options: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    add_model(hub)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineCacheMissError) as err:
        audit_model("org/model", options)
    assert "HF_HUB_OFFLINE" in err.value.hint
    assert hub.requests == []


def test_offline_with_filled_cache(hub: Any, options: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    add_model(hub)
    hub.add_model("org/base", {"README.md": card({"license": "apache-2.0"}, FULL_BODY)})
    hub.add_dataset("org/d1", card({"license": ["cc-by-4.0"]}))
    online = audit_model("org/model", options)
    hub.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = audit_model("org/model", options)
    assert hub.requests == []
    assert offline.card.licenses == online.card.licenses
    assert offline.card.architecture == online.card.architecture
    assert offline.datasets[0].licenses == ("cc-by-4.0",)
    assert offline.run.offline is True


def test_dataset_errors_are_findings_not_crashes(hub: Any, options: Any) -> None:
    meta = {**META, "datasets": ["org/slow", "org/broken", "org/gated", "not a valid id!", "{dataset_0}"]}
    hub.add_model("org/model", {"README.md": card(meta, FULL_BODY)})
    hub.add_dataset("org/slow", card({"license": "mit"}), delay=2.5)
    hub.add_dataset("org/broken", card({"license": "mit"}), status=500)
    hub.add_dataset("org/gated", card({"license": "mit"}), gated=True)
    t0 = time.monotonic()
    r = audit_model("org/model", options.model_copy(update={"timeout": 1, "follow_base_model": False}))
    elapsed = time.monotonic() - t0
    by_id = {d.id: d for d in r.datasets}
    assert all(not d.available for d in r.datasets)
    assert by_id["org/gated"].error == "gated: the current token has no access"
    assert by_id["not a valid id!"].error == "not a valid Hub dataset id"
    assert "500" in str(by_id["org/broken"].error)
    finding = next(f for f in r.findings if f.id == "dataset.card_unavailable")
    assert len(finding.evidence) == 5
    assert elapsed < 15


def test_twenty_datasets_are_fetched_concurrently(hub: Any, options: Any) -> None:
    ids = [f"org/ds{i:02d}" for i in range(20)]
    hub.add_model("org/model", {"README.md": card({**META, "datasets": ids}, FULL_BODY)})
    for ds in ids:
        hub.add_dataset(ds, card({"license": ["cc-by-4.0"]}), delay=0.3)
    t0 = time.monotonic()
    r = audit_model("org/model", options.model_copy(update={"follow_base_model": False}))
    elapsed = time.monotonic() - t0
    assert [d.id for d in r.datasets] == ids
    assert all(d.available for d in r.datasets)
    # Each dataset costs 3 delayed requests (info, HEAD, GET): ~18 s serially, ~2.3 s with 8 workers.
    assert elapsed < 9


def test_card_missing_on_hub(hub: Any, options: Any) -> None:
    hub.add_model("org/nocard", {"config.json": json.dumps(CONFIG)})
    r = audit_model("org/nocard", options)
    assert not r.card.has_card
    assert {"docs.no_card", "license.missing"} <= {f.id for f in r.findings}
    assert r.card.architecture is not None and r.card.architecture.model_type == "mistral"
