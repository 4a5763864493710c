"""The Azure AI Foundry catalog collector: models in Azure Machine Learning registries (`azureml://`).

A reference in Azure's own asset form, `azureml://registries/<registry>/models/<name>/versions/<v>`
or `.../labels/latest`, is validated part by part before any call, then read through the official
`azure-ai-ml` SDK (`MLClient(credential, registry_name=...)`, `models.get` / `models.list`) with
`azure-identity`'s `DefaultAzureCredential` (environment, workload or managed identity, Azure CLI
login). Both are the optional extra `[azure]`; nothing here imports them at module level.

The catalog entry becomes card facts: its description goes through the same card parser and
section detection as a Hub card; its tags and properties give the licence, task, author, languages,
inference and fine-tuning compute, the security scan and a Hub mirror's original repo id (followed
to the Hub card, its commit and its datasets). The version's creation time is the provenance date.
What the entry does not state is listed as "not stated by the catalog", never guessed.

Endpoints and TLS trust come from the SDK's own configuration: `ARM_CLOUD_METADATA_URL` and
`REGISTRY_DISCOVERY_ENDPOINT_URL` select a custom cloud, `REQUESTS_CA_BUNDLE` the CA (docs/azure.md).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from audit.collect.refs import repo_id_problem, revision_problem
from audit.config import AuditOptions
from audit.errors import (
    CollectionError,
    HubUnavailableError,
    InvalidRefError,
    RepoNotFoundError,
    RevisionNotFoundError,
    UsageError,
)
from audit.model import CardFacts, CatalogFacts, Finding, HubFacts, ModelRef, Severity
from audit.redact import redact_text

__all__ = [
    "AzureAccessError",
    "AzureCredentialError",
    "AzureExtraMissingError",
    "AzureModelNotFoundError",
    "AzureRef",
    "AzureThrottledError",
    "AzureUnavailableError",
    "AzureVersionNotFoundError",
    "CatalogEntry",
    "azureml_model_ref",
    "catalog_facts",
    "catalog_findings",
    "collect_azureml",
    "is_azureml_ref",
    "list_catalog_models",
    "map_azure_error",
    "parse_azureml_ref",
    "parse_catalog_ref",
]

SCHEME = "azureml://"
INSTALL_HINT = 'install the Azure extra: pip install "model-risk-audit[azure]"'
REF_HINT = (
    "use azureml://registries/<registry>/models/<name>/versions/<version> "
    "or azureml://registries/<registry>/models/<name>/labels/latest"
)
MAX_REF_CHARS = 600
MAX_TAGS = 200
MAX_TAG_CHARS = 2000
MAX_LIST = 200
RETRY_TOTAL = 3  # azure-core retries 408/429/5xx with backoff, honouring Retry-After
NOT_STATED = "not stated by the catalog"

# Azure ML naming rules (registries: 3-33 characters; assets: letters, digits, '-', '_', '.').
_PARTS: dict[str, tuple[re.Pattern[str], str]] = {
    "registry": (
        re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,32}$"),
        "letters, digits, '-', '_'; 3-33 characters",
    ),
    "model name": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$"), "letters, digits, '-', '_', '.'"),
    "version": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"), "letters, digits, '-', '_', '.'"),
    "label": (re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"), "letters, digits, '-', '_'"),
}


# ------------------------------------------------------------------ errors


class AzureExtraMissingError(UsageError):
    """An azureml:// reference was given but the [azure] extra is not installed."""


class AzureCredentialError(CollectionError, PermissionError):
    """No Azure credential could be had, or Azure refused it (401)."""


class AzureAccessError(CollectionError, PermissionError):
    """The credential has no access to the registry (403)."""


class AzureModelNotFoundError(RepoNotFoundError):
    """The registry, or the model in it, does not exist."""


class AzureVersionNotFoundError(RevisionNotFoundError):
    """The model exists but not the version or label asked for."""


class AzureThrottledError(HubUnavailableError):
    """Azure answered 429 after the retries; `retry_after` is its Retry-After in seconds (None if absent)."""

    def __init__(self, message: str, hint: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, hint)
        self.retry_after = retry_after


