"""The Azure AI Foundry catalog collector against a fake Azure ML registry service over TLS (tests/fakeazure.py).

The SDK is pointed at the fake through its own custom-cloud settings (ARM_CLOUD_METADATA_URL,
REGISTRY_DISCOVERY_ENDPOINT_URL) and trusts its CA through REQUESTS_CA_BUNDLE: no call leaves
127.0.0.1. Direct collector tests pass a static credential; end-to-end runs go through the real
DefaultAzureCredential chain, limited to its Azure CLI leg (AZURE_TOKEN_CREDENTIALS) with a fake
`az` on PATH that prints a token.
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakeazure import PHI_4, TOKEN, ZEPHYR_MIRROR, Entry, FakeAzure, StaticCredential
from fakehub import FakeHub
from helpers import card

from audit.collect.local import parse_ref
from audit.config import AuditOptions
from audit.errors import InvalidRefError

HAS_SDK = importlib.util.find_spec("azure.ai.ml") is not None and importlib.util.find_spec("azure.identity")
needs_sdk = pytest.mark.skipif(not HAS_SDK, reason="needs the [azure] extra (azure-ai-ml, azure-identity)")
ZEPHYR_REF = "azureml://registries/azureml/models/HuggingFaceH4-zephyr-7b-beta/versions/1"
PHI_REF = "azureml://registries/azureml/models/Phi-4/versions/2"


@pytest.fixture(scope="module")
def fake_azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeAzure]:
    if not HAS_SDK:
        pytest.skip("needs the [azure] extra")
    server = FakeAzure(tmp_path_factory.mktemp("azure-tls")).start()
    yield server
    server.stop()


@pytest.fixture
def az(fake_azure: FakeAzure, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAzure]:
    """The fake service, emptied, with the environment that points the SDK at it (restored afterwards)."""
    fake_azure.reset()
    for key, value in fake_azure.env().items():
        monkeypatch.setenv(key, value)
    # The SDK records the cloud it chose in AZUREML_CURRENT_CLOUD: start and end each test without it.
    saved = os.environ.pop("AZUREML_CURRENT_CLOUD", None)
    yield fake_azure
    os.environ.pop("AZUREML_CURRENT_CLOUD", None)
    if saved is not None:
        os.environ["AZUREML_CURRENT_CLOUD"] = saved


@pytest.fixture
def az_cli(az: FakeAzure, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeAzure:
    """DefaultAzureCredential limited to its Azure CLI leg, with a fake `az` that prints the test token."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "az"
    expires = int(time.time()) + 3600
    payload = json.dumps({"accessToken": TOKEN, "expires_on": expires, "tokenType": "Bearer"})
    script.write_text(f"#!{sys.executable}\nprint({payload!r})\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "AzureCliCredential")
    return az


def catalog(az: FakeAzure, *entries: Entry, name: str = "azureml") -> None:
    reg = az.registry(name)
    for e in entries:
        reg.add(e)


def zephyr_hub(hub: FakeHub, license: str = "mit") -> str:  # noqa: A002
    """The Hub original of the zephyr mirror (its real card's licence, datasets and base model)."""
    meta = {
        "license": license,
        "datasets": ["HuggingFaceH4/ultrachat_200k", "HuggingFaceH4/ultrafeedback_binarized"],
        "base_model": "mistralai/Mistral-7B-v0.1",
        "pipeline_tag": "text-generation",
    }
    repo = hub.add_model("HuggingFaceH4/zephyr-7b-beta", {"README.md": card(meta), "model.safetensors": b"x"})
    # The catalog's SHA property names the Hub commit the mirror was made from.
    repo.refs[ZEPHYR_MIRROR.properties["SHA"]] = repo.refs["main"]
    hub.add_dataset("HuggingFaceH4/ultrachat_200k", card({"license": "mit"}))
    hub.add_dataset("HuggingFaceH4/ultrafeedback_binarized", card({"license": "mit"}))
    hub.add_model("mistralai/Mistral-7B-v0.1", {"README.md": card({"license": "apache-2.0"})})
    return repo.refs["main"]


def collect(ref: str, options: AuditOptions, credential: Any = None) -> Any:
    from audit.collect.azure import collect_azureml

    return collect_azureml(parse_ref(ref), options, credential=credential or StaticCredential())


# ------------------------------------------------------------------ references


@needs_sdk
@pytest.mark.parametrize(
    ("ref", "registry", "name", "version", "label"),
    [
        (PHI_REF, "azureml", "Phi-4", "2", None),
        ("azureml://registries/azureml-meta/models/Llama-3.3-70B-Instruct/labels/latest", "azureml-meta",
         "Llama-3.3-70B-Instruct", None, "latest"),
        ("  AzureML://registries/HuggingFace/models/bert-base-uncased/versions/14/  ", "HuggingFace",
         "bert-base-uncased", "14", None),
    ],
)  # fmt: skip
def test_valid_refs(ref: str, registry: str, name: str, version: str | None, label: str | None) -> None:
    r = parse_ref(ref)
    assert (r.kind, r.registry, r.repo_id, r.revision, r.label) == ("azureml", registry, name, version, label)


@pytest.mark.parametrize(
    "ref",
    [
        "azureml://registries/azureml/models/Phi-4",  # no version or label
        "azureml://registries/azureml/models/Phi-4/versions/",  # empty version
        "azureml://registries/azureml/models/Phi-4/versions/2/extra",
        "azureml://registries/../models/Phi-4/versions/2",
        "azureml://registries/azureml/models/..%2F..%2Fetc/versions/2",
        "azureml://registries/azureml/models/a..b/versions/2",
        "azureml://registries/azureml/models/Phi-4/versions/..",
        "azureml://registries/azureml/models/Phi-4/versions/1\x00",
        "azureml://registries/azureml/models/Phi 4/versions/2",
        "azureml://registries/azureml/models/Phi-4\u202e/versions/2",
        "azureml://registries/ab/models/Phi-4/versions/2",  # registry names have 3-33 characters
        "azureml://registries/azureml/models/Phi-4/versions/2?api-version=x",
        "azureml://registries/azureml/models/Phi-4/labels/lat est",
        "azureml://registries/azureml/datasets/Phi-4/versions/2",
        "azureml://registries/azureml/models/.hidden/versions/2",
        "azureml://" + "a" * 700,
    ],
)
def test_bad_refs_exit_2_before_any_call(ref: str) -> None:
    with pytest.raises(InvalidRefError) as err:
        parse_ref(ref)
    assert err.value.exit_code == 2
    assert "azureml://registries/<registry>/models/<name>/versions/<version>" in err.value.hint


def test_bad_ref_exit_2_from_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from audit.cli import main

    assert main(["run", "azureml://registries/azureml/models/../versions/2"]) == 2
    assert "invalid" in capsys.readouterr().err


def test_without_the_extra_a_ref_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from audit.cli import main
    from audit.collect.azure import AzureExtraMissingError

    monkeypatch.setitem(sys.modules, "azure.ai.ml", None)  # `import azure.ai.ml` raises ImportError
    with pytest.raises(AzureExtraMissingError) as err:
        parse_ref(PHI_REF)
    assert err.value.exit_code == 2
    assert 'pip install "model-risk-audit[azure]"' in err.value.hint
    assert main(["run", PHI_REF, "--format", "json"]) == 2
    assert 'pip install "model-risk-audit[azure]"' in capsys.readouterr().err


# ------------------------------------------------------------------ facts from the catalog


@needs_sdk
def test_first_party_entry(az: FakeAzure, options: AuditOptions) -> None:
    catalog(az, PHI_4)
    cred = StaticCredential()
    card_facts, config = collect(PHI_REF, options, cred)
    assert config is None
    assert card_facts.source == "azureml"
    assert card_facts.subject == "azureml://registries/azureml/models/Phi-4"
    assert card_facts.resolved_revision == "2"
    assert card_facts.licenses == ("mit",) and card_facts.license_class == "permissive"
    assert card_facts.pipeline_tag == "chat-completion"
    assert card_facts.languages[:3] == ("en", "ar", "bn")
    assert card_facts.hub is not None and card_facts.hub.last_modified == "2025-01-08T17:00:00+00:00"
    present = {s.key for s in card_facts.sections if s.present}
    assert {"model_description", "training_data"} <= present and "evaluation" not in present
    c = card_facts.catalog
    assert c is not None
    assert (c.author, c.license_source, c.task_source) == (
        "Microsoft",
        "catalog tag 'license'",
        "catalog tag 'task'",
    )
    assert c.inference_compute[0] == "Standard_NC24ads_A100_v4" and len(c.inference_compute) == 5
    assert c.inference_envs == ("vllm",) and c.security_scanned
    assert c.not_stated == ("fine-tuning compute", "training datasets", "Hub original", "weight files")
    # provenance.stale reads the catalog version's creation time, and says so.
    import datetime as dt

    from audit.analyze import stale_finding

    stale = stale_finding(card_facts, options, dt.datetime(2028, 1, 8, tzinfo=dt.timezone.utc))
    assert (
        stale is not None
        and "in the Azure ML registry (this version's creation) 1094 days ago" in stale.detail
    )
    assert stale.evidence == ("catalog systemData.createdAt = 2025-01-08T17:00:00+00:00",)
    # Every request but the cloud metadata carried the credential's bearer token over TLS.
    model_requests = [r for r in az.requests if r["path"] != "/metadata/endpoints"]
    assert model_requests and all(r["auth"] == f"Bearer {TOKEN}" for r in model_requests)
    assert any(p.endswith("/registries/azureml/models/Phi-4/versions/2") for p in az.paths())
    assert cred.scopes and cred.scopes[0] == (f"{az.url}/.default",)


@needs_sdk
def test_label_latest_resolves_to_the_newest_version(az: FakeAzure, options: AuditOptions) -> None:
    old = Entry("Phi-4", "1", description="old", tags={"license": "mit"}, created_at="2024-12-01T00:00:00Z")
    catalog(az, old, PHI_4)
    card_facts, _ = collect("azureml://registries/azureml/models/Phi-4/labels/latest", options)
    assert card_facts.resolved_revision == "2"
    assert card_facts.catalog is not None and card_facts.catalog.requested == "label latest"
    listing = [r for r in az.requests if r["path"].endswith("/models/Phi-4/versions")]
    assert listing and listing[0]["query"].get("$top") == "1"


@needs_sdk
def test_hub_mirror_is_followed_to_its_card_and_datasets(
    az: FakeAzure, hub: FakeHub, options: AuditOptions
) -> None:
    catalog(az, ZEPHYR_MIRROR)
    main_sha = zephyr_hub(hub)
    card_facts, _ = collect(ZEPHYR_REF, options)
    c = card_facts.catalog
    assert c is not None
    assert (c.license, c.license_source) == ("mit", "catalog property 'license'")
    assert c.task == "text-generation" and c.task_source == "the asset's MLmodel flavor 'task'"
    assert c.hub_model_id == "HuggingFaceH4/zephyr-7b-beta"
    assert c.hub_commit == ZEPHYR_MIRROR.properties["SHA"] and c.hub_resolved_revision == main_sha
    assert c.hub_licenses == ("mit",) and c.hub_error is None
    assert c.finetune_compute == ("Standard_ND40rs_v2", "Standard_ND96amsr_A100_v4", "Standard_ND96asr_v4")
    assert "author" in " ".join(c.not_stated) and "Hub original" not in c.not_stated
    assert card_facts.datasets == ("HuggingFaceH4/ultrachat_200k", "HuggingFaceH4/ultrafeedback_binarized")
    assert card_facts.base_models == ("mistralai/Mistral-7B-v0.1",)
    # The Hub card was read at the commit the catalog names.
    assert any(ZEPHYR_MIRROR.properties["SHA"] in p for _, p, _ in hub.requests)

    from audit.collect.azure import catalog_findings

    assert catalog_findings(card_facts) == []


@needs_sdk
def test_licence_mismatch_between_catalog_and_hub(
    az_cli: FakeAzure, hub: FakeHub, options: AuditOptions
) -> None:
    from audit.analyze import analyse
    from audit.collect import collect as run_collect

    catalog(az_cli, ZEPHYR_MIRROR)
    zephyr_hub(hub, license="cc-by-nc-4.0")
    collected = run_collect(parse_ref(ZEPHYR_REF), options)  # collect_model dispatches to the Azure collector
    found = [f for f in analyse(collected, options) if f.id == "license.catalog_mismatch"]
    assert len(found) == 1
    f = found[0]
    assert f.severity.value == "high" and f.category == "license"
    rev = collected.card.catalog.hub_resolved_revision[:12]
    assert f.evidence == (
        "catalog property 'license': mit",
        f"Hub card HuggingFaceH4/zephyr-7b-beta@{rev} license: cc-by-nc-4.0",
    )
    # A non-commercial Hub card under a permissive catalog licence: the datasets were followed too.
    assert [d.id for d in collected.datasets] == [
        "HuggingFaceH4/ultrachat_200k",
        "HuggingFaceH4/ultrafeedback_binarized",
    ]


# ------------------------------------------------------------------ errors


@needs_sdk
def test_forbidden_registry(az: FakeAzure, options: AuditOptions) -> None:
    from audit.collect.azure import AzureAccessError

    az.registry("private-reg", forbidden=True)
    with pytest.raises(AzureAccessError) as err:
        collect("azureml://registries/private-reg/models/m/versions/1", options)
    assert err.value.exit_code == 3
    assert "(403)" in err.value.message and "AzureML Registry User" in err.value.hint
    assert TOKEN not in str(err.value)


@needs_sdk
def test_unknown_registry_model_and_version(az: FakeAzure, options: AuditOptions) -> None:
    from audit.collect.azure import AzureModelNotFoundError, AzureVersionNotFoundError

    catalog(az, Entry("Phi-4", "1", created_at="2024-01-01T00:00:00Z"), PHI_4)
    with pytest.raises(AzureModelNotFoundError, match="registry 'nowhere' was not found"):
        collect("azureml://registries/nowhere/models/Phi-4/versions/2", options)
    with pytest.raises(AzureModelNotFoundError, match="model 'Phi-5' was not found"):
        collect("azureml://registries/azureml/models/Phi-5/versions/1", options)
    with pytest.raises(AzureVersionNotFoundError) as err:
        collect("azureml://registries/azureml/models/Phi-4/versions/9", options)
    assert "version '9'" in err.value.message
    assert "versions listed by the registry: 2, 1" in err.value.hint


@needs_sdk
def test_throttling_is_retried_then_reported_with_retry_after(az: FakeAzure, options: AuditOptions) -> None:
    from audit.collect.azure import RETRY_TOTAL, AzureThrottledError

    catalog(az, PHI_4)
    prefix = "/registrymanagement/"
    az.throttle[prefix] = 1  # one 429, then the retry succeeds
    card_facts, _ = collect(PHI_REF, options)
    assert card_facts.resolved_revision == "2"
    assert sum(p.startswith(prefix) for p in az.paths()) == 2
    az.requests.clear()
    az.throttle[prefix] = 100
    with pytest.raises(AzureThrottledError) as err:
        collect(PHI_REF, options)
    assert err.value.retry_after == 1.0
    assert "429, Retry-After: 1 s" in err.value.message and "wait 1 s" in err.value.hint
    assert sum(p.startswith(prefix) for p in az.paths()) == RETRY_TOTAL + 1


@needs_sdk
def test_credential_missing_or_refused(az: FakeAzure, options: AuditOptions) -> None:
    from azure.identity import CredentialUnavailableError

    from audit.collect.azure import AzureCredentialError

    catalog(az, PHI_4)

    class NoCredential:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise CredentialUnavailableError(
                "EnvironmentCredential: environment variables are not fully configured"
            )

    with pytest.raises(AzureCredentialError) as err:
        collect(PHI_REF, options, NoCredential())
    assert "no Azure credential" in err.value.message and "az login" in err.value.hint
    with pytest.raises(AzureCredentialError) as err:
        collect(PHI_REF, options, StaticCredential("wrong-token-0123456789"))
    assert "(401)" in err.value.message
    assert "wrong-token" not in str(err.value)


# ------------------------------------------------------------------ catalog listing (shortlists)


@needs_sdk
def test_list_catalog_models_pages_and_filters(az: FakeAzure) -> None:
    from audit.collect.azure import list_catalog_models

    entries = [
        Entry(f"model-{i}", str(i), tags={"task": "chat-completion" if i % 2 else "fill-mask"})
        for i in range(1, 6)
    ]
    catalog(az, *entries)
    refs = list_catalog_models("azureml", task="chat-completion", credential=StaticCredential())
    assert refs == [f"azureml://registries/azureml/models/model-{i}/versions/{i}" for i in (1, 3, 5)]
    pages = [r for r in az.requests if r["path"].endswith("/registries/azureml/models")]
    assert len(pages) == 3 and [r["query"].get("$skipToken") for r in pages] == [None, "2", "4"]
    assert list_catalog_models("azureml", search="MODEL-4", credential=StaticCredential()) == [
        "azureml://registries/azureml/models/model-4/versions/4"
    ]
    assert len(list_catalog_models("azureml", limit=2, credential=StaticCredential())) == 2


# ------------------------------------------------------------------ end to end


@needs_sdk
@pytest.mark.slow
@pytest.mark.parametrize("which", ["first-party", "hub-mirror"])
def test_end_to_end_into_all_four_formats(
    which: str, az_cli: FakeAzure, hub: FakeHub, options: AuditOptions, tmp_path: Path
) -> None:
    from pypdf import PdfReader

    from audit.pipeline import run_audit, write_report

    catalog(az_cli, PHI_4, ZEPHYR_MIRROR)
    zephyr_hub(hub, license="apache-2.0")
    ref = PHI_REF if which == "first-party" else ZEPHYR_REF
    report, _ = run_audit(ref, options, out_dir=tmp_path / "run")
    out = tmp_path / "run"
    written = write_report(report, out, ["json", "html", "pdf", "md"])
    assert {p.name for p in written} == {"report.json", "report.html", "report.pdf", "report.md"}
    data = json.loads((out / "report.json").read_text())
    assert data["subject"]["kind"] == "azureml"
    c = data["card"]
    assert c["source"] == "azureml" and data["run"]["resolved_revision"] == (
        "2" if which == "first-party" else "1"
    )
    assert c["catalog"]["created_at"].startswith("2025-01-08" if which == "first-party" else "2024-01-25")
    ids = {f["id"] for f in data["findings"]}
    subject = c["subject"]
    if which == "first-party":
        assert c["licenses"] == ["mit"] and c["pipeline_tag"] == "chat-completion"
        assert "license.catalog_mismatch" not in ids
    else:
        assert [d["id"] for d in data["datasets"]] == [
            "HuggingFaceH4/ultrachat_200k",
            "HuggingFaceH4/ultrafeedback_binarized",
        ]
        assert all(d["available"] and d["licenses"] == ["mit"] for d in data["datasets"])
        assert "license.catalog_mismatch" in ids  # catalog mit, Hub card apache-2.0
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    pdf = "".join(page.extract_text() for page in PdfReader(out / "report.pdf").pages)
    name = subject.rsplit("/", 1)[1]
    assert name in html and name in md and name in " ".join(pdf.split())
    # The catalog entry's own facts are shown in every format, with what it does not state.
    asset = c["catalog"]["asset_id"]
    assert "Catalog entry (Azure AI Foundry)" in html and "Catalog entry (Azure AI Foundry)" in md
    assert asset in html and asset in md and "Catalog entry (Azure AI Foundry)" in pdf
    assert f"- licence: {c['catalog']['license']}" in md
    for path in out.iterdir():  # the bearer token never reaches a report
        assert TOKEN.encode() not in path.read_bytes()


@needs_sdk
def test_cli_run_against_the_local_service(
    az_cli: FakeAzure, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from audit.cli import main

    catalog(az_cli, PHI_4)
    out = tmp_path / "cli-run"
    code = main(["run", PHI_REF, "--out", str(out), "--format", "json", "--no-datasets"])
    assert code in (0, 1), capsys.readouterr().err
    data = json.loads((out / "report.json").read_text())
    assert data["card"]["catalog"]["license"] == "MIT" and data["run"]["resolved_revision"] == "2"


@needs_sdk
def test_shortlist_from_the_catalog(
    az_cli: FakeAzure, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from audit.cli import main

    catalog(az_cli, PHI_4, ZEPHYR_MIRROR)
    out = tmp_path / "shortlist"
    args = ["shortlist", "--catalog", "azureml://registries/azureml", "--no-datasets"]
    code = main([*args, "--out", str(out), "--format", "json,md"])
    assert code == 0, capsys.readouterr().err
    data = json.loads((out / "shortlist.json").read_text())
    assert data["query"]["catalog"] == "azureml://registries/azureml" and data["candidates"] == 2
    ranked = {r["candidate"]: r for r in data["ranked"]}
    assert set(ranked) == {
        "azureml://registries/azureml/models/Phi-4/versions/2",
        "azureml://registries/azureml/models/HuggingFaceH4-zephyr-7b-beta/versions/1",
    }
    phi = ranked["azureml://registries/azureml/models/Phi-4/versions/2"]
    assert phi["revision"] == "2" and phi["license"] == "mit" and not data["failed"]
    assert "Phi-4" in (out / "shortlist.md").read_text()
