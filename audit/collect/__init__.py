"""Collect stage: a model reference in, typed facts out (card, lineage, datasets)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from audit.collect.architecture import MAX_PARAMETERS, architecture_facts, estimate_parameters
from audit.collect.cardfacts import (
    card_language,
    card_title,
    dataset_facts,
    eval_results,
    is_repo_id,
    license_facts,
    model_sections,
    str_list,
    str_value,
)
from audit.collect.cardparse import ParsedCard, parse_card
from audit.collect.hub import fetch_repo
from audit.collect.local import (
    IMPLAUSIBLE_PREFIX,
    find_local_dataset_card,
    parse_ref,
    read_card_file,
    read_local_folder,
)
from audit.compute import card_compute_inputs
from audit.config import AuditOptions
from audit.errors import AuditError, GatedRepoError, OfflineCacheMissError, RepoNotFoundError
from audit.model import CardFacts, DatasetFacts, HubFacts, ModelRef
from audit.progress import Progress, SilentProgress

log = logging.getLogger("audit")

__all__ = ["Collected", "collect", "parse_ref", "build_card_facts", "size_class"]

MAX_BASE_MODELS = 3


@dataclass(frozen=True)
class Collected:
    """Everything the collect stage found."""

    card: CardFacts
    base_models: tuple[CardFacts, ...]
    datasets: tuple[DatasetFacts, ...]
    config: dict[str, Any] | None


def size_class(parameters: int | None, threshold: float) -> str | None:
    """'large' (a large language model) at or above the threshold, else 'small'."""
    if parameters is None:
        return None
    return "large" if parameters >= threshold else "small"


def build_card_facts(
    subject: str,
    source: str,
    parsed: ParsedCard | None,
    options: AuditOptions,
    *,
    resolved_revision: str | None = None,
    hub: HubFacts | None = None,
    hub_error: str | None = None,
    config: dict[str, Any] | None = None,
    files: tuple[str, ...] = (),
    parameters: int | None = None,
    parameters_source: str | None = None,
    extra_problems: list[str] | None = None,
) -> CardFacts:
    """Combine a parsed card, Hub metadata, config.json and the file list into CardFacts."""
    problems = list(extra_problems or [])
    if parsed is None:
        parsed = ParsedCard(readable=True, text="", body="")
        has_card = False
    else:
        has_card = True
        problems.extend(parsed.problems)
    meta = parsed.metadata
    # Metadata fields of the wrong type: collected apart, so the analysis needs no message matching.
    field_problems: list[str] = []
    licenses, lic_class = license_facts(meta, field_problems, list_ok=False)
    datasets = str_list(meta, "datasets", field_problems)
    if isinstance(meta.get("datasets"), str):
        field_problems.append("metadata 'datasets' is a string; it should be a list of dataset ids")
    base_models = str_list(meta, "base_model", field_problems)
    if not base_models and hub is not None:
        base_models = hub.base_models
    sections, score = model_sections(parsed) if has_card else ((), 0.0)
    language, limited = card_language(parsed) if has_card and parsed.readable else (None, False)
    evals = eval_results(meta, field_problems)
    arch = architecture_facts(config, "config.json") if config else None
    if parameters is None and hub is not None and hub.safetensors_total:
        if (
            hub.safetensors_total > MAX_PARAMETERS
        ):  # a crafted or corrupt Hub answer: never reported as a size
            problems.append(
                f"{IMPLAUSIBLE_PREFIX}the Hub's safetensors metadata declares {hub.safetensors_total:.3g} "
                f"parameters, above any physical model ({MAX_PARAMETERS:.0e}): not reported"
            )
        else:
            parameters, parameters_source = hub.safetensors_total, "Hub safetensors metadata"
    if parameters is None and config and arch is not None:
        est = estimate_parameters(config, arch)
        if est:
            parameters, parameters_source = est, "estimated from config.json"
    pipeline_tag = str_value(meta, "pipeline_tag", field_problems) or (hub.pipeline_tag if hub else None)
    library = str_value(meta, "library_name", field_problems) or (hub.library_name if hub else None)
    tags = str_list(meta, "tags", field_problems)
    license_name = str_value(meta, "license_name", field_problems)
    license_link = str_value(meta, "license_link", field_problems)
    languages = str_list(meta, "language", field_problems)
    metadata_problems = [p.message for p in parsed.metadata_problems] + field_problems
    problems.extend(field_problems)
    if hub:
        tags = tuple(dict.fromkeys(tags + hub.tags))
    return CardFacts(
        subject=subject,
        source=source,
        readable=parsed.readable,
        has_card=has_card,
        has_metadata=parsed.has_front_matter,
        resolved_revision=resolved_revision,
        metadata=meta,
        licenses=licenses,
        license_name=license_name,
        license_link=license_link,
        license_class=lic_class,
        datasets=datasets,
        base_models=base_models,
        languages=languages,
        tags=tags,
        pipeline_tag=pipeline_tag,
        library_name=library,
        title=card_title(parsed) if has_card and parsed.readable else "",
        sections=sections,
        documentation_score=score,
        eval_results=evals,
        hub=hub,
        hub_error=hub_error,
        architecture=arch,
        parameters=parameters,
        parameters_source=parameters_source,
        size_class=size_class(parameters, options.llm_threshold),
        files=files,
        card_bytes=parsed.size_bytes,
        language_detected=language,
        sections_limited=limited,
        card_truncated=parsed.truncated,
        problems=tuple(dict.fromkeys(problems)),
        metadata_ok=parsed.metadata_ok and not field_problems,
        metadata_problems=tuple(dict.fromkeys(metadata_problems)),
        **card_compute_inputs(parsed.body if has_card else "", meta, parsed.body_line_offset),
    )


def _parse(data: bytes | None, options: AuditOptions, total_size: int | None = None) -> ParsedCard | None:
    if data is None:
        return None
    return parse_card(
        data,
        max_card_bytes=options.max_card_bytes,
        max_metadata_bytes=options.max_metadata_bytes,
        total_size=total_size,
    )


def collect_model(ref: ModelRef, options: AuditOptions) -> tuple[CardFacts, dict[str, Any] | None]:
    """Card facts of the subject model (raises AuditError when the model itself cannot be had)."""
    if ref.kind == "azureml":
        from audit.collect.azure import collect_azureml

        return collect_azureml(ref, options)
    if ref.kind == "hub":
        assert ref.repo_id is not None
        fetched = fetch_repo(ref.repo_id, ref.revision, options)
        parsed = _parse(fetched.card, options, fetched.extra.get("card_size"))
        return (
            build_card_facts(
                ref.repo_id,
                "hub",
                parsed,
                options,
                resolved_revision=fetched.resolved_revision,
                hub=fetched.info,
                hub_error=fetched.info_error,
                config=fetched.config,
                files=fetched.files,
            ),
            fetched.config,
        )
    assert ref.path is not None
    path = Path(ref.path)
    if ref.kind == "local-folder":
        local = read_local_folder(path, options.max_card_bytes)
        source = "local-folder"
    else:
        local = read_card_file(path, options.max_card_bytes)
        source = "card-file"
    parsed = _parse(local.card, options, local.card_size)
    return (
        build_card_facts(
            path.name,
            source,
            parsed,
            options,
            config=local.config,
            files=local.files,
            parameters=local.parameters,
            parameters_source="safetensors headers" if local.parameters is not None else None,
            extra_problems=local.problems,
        ),
        local.config,
    )


def _short_reason(exc: AuditError) -> str:
    """A one-phrase reason for a dataset table cell (the hint goes into the finding once)."""
    if isinstance(exc, OfflineCacheMissError):
        return "not in the local cache (offline mode)"
    if isinstance(exc, GatedRepoError):
        return "gated: the current token has no access"
    if isinstance(exc, RepoNotFoundError):
        return "not found on the Hub (or private)"
    return exc.message


def collect_dataset(dataset_id: str, options: AuditOptions) -> DatasetFacts:
    """Facts of one declared dataset; any failure becomes an unavailable DatasetFacts."""
    if not is_repo_id(dataset_id):
        return DatasetFacts(id=dataset_id, available=False, error="not a valid Hub dataset id")
    if options.dataset_cards_dir is not None:
        local = find_local_dataset_card(options.dataset_cards_dir, dataset_id)
        if local is not None:
            fetched = read_card_file(local, options.max_card_bytes)
            parsed = _parse(fetched.card, options, fetched.card_size)
            assert parsed is not None
            return dataset_facts(dataset_id, parsed, source="local", resolved_revision=None)
    try:
        fetched_hub = fetch_repo(dataset_id, None, options, repo_type="dataset", want_config=False)
    except AuditError as exc:
        return DatasetFacts(id=dataset_id, available=False, error=_short_reason(exc))
    except Exception as exc:  # noqa: BLE001 - one dataset never stops the audit
        return DatasetFacts(id=dataset_id, available=False, error=f"{type(exc).__name__}: {str(exc)[:200]}")
    if fetched_hub.card is None:
        return DatasetFacts(
            id=dataset_id,
            available=False,
            error="the dataset repo has no README.md card",
            resolved_revision=fetched_hub.resolved_revision,
        )
    parsed = _parse(fetched_hub.card, options, fetched_hub.extra.get("card_size"))
    assert parsed is not None
    info = fetched_hub.info
    return dataset_facts(
        dataset_id,
        parsed,
        source="hub",
        resolved_revision=fetched_hub.resolved_revision,
        gated=info.gated if info else None,
        last_modified=info.last_modified if info else None,
    )


def collect_base_model(repo_id: str, options: AuditOptions) -> CardFacts:
    """Card facts of a base model (one level, no datasets); failures are recorded, not raised."""
    if not is_repo_id(repo_id):
        return CardFacts(
            subject=repo_id,
            source="hub",
            has_card=False,
            readable=False,
            problems=("not a valid Hub repo id",),
        )
    try:
        facts, _ = collect_model(ModelRef(raw=repo_id, kind="hub", repo_id=repo_id), options)
        return facts
    except AuditError as exc:
        return CardFacts(subject=repo_id, source="hub", has_card=False, readable=False, problems=(str(exc),))


def collect(ref: ModelRef, options: AuditOptions, progress: Progress | None = None) -> Collected:
    """Run the collect stage for one model reference."""
    progress = progress or SilentProgress()
    with progress.task(f"model card {ref.display}", 1) as t:
        card, config = collect_model(ref, options)
        t.advance()
    bases: list[CardFacts] = []
    if options.follow_base_model and card.base_models:
        wanted = [b for b in card.base_models if b != card.subject][:MAX_BASE_MODELS]
        with progress.task("base model cards", len(wanted)) as t:
            for b in wanted:
                bases.append(collect_base_model(b, options))
                t.advance()
    datasets: list[DatasetFacts] = []
    if options.fetch_datasets and card.datasets:
        ids = list(card.datasets[: options.max_datasets])
        with (
            progress.task("dataset cards", len(ids)) as t,
            ThreadPoolExecutor(options.dataset_workers) as pool,
        ):
            for ds in pool.map(lambda d: collect_dataset(d, options), ids):
                datasets.append(ds)
                t.advance()
        if len(card.datasets) > options.max_datasets:
            card = replace(
                card,
                problems=card.problems
                + (
                    f"the card declares {len(card.datasets)} datasets; the first {options.max_datasets} were collected",
                ),
            )
    return Collected(card=card, base_models=tuple(bases), datasets=tuple(datasets), config=config)