class AzureUnavailableError(HubUnavailableError):
    """Azure could not be reached, or answered with a server error."""


# ------------------------------------------------------------------ references


@dataclass(frozen=True)
class AzureRef:
    """A validated azureml:// model reference: a version, or a label to resolve."""

    registry: str
    name: str
    version: str | None = None
    label: str | None = None

    @property
    def subject(self) -> str:
        """The model without a version: the subject of the audit."""
        return f"azureml://registries/{self.registry}/models/{self.name}"

    def asset_id(self, version: str | None = None) -> str:
        """The versioned asset id (`.../versions/<v>`), or the label form when no version is known."""
        v = version or self.version
        return f"{self.subject}/versions/{v}" if v else f"{self.subject}/labels/{self.label}"


def is_azureml_ref(text: str) -> bool:
    """True when REF is in Azure's asset form (`azureml://...`)."""
    return text.strip()[: len(SCHEME)].lower() == SCHEME


def part_problem(value: str, what: str) -> str | None:
    """Why one part of a reference is invalid (None when valid)."""
    if not value:
        return "it is empty"
    bad = re.search(r"[\x00-\x20\x7f-\U0010ffff]", value)
    if bad:
        return f"it contains the character U+{ord(bad.group()):04X}"
    if ".." in value:
        return "it contains '..'"
    pattern, allowed = _PARTS[what]
    if not pattern.match(value):
        return f"it is not a valid {what} ({allowed})"
    if value.endswith("."):
        return "it ends with '.'"
    return None


def _check(value: str, what: str, raw: str) -> str:
    problem = part_problem(value, what)
    if problem:
        raise InvalidRefError(f"{what} {value[:80]!r} in {_short(raw)!r} is invalid: {problem}", REF_HINT)
    return value


def _short(raw: str) -> str:
    text = raw.strip()
    return text if len(text) <= 120 else text[:119] + "…"


def _segments(raw: str) -> list[str]:
    text = raw.strip()
    if len(text) > MAX_REF_CHARS:
        raise InvalidRefError(f"the azureml:// reference is longer than {MAX_REF_CHARS} characters", REF_HINT)
    if not is_azureml_ref(text):
        raise InvalidRefError(f"{_short(raw)!r} is not an azureml:// reference", REF_HINT)
    rest = text[len(SCHEME) :]
    if any(c in rest for c in "?#\\%"):
        raise InvalidRefError(
            f"{_short(raw)!r} contains a query, fragment, backslash or percent-encoding", REF_HINT
        )
    return rest.rstrip("/").split("/")


def parse_azureml_ref(raw: str) -> AzureRef:
    """Validate `azureml://registries/<r>/models/<name>/(versions/<v>|labels/<label>)` (InvalidRefError: exit 2)."""
    seg = _segments(raw)
    if len(seg) != 6 or seg[0] != "registries" or seg[2] != "models" or seg[4] not in ("versions", "labels"):
        raise InvalidRefError(f"{_short(raw)!r} is not an Azure ML registry model reference", REF_HINT)
    registry = _check(seg[1], "registry", raw)
    name = _check(seg[3], "model name", raw)
    if seg[4] == "versions":
        version = _check(seg[5], "version", raw)
        if revision_problem(version):  # versions are recorded like Hub revisions
            raise InvalidRefError(f"version {version!r} in {_short(raw)!r} is invalid", REF_HINT)
        return AzureRef(registry, name, version=version)
    return AzureRef(registry, name, label=_check(seg[5], "label", raw))


def parse_catalog_ref(raw: str) -> str:
    """The registry of a catalog reference `azureml://registries/<registry>` (InvalidRefError: exit 2)."""
    seg = _segments(raw)
    if len(seg) != 2 or seg[0] != "registries":
        raise InvalidRefError(
            f"{_short(raw)!r} is not an Azure ML registry",
            "use azureml://registries/<registry>, e.g. azureml",
        )
    return _check(seg[1], "registry", raw)


