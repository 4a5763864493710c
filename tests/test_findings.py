"""Every finding id is triggered by a fixture built for it, and not triggered on a clean model."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import FULL_BODY, card, model_folder, safetensors_bytes

from audit.collect.licenses import classify_license, is_stricter, strictest
from audit.pipeline import audit_model

NOW = dt.datetime(2026, 11, 28, tzinfo=dt.timezone.utc)
CLEAN_META: dict[str, Any] = {"license": "apache-2.0", "datasets": ["org/clean-data"], "language": ["en"]}
CLEAN_DATASET = card(
    {"license": ["cc-by-4.0"], "pretty_name": "Clean"},
    "# Clean\n\n### Personal and Sensitive Information\n\nThe data does not contain personal information; authors were anonymized.\n\n"
    "### Discussion of Biases\n\nReviews over-represent English speakers from North America and younger users.\n",
)
CONFIG = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "vocab_size": 100,
    "max_position_embeddings": 64,
}
WEIGHTS = {"model.safetensors": safetensors_bytes({"w": [100, 32], "b": [32]})}


def ids(report: Any) -> set[str]:
    return {f.id for f in report.findings}


def run_hub(
    hub: Any,
    options: Any,
    *,
    meta: dict[str, Any] | None = CLEAN_META,
    body: str = FULL_BODY,
    files: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
    datasets: dict[str, str] | None = None,
    **repo_kw: Any,
) -> Any:
    model_files: dict[str, Any] = {
        "README.md": card(meta, body),
        "config.json": json.dumps(CONFIG),
        **WEIGHTS,
    }
    if files is not None:
        model_files = {"README.md": card(meta, body), **files}
    hub.add_model("org/model", model_files, info=info, **repo_kw)
    for ds_id, ds_card in (datasets if datasets is not None else {"org/clean-data": CLEAN_DATASET}).items():
        hub.add_dataset(ds_id, ds_card)
    return audit_model("org/model", options, now=NOW)


def test_clean_model_has_only_the_size_class(hub: Any, options: Any) -> None:
    report = run_hub(hub, options)
    assert ids(report) == {"size.class"}
    assert report.verdict.rating == "low risk"
    assert report.card.documentation_score == 100.0
    # The Hub gave no safetensors total, so the count is estimated from config.json, by hand:
    # embeddings 100*32 + positions 64*32 + 2 layers * (attention 4*32*32 + MLP 2*32*64 + norms 4*32) + final 2*32.
    assert report.card.parameters == 3200 + 2048 + 2 * (4096 + 4096 + 128) + 64 == 21952
    assert report.card.parameters_source == "estimated from config.json"


def test_clean_local_folder_has_only_the_size_class(tmp_path: Path, options: Any) -> None:
    folder = model_folder(
        tmp_path / "m", card_text=card({**CLEAN_META, "datasets": None}), config=CONFIG, files=WEIGHTS
    )
    report = audit_model(str(folder), options, now=NOW)
    assert ids(report) == {"size.class", "data.undisclosed"}
    assert report.card.parameters == 3232 and report.card.parameters_source == "safetensors headers"


@pytest.mark.parametrize(
    "meta,body,expected",
    [
        (None, FULL_BODY, {"docs.no_metadata", "license.missing", "data.undisclosed"}),
        ({**CLEAN_META, "license": "cc-by-nc-4.0"}, FULL_BODY, {"license.noncommercial"}),
        ({**CLEAN_META, "license": "gpl-3.0"}, FULL_BODY, {"license.copyleft"}),
        ({**CLEAN_META, "license": "bigscience-openrail-m"}, FULL_BODY, {"license.restricted_use"}),
        ({**CLEAN_META, "license": "llama3.1"}, FULL_BODY, {"license.restricted_use"}),
        ({**CLEAN_META, "license": "other", "license_name": "acme-1.0"}, FULL_BODY, {"license.other"}),
        ({**CLEAN_META, "license": "unknown"}, FULL_BODY, {"license.missing"}),
        ({k: v for k, v in CLEAN_META.items() if k != "license"}, FULL_BODY, {"license.missing"}),
        ({**CLEAN_META, "datasets": []}, FULL_BODY, {"data.undisclosed"}),
        ({**CLEAN_META, "license": ["mit", "apache-2.0"]}, FULL_BODY, {"docs.metadata_invalid"}),
        ({**CLEAN_META, "model-index": "just text"}, FULL_BODY, {"docs.metadata_invalid"}),
        (
            {**CLEAN_META, "model-index": [{"name": "m", "results": [{"task": {"type": "x"}}]}]},
            FULL_BODY,
            {"docs.metadata_invalid"},
        ),
        (
            CLEAN_META,
            FULL_BODY.replace("## Intended uses", "## Something else"),
            {"docs.section_missing.intended_uses"},
        ),
        (
            CLEAN_META,
            FULL_BODY.replace(
                "## Environmental impact\nAbout 3 kg CO2eq were emitted during training on one A100 GPU for five hours in total.",
                "## Environmental impact\n[More Information Needed]",
            ),
            {"docs.section_missing.environmental_impact"},
        ),
    ],
)
def test_card_findings(tmp_path: Path, options: Any, meta: Any, body: str, expected: set[str]) -> None:
    folder = model_folder(tmp_path / "m", card_text=card(meta, body), config=CONFIG, files=WEIGHTS)
    report = audit_model(str(folder), options.model_copy(update={"fetch_datasets": False}), now=NOW)
    assert ids(report) - {"size.class"} == expected


def test_every_missing_section_has_its_own_id(tmp_path: Path, options: Any) -> None:
    folder = model_folder(
        tmp_path / "m", card_text=card(CLEAN_META, "# Title only\n"), config=CONFIG, files=WEIGHTS
    )
    report = audit_model(str(folder), options.model_copy(update={"fetch_datasets": False}), now=NOW)
    sections = {f.id for f in report.findings if f.id.startswith("docs.section_missing.")}
    assert sections == {
        f"docs.section_missing.{k}"
        for k in (
            "model_description",
            "intended_uses",
            "out_of_scope_uses",
            "bias_risks_limitations",
            "training_data",
            "training_procedure",
            "evaluation",
            "environmental_impact",
            "citation",
            "contact",
        )
    }
    assert report.card.documentation_score == 0.0
    sev = {f.id: f.severity.value for f in report.findings}
    # Documentation gaps are at most medium; citation, contact, environmental impact at most low.
    assert sev["docs.section_missing.bias_risks_limitations"] == "medium"
    assert sev["docs.section_missing.training_data"] == "medium"
    assert sev["docs.section_missing.environmental_impact"] == "low"
    assert sev["docs.section_missing.citation"] == "info"


def test_unreadable_card(tmp_path: Path, options: Any) -> None:
    folder = model_folder(
        tmp_path / "m",
        card_text=None,
        config=CONFIG,
        files={**WEIGHTS, "README.md": b"\xff\xfe\x00\x01" * 50},
    )
    folder.joinpath("README.md").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    report = audit_model(str(folder), options, now=NOW)
    assert "docs.unreadable" in ids(report)
    assert not any(i.startswith("docs.section_missing") for i in ids(report))


def test_no_card(tmp_path: Path, options: Any) -> None:
    folder = model_folder(tmp_path / "m", card_text=None, config=CONFIG, files=WEIGHTS)
    assert ids(audit_model(str(folder), options, now=NOW)) == {
        "docs.no_card",
        "license.missing",
        "size.class",
    }


def test_pickle_only_weights(tmp_path: Path, options: Any) -> None:
    base = {"card_text": card({**CLEAN_META, "datasets": ["x/y"]}), "config": CONFIG}
    o = options.model_copy(update={"fetch_datasets": False})
    pick = model_folder(tmp_path / "a", files={"pytorch_model.bin": b"PK", "training_args.bin": b"x"}, **base)
    f = next(f for f in audit_model(str(pick), o, now=NOW).findings if f.id == "weights.pickle_only")
    assert f.evidence == ("pytorch_model.bin",) and f.severity.value == "high"
    both = model_folder(tmp_path / "b", files={"pytorch_model.bin": b"PK", **WEIGHTS}, **base)
    assert "weights.pickle_only" not in ids(audit_model(str(both), o, now=NOW))
    args_only = model_folder(tmp_path / "c", files={"training_args.bin": b"x", "model.gguf": b"GGUF"}, **base)
    assert "weights.pickle_only" not in ids(audit_model(str(args_only), o, now=NOW))


def test_remote_code(tmp_path: Path, options: Any) -> None:
    o = options.model_copy(update={"fetch_datasets": False})
    cfg = {**CONFIG, "auto_map": {"AutoModel": "modeling_x.XModel"}}
    a = model_folder(
        tmp_path / "a",
        card_text=card(CLEAN_META),
        config=cfg,
        files={**WEIGHTS, "modeling_x.py": "import os"},
    )
    f = next(f for f in audit_model(str(a), o, now=NOW).findings if f.id == "code.remote_code")
    assert "file: modeling_x.py" in f.evidence
    assert "config.json auto_map: AutoModel -> modeling_x.XModel" in f.evidence
    b = model_folder(tmp_path / "b", card_text=card(CLEAN_META), config=CONFIG, files=WEIGHTS)
    assert "code.remote_code" not in ids(audit_model(str(b), o, now=NOW))


def test_gated_and_stale_from_hub_metadata(hub: Any, options: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from fakehub import GOOD_TOKEN

    monkeypatch.setenv("HF_TOKEN", GOOD_TOKEN)
    report = run_hub(hub, options, gated=True, info={"lastModified": "2023-03-01T00:00:00.000Z"})
    found = {f.id: f for f in report.findings}
    assert "access.gated" in found and found["access.gated"].evidence == ("model_info.gated = manual",)
    assert "provenance.stale" in found and "2023-03-01" in found["provenance.stale"].detail
    hub.reset()
    fresh = run_hub(hub, options.model_copy(update={"cache_dir": options.cache_dir.parent / "c2"}))
    assert not {"access.gated", "provenance.stale"} & ids(fresh)


def test_dataset_findings(hub: Any, options: Any) -> None:
    datasets = {
        "org/nc": card(
            {"license": ["cc-by-nc-4.0"]},
            "# NC\n### Personal and Sensitive Information\n\nThe corpus contains names and e-mail addresses of forum users.\n",
        ),
        "org/nolicense": card({"language": ["en"]}, "# No licence\n"),
        "org/missing": None,
    }
    meta = {**CLEAN_META, "datasets": list(datasets)}
    report = run_hub(hub, options, meta=meta, datasets={k: v for k, v in datasets.items() if v})
    found = {f.id: f for f in report.findings}
    assert found["dataset.noncommercial"].evidence == ("org/nc: license cc-by-nc-4.0",)
    assert found["dataset.license_missing"].evidence == ("org/nolicense: license not declared",)
    assert found["dataset.card_unavailable"].evidence == ("org/missing: not found on the Hub (or private)",)
    assert found["dataset.personal_info"].severity.value == "medium"
    assert "org/nc: card says personal information is present" in found["dataset.personal_info"].evidence
    assert (
        "org/nolicense: card says nothing about personal information"
        in found["dataset.personal_info"].evidence
    )
    assert set(found["dataset.bias_undocumented"].evidence) == {
        "org/nc: no discussion of biases",
        "org/nolicense: no discussion of biases",
    }
    conflict = found["license.conflict"]
    assert conflict.severity.value == "high" and "org/nc" in conflict.detail


def test_license_conflict_with_base_model(hub: Any, options: Any) -> None:
    hub.add_model("meta-llama/Llama-3.1-8B", {"README.md": card({"license": "llama3.1"}, FULL_BODY)})
    report = run_hub(hub, options, meta={**CLEAN_META, "base_model": "meta-llama/Llama-3.1-8B"})
    conflicts = [f for f in report.findings if f.id == "license.conflict"]
    assert len(conflicts) == 1
    assert "meta-llama/Llama-3.1-8B" in conflicts[0].detail
    assert report.base_models[0].licenses == ("llama3.1",)
    # The same base under the same licence is no conflict.
    hub.reset()
    hub.add_model("meta-llama/Llama-3.1-8B", {"README.md": card({"license": "llama3.1"}, FULL_BODY)})
    same = run_hub(
        hub,
        options.model_copy(update={"cache_dir": options.cache_dir.parent / "c2"}),
        meta={**CLEAN_META, "license": "llama3.1", "base_model": "meta-llama/Llama-3.1-8B"},
    )
    assert "license.conflict" not in ids(same)


def test_no_conflict_when_data_is_as_permissive(hub: Any, options: Any) -> None:
    report = run_hub(hub, options, datasets={"org/clean-data": CLEAN_DATASET.replace("cc-by-4.0", "mit")})
    assert "license.conflict" not in ids(report)


def test_size_class_threshold(hub: Any, options: Any) -> None:
    info = {"safetensors": {"total": 70_000_000_000, "parameters": {"BF16": 70_000_000_000}}}
    report = run_hub(hub, options, info=info)
    f = next(f for f in report.findings if f.id == "size.class")
    assert f.title == "Model size class"
    assert f.detail.startswith("Large language model: 70.0B parameters")
    assert "about 140 GB" in f.detail
    small = run_hub(
        hub,
        options.model_copy(update={"llm_threshold": 1e12, "cache_dir": options.cache_dir.parent / "c2"}),
        info=info,
    )
    assert next(f for f in small.findings if f.id == "size.class").detail.startswith("Small language model")


def test_implausible_hub_parameter_count_is_not_reported(hub: Any, options: Any) -> None:
    info = {"safetensors": {"total": 10**30, "parameters": {"BF16": 10**30}}}
    report = run_hub(hub, options, info=info)
    # The bogus Hub total is not reported; the count falls back to the estimate from config.json.
    assert report.card.parameters == 21952 and report.card.parameters_source == "estimated from config.json"
    assert any("1e+30 parameters, above any physical model" in p for p in report.card.problems)


def test_size_unknown(tmp_path: Path, options: Any) -> None:
    card_file = tmp_path / "card.md"
    card_file.write_text(card(CLEAN_META))
    assert "size.unknown" in ids(
        audit_model(str(card_file), options.model_copy(update={"fetch_datasets": False}), now=NOW)
    )


@pytest.mark.parametrize(
    "lic,cls",
    [
        ("apache-2.0", "permissive"),
        ("MIT", "permissive"),
        ("Apache 2.0", "permissive"),
        ("cc-by-4.0", "permissive"),
        ("cc0-1.0", "permissive"),
        ("odc-by", "permissive"),
        ("cc-by-sa-4.0", "copyleft"),
        ("gpl-3.0", "copyleft"),
        ("agpl-3.0", "copyleft"),
        ("gfdl", "copyleft"),
        ("cc-by-nc-sa-4.0", "noncommercial"),
        ("cc-by-nc-nd-4.0", "noncommercial"),
        ("openrail", "restricted_use"),
        ("creativeml-openrail-m", "restricted_use"),
        ("llama2", "restricted_use"),
        ("gemma", "restricted_use"),
        ("cc-by-nd-4.0", "restricted_use"),
        ("other", "other"),
        ("acme-custom", "other"),
        ("unknown", "missing"),
        ("", "missing"),
    ],
)
def test_license_classes(lic: str, cls: str) -> None:
    assert classify_license(lic) == cls


def test_license_strictness() -> None:
    assert strictest(["permissive", "copyleft"]) == "copyleft"
    assert strictest(["other"]) == "other"
    assert strictest([]) == "missing"
    assert is_stricter("noncommercial", "permissive")
    assert not is_stricter("permissive", "copyleft")
    assert not is_stricter("other", "permissive")


def test_card_in_an_uncovered_language_is_not_reported_missing_every_section(tmp_path: Path) -> None:
    from audit.pipeline import audit_model

    body = (
        "# 모델 소개\n\n이 모델은 한국어 문장을 분류하기 위해 학습되었습니다. 뉴스 기사와 블로그 글로 학습했습니다.\n\n"
        "## 사용 방법\n\n아래 코드를 참고하세요. 이 모델은 연구 목적으로만 사용해야 합니다.\n\n"
        "## 한계\n\n이 모델은 편향을 가질 수 있으며, 특정 집단에 대해 부정확한 결과를 낼 수 있습니다.\n"
    )
    path = tmp_path / "ko.md"
    path.write_text("---\nlicense: mit\nlanguage: [ko]\n---\n" + body)
    report = audit_model(str(path))
    assert report.card.language_detected == "ko" and report.card.sections_limited
    ids = {f.id for f in report.findings}
    assert not any(i.startswith("docs.section_missing.") for i in ids)
    lang = next(f for f in report.findings if f.id == "docs.language_unsupported")
    assert "'ko'" in lang.detail and any(e.startswith("not checked: ") for e in lang.evidence)