def require_sdk() -> None:
    """Raise AzureExtraMissingError (exit 2) unless azure-ai-ml and azure-identity can be imported."""
    try:
        import azure.ai.ml  # noqa: F401
        import azure.identity  # noqa: F401
    except ImportError as exc:
        raise AzureExtraMissingError(
            f"azureml:// references need the Azure SDK (azure-ai-ml, azure-identity), which is not installed "
            f"({type(exc).__name__}: {redact_text(str(exc))[:120]})",
            INSTALL_HINT,
        ) from exc


def azureml_model_ref(raw: str) -> ModelRef:
    """REF `azureml://...` as a ModelRef (kind "azureml"); checks the reference, then the [azure] extra."""
    ref = parse_azureml_ref(raw)
    require_sdk()
    return ModelRef(
        raw=raw,
        kind="azureml",
        repo_id=ref.name,
        revision=ref.version,
        registry=ref.registry,
        label=ref.label,
    )


# ------------------------------------------------------------------ error mapping


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def map_azure_error(exc: BaseException, registry: str, what: str, phase: str = "model") -> CollectionError:
    """Translate an azure-core / azure-identity / azure-ai-ml exception into a one-line AuditError with a hint.

    `what` names the thing asked for (a model reference, a registry); `phase` is "registry" while the
    registry is discovered, "model" afterwards (a 404 then means the model or version is unknown).
    """
    from azure.core import exceptions as az

    name = type(exc).__name__
    detail = redact_text(" ".join(str(exc).split()))[:160]
    if name == "CredentialUnavailableError" or (
        isinstance(exc, az.ClientAuthenticationError) and getattr(exc, "status_code", None) is None
    ):
        return AzureCredentialError(
            f"no Azure credential was found to read registry '{registry}'",
            "sign in with `az login`, or set AZURE_TENANT_ID/AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or a "
            "federated token (azure/login in GitHub Actions), or run where a managed identity is assigned",
        )
    status = getattr(exc, "status_code", None)
    if isinstance(exc, az.ClientAuthenticationError) or status == 401:
        return AzureCredentialError(
            f"Azure refused the credential for registry '{registry}' (401)",
            "sign in again (`az login`) or renew the service principal's secret; check AZURE_TENANT_ID",
        )
    if status == 403:
        return AzureAccessError(
            f"no access to Azure ML registry '{registry}' (403)",
            "ask for read access to the registry (the AzureML Registry User role) or sign in to the tenant "
            "that owns it (`az account show`)",
        )
    if status == 404 or isinstance(exc, az.ResourceNotFoundError):
        if phase == "registry":
            return AzureModelNotFoundError(
                f"Azure ML registry '{registry}' was not found",
                "check the registry name (azureml, azureml-meta, HuggingFace, ...) in the Azure AI Foundry catalog",
            )
        return AzureModelNotFoundError(
            f"{what} was not found in registry '{registry}'",
            "check the model name and version in the catalog, or use .../labels/latest",
        )
    if status == 429:
        after = _retry_after(getattr(exc, "response", None))
        wait = f"{after:g} s" if after is not None else "a while"
        return AzureThrottledError(
            f"Azure throttled the requests for {what} (429, Retry-After: {wait})",
            f"wait {wait} and retry; for a shortlist, lower --workers",
            retry_after=after,
        )
    if status is not None and status >= 500:
        return AzureUnavailableError(
            f"Azure answered HTTP {status} for {what}", "retry later; see https://azure.status.microsoft"
        )
    if isinstance(exc, az.ServiceRequestError | az.ServiceResponseError | OSError | TimeoutError):
        return AzureUnavailableError(
            f"Azure could not be reached for {what} ({name})",
            "check the network, the proxy (HTTPS_PROXY) and the CA bundle (REQUESTS_CA_BUNDLE), then retry",
        )
    if name == "ValidationException":
        return AzureVersionNotFoundError(
            f"{what} could not be resolved in registry '{registry}': {detail}",
            "use .../versions/<version> or .../labels/latest",
        )
    if status is not None:
        return AzureUnavailableError(f"Azure answered HTTP {status} for {what}: {detail}", "retry later")
    return CollectionError(f"reading {what} from registry '{registry}' failed: {name}: {detail}", "")


# ------------------------------------------------------------------ the SDK


def _credential(credential: Any | None) -> Any:
    if credential is not None:
        return credential
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _client(registry: str, options: AuditOptions, credential: Any | None) -> Any:
    """An MLClient bound to the registry (discovers it: errors are mapped with phase "registry")."""
    require_sdk()
    from azure.ai.ml import MLClient

    try:
        return MLClient(
            _credential(credential),
            registry_name=registry,
            enable_telemetry=False,
            show_progress=False,
            retry_total=RETRY_TOTAL,
            connection_timeout=options.timeout,
            read_timeout=options.timeout,
        )
    except Exception as exc:  # noqa: BLE001 - every SDK failure becomes an AuditError
        raise map_azure_error(exc, registry, f"registry '{registry}'", phase="registry") from exc


@dataclass(frozen=True)
class CatalogEntry:
    """The parts of one registry model version the audit reads (from the SDK's Model entity)."""

    registry: str
    name: str
    version: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    created_at: str | None = None
    model_type: str | None = None
    flavors: dict[str, dict[str, str]] = field(default_factory=dict)


def _str_dict(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    out: dict[str, str] = {}
    for k, v in list(value.items())[:MAX_TAGS]:
        out[str(k)[:100]] = "" if v is None else str(v)[:MAX_TAG_CHARS]
    return out


def _entry(registry: str, model: Any) -> CatalogEntry:
    created = getattr(getattr(model, "creation_context", None), "created_at", None)
    flavors = getattr(model, "flavors", None) or {}
    return CatalogEntry(
        registry=registry,
        name=str(model.name),
        version=str(model.version),
        description=str(getattr(model, "description", None) or ""),
        tags=_str_dict(getattr(model, "tags", None)),
        properties=_str_dict(getattr(model, "properties", None)),
        created_at=created.isoformat() if isinstance(created, dt.datetime) else None,
        model_type=getattr(model, "type", None),
        flavors={str(k): _str_dict(v) for k, v in flavors.items()} if isinstance(flavors, dict) else {},
    )


def _versions(client: Any, name: str, limit: int = 10) -> list[str]:
    """Some versions of a model, for a hint (empty when it cannot be listed)."""
    try:
        return [str(m.version) for _, m in zip(range(limit), client.models.list(name=name), strict=False)]
    except Exception:  # noqa: BLE001 - only a hint
        return []


def fetch_entry(ref: AzureRef, options: AuditOptions, credential: Any | None = None) -> CatalogEntry:
    """Read one registry model version (a label is resolved to its version) through the SDK."""
    client = _client(ref.registry, options, credential)
    what = ref.asset_id()
    try:
        model = client.models.get(ref.name, version=ref.version, label=ref.label)
    except Exception as exc:  # noqa: BLE001
        err = map_azure_error(exc, ref.registry, what)
        if isinstance(err, AzureModelNotFoundError | AzureVersionNotFoundError) and (
            ref.version or ref.label
        ):
            versions = _versions(client, ref.name)
            if versions:
                asked = f"version '{ref.version}'" if ref.version else f"label '{ref.label}'"
                raise AzureVersionNotFoundError(
                    f"{asked} of model '{ref.name}' does not exist in registry '{ref.registry}'",
                    f"versions listed by the registry: {', '.join(versions)}; or use .../labels/latest",
                ) from exc
            raise AzureModelNotFoundError(
                f"model '{ref.name}' was not found in registry '{ref.registry}'",
                "check the model name in the Azure AI Foundry catalog (names are case-sensitive)",
            ) from exc
        raise err from exc
    return _entry(ref.registry, model)


# ------------------------------------------------------------------ facts


def str_items(value: str | None) -> tuple[str, ...]:
    """A tag value that holds a list: `[a, 'b']`, `a, b` or `a`; items stripped of quotes, bounded."""
    if not value:
        return ()
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    items = (x.strip().strip("'\"").strip() for x in text.split(",")[:MAX_LIST])
    return tuple(dict.fromkeys(x[:100] for x in items if x))


def _first(entry: CatalogEntry, key: str) -> tuple[str | None, str | None]:
    """A value from the tags, else from the properties, with where it was found."""
    for where, source in (("tag", entry.tags), ("property", entry.properties)):
        value = source.get(key)
        if value is not None and value.strip():
            return value.strip()[:200], f"catalog {where} '{key}'"
    return None, None


def catalog_facts(entry: CatalogEntry, requested: str = "") -> CatalogFacts:
    """What the entry states, field by field; what it does not state is listed in `not_stated`."""
    license_, license_source = _first(entry, "license")
    task, task_source = _first(entry, "task")
    if task is None:
        flavor_task = next((f.get("task") for f in entry.flavors.values() if f.get("task")), None)
        if flavor_task:
            task, task_source = flavor_task.strip()[:100], "the asset's MLmodel flavor 'task'"
    languages, _ = _first(entry, "languages")
    finetune = str_items(entry.tags.get("finetune_compute_allow_list")) or str_items(
        entry.properties.get("finetune-recommended-sku")
    )
    hub_id = (entry.tags.get("huggingface_model_id") or "").strip() or None
    facts = CatalogFacts(
        registry=entry.registry,
        name=entry.name,
        version=entry.version,
        asset_id=f"azureml://registries/{entry.registry}/models/{entry.name}/versions/{entry.version}",
        requested=requested,
        created_at=entry.created_at,
        license=license_,
        license_source=license_source,
        task=task,
        task_source=task_source,
        author=(entry.tags.get("author") or "").strip()[:200] or None,
        languages=str_items(languages),
        model_type=entry.model_type,
        inference_compute=str_items(entry.tags.get("inference_compute_allow_list"))
        or str_items(entry.properties.get("inference-recommended-sku")),
        finetune_compute=finetune,
        finetuning_tasks=str_items(entry.properties.get("finetuning-tasks")),
        inference_envs=str_items(entry.tags.get("inference_supported_envs")),
        security_scanned="hiddenlayerscanned" in entry.tags,
        datasets=str_items(entry.tags.get("datasets")),
        hub_model_id=hub_id[:200] if hub_id else None,
        hub_commit=(entry.properties.get("SHA") or "").strip()[:64] or None,
        tags=tuple(sorted((k, v[:200]) for k, v in entry.tags.items())),
    )
    labels = {
        "description": entry.description.strip(),
        "licence": facts.license,
        "task": facts.task,
        "author": facts.author,
        "languages": facts.languages,
        "creation time": facts.created_at,
        "inference compute": facts.inference_compute,
        "fine-tuning compute": facts.finetune_compute,
        "security scan": facts.security_scanned,
        "training datasets": facts.datasets,
        "Hub original": facts.hub_model_id,
        "weight files": facts.weight_files,
    }
    return replace(facts, not_stated=tuple(k for k, v in labels.items() if not v))


def _metadata(facts: CatalogFacts) -> dict[str, Any]:
    """Card metadata as the catalog states it (the keys a Hub card would use)."""
    meta: dict[str, Any] = {}
    if facts.license:
        meta["license"] = facts.license
    if facts.task:
        meta["pipeline_tag"] = facts.task
    if facts.languages:
        meta["language"] = list(facts.languages)
    if facts.datasets:
        meta["datasets"] = list(facts.datasets)
    return meta


def _tags(entry: CatalogEntry) -> tuple[str, ...]:
    """The entry's tags as Hub-style tags (`key` or `key:value` for short values)."""
    out = []
    for k, v in entry.tags.items():
        value = v.strip()
        out.append(k if not value else f"{k}:{value}" if len(value) <= 60 and "\n" not in value else k)
    return tuple(out[:MAX_TAGS])


def card_from_entry(
    entry: CatalogEntry, facts: CatalogFacts, options: AuditOptions, subject: str
) -> CardFacts:
    """Card facts from the entry: its description parsed as a card, its tags as the card's metadata."""
    from audit.collect import build_card_facts
    from audit.collect.cardparse import parse_card

    text = entry.description.encode("utf-8", "replace")
    parsed = (
        parse_card(
            text[: options.max_card_bytes],
            max_card_bytes=options.max_card_bytes,
            max_metadata_bytes=options.max_metadata_bytes,
            total_size=len(text),
        )
        if entry.description.strip()
        else None
    )
    if parsed is not None:
        # Tags win over any front matter the description itself carries: they are what the catalog shows.
        meta = {**parsed.metadata, **_metadata(facts)}
        parsed = replace(parsed, metadata=meta, has_front_matter=bool(entry.tags or entry.properties))
    hub = HubFacts(
        sha=entry.version,
        last_modified=facts.created_at,
        created_at=facts.created_at,
        pipeline_tag=facts.task,
        tags=_tags(entry),
    )
    return build_card_facts(
        subject,
        "azureml",
        parsed,
        options,
        resolved_revision=entry.version,
        hub=hub,
        files=facts.weight_files,
    )


def _follow_mirror(
    card: CardFacts, facts: CatalogFacts, options: AuditOptions
) -> tuple[CardFacts, CatalogFacts, dict[str, Any] | None]:
    """Read the Hub card a mirror names (at the commit it was mirrored from when stated): licence, datasets, size."""
    from audit.collect import collect_model
    from audit.errors import AuditError

    hub_id = facts.hub_model_id
    assert hub_id is not None
    problem = repo_id_problem(hub_id)
    if problem:
        note = f"the catalog's huggingface_model_id {hub_id[:80]!r} is not a Hub repo id: {problem}"
        return replace(card, problems=card.problems + (note,)), replace(facts, hub_error=note), None
    revision = facts.hub_commit if facts.hub_commit and not revision_problem(facts.hub_commit) else None
    hub_card: CardFacts | None = None
    config: dict[str, Any] | None = None
    notes: list[str] = []
    for rev in dict.fromkeys([revision, None]):
        try:
            hub_card, config = collect_model(
                ModelRef(raw=hub_id, kind="hub", repo_id=hub_id, revision=rev), options
            )
            break
        except RevisionNotFoundError as exc:
            notes.append(f"Hub original {hub_id} has no commit {rev} (the mirror's SHA): {exc.message}")
        except AuditError as exc:
            notes.append(f"Hub original {hub_id} could not be read: {redact_text(exc.message)}")
            break
    if hub_card is None:
        error = "; ".join(notes) or f"Hub original {hub_id} could not be read"
        return replace(card, problems=card.problems + (error,)), replace(facts, hub_error=error), None
    facts = replace(
        facts,
        hub_resolved_revision=hub_card.resolved_revision,
        hub_licenses=hub_card.licenses,
        hub_license_class=hub_card.license_class,
        hub_error="; ".join(notes) or None,
    )
    datasets = tuple(dict.fromkeys(card.datasets + hub_card.datasets))
    base_models = tuple(dict.fromkeys(card.base_models + hub_card.base_models))
    params, source = card.parameters, card.parameters_source
    if params is None and hub_card.parameters is not None:
        params, source = hub_card.parameters, f"Hub original {hub_id}: {hub_card.parameters_source}"
    card = replace(
        card,
        datasets=datasets,
        base_models=base_models,
        parameters=params,
        parameters_source=source,
        architecture=card.architecture or hub_card.architecture,
        problems=card.problems + tuple(notes),
    )
    if params is not None:
        from audit.collect import size_class

        card = replace(card, size_class=size_class(params, options.llm_threshold))
    return card, facts, config


def collect_azureml(
    ref: ModelRef, options: AuditOptions, *, credential: Any | None = None
) -> tuple[CardFacts, dict[str, Any] | None]:
    """Card facts of an Azure ML registry model (raises AuditError when the entry itself cannot be had)."""
    assert ref.registry is not None and ref.repo_id is not None
    aref = AzureRef(ref.registry, ref.repo_id, version=ref.revision, label=ref.label)
    # Validated again: a ModelRef may be built by hand, not only by parse_ref.
    parse_azureml_ref(aref.asset_id())
    entry = fetch_entry(aref, options, credential)
    facts = catalog_facts(entry, requested=ref.revision or f"label {ref.label}")
    card = card_from_entry(entry, facts, options, aref.subject)
    config = None
    if facts.hub_model_id:
        card, facts, config = _follow_mirror(card, facts, options)
    return replace(card, catalog=facts), config


# ------------------------------------------------------------------ findings


def _norm(licenses: Iterable[str]) -> set[str]:
    from audit.collect.licenses import normalise_license

    return {normalise_license(x) for x in licenses if x and x.strip()}


def catalog_findings(card: CardFacts) -> list[Finding]:
    """`license.catalog_mismatch`: the catalog entry and the Hub card it mirrors state different licences."""
    facts = card.catalog
    if facts is None or not facts.hub_model_id or not facts.license or facts.hub_license_class is None:
        return []
    catalog, hub = _norm([facts.license]), _norm(facts.hub_licenses)
    if not hub or catalog == hub:
        return []
    from audit.collect.licenses import classify_license, is_stricter
    from audit.findings import finding

    mine = classify_license(facts.license)
    stricter = is_stricter(facts.hub_license_class, mine) or facts.hub_license_class in ("missing", "other")
    return [
        finding(
            "license.catalog_mismatch",
            subject=card.subject,
            severity=Severity.high if stricter else Severity.medium,
            detail=f"The catalog entry states licence {facts.license} ({mine}) but the Hub card of "
            f"{facts.hub_model_id}, which it mirrors, declares {', '.join(facts.hub_licenses)} "
            f"({facts.hub_license_class}).",
            evidence=(
                f"{facts.license_source}: {facts.license}",
                f"Hub card {facts.hub_model_id}@{(facts.hub_resolved_revision or 'main')[:12]} license: "
                f"{', '.join(facts.hub_licenses)}",
            ),
        )
    ]


# ------------------------------------------------------------------ shortlists


def _matches(entry: CatalogEntry, task: str | None, search: str | None) -> bool:
    if task:
        facts = catalog_facts(entry)
        if (facts.task or "").lower() != task.lower():
            return False
    if search:
        hay = f"{entry.name} {entry.tags.get('displayName', '')}".lower()
        if search.lower() not in hay:
            return False
    return True


def iter_catalog(
    registry: str, options: AuditOptions | None = None, *, credential: Any | None = None
) -> Iterator[CatalogEntry]:
    """Every model in the registry at its latest version (one request per page, one per model)."""
    options = options or AuditOptions()
    client = _client(registry, options, credential)
    what = f"the model list of registry '{registry}'"
    try:
        containers = iter(client.models.list())
        while True:
            try:
                container = next(containers)
            except StopIteration:
                return
            latest = getattr(container, "latest_version", None)
            if not latest:
                continue
            model = client.models.get(str(container.name), version=str(latest))
            yield _entry(registry, model)
    except CollectionError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise map_azure_error(exc, registry, what) from exc


def list_catalog_models(
    registry: str,
    *,
    task: str | None = None,
    search: str | None = None,
    limit: int = 20,
    max_scan: int = 1000,
    options: AuditOptions | None = None,
    credential: Any | None = None,
) -> list[str]:
    """Candidate refs from a registry (`azureml://registries/<r>/models/<n>/versions/<latest>`), in listing order.

    `task` keeps models whose catalog task is that task (tag `task`, else the MLmodel flavor's);
    `search` keeps names (or display names) containing the text. At most `limit` refs; at most
    `max_scan` models are read.
    """
    if part_problem(registry, "registry"):
        parse_catalog_ref(f"{SCHEME}registries/{registry}")
    out: list[str] = []
    for scanned, entry in enumerate(iter_catalog(registry, options, credential=credential), start=1):
        if _matches(entry, task, search) and not part_problem(entry.name, "model name"):
            out.append(f"{SCHEME}registries/{registry}/models/{entry.name}/versions/{entry.version}")
        if len(out) >= limit or scanned >= max_scan:
            break
    return out
