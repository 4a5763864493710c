"""The Hugging Face Hub collector: cards, `model_info`/`dataset_info` and config.json via huggingface_hub.

huggingface_hub honours HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE and its cache; this module
never reads or records the token itself. Library errors are mapped to the AuditError tree
with a hint that names the next step.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.config import AuditOptions
from audit.errors import (
    CollectionError,
    GatedRepoError,
    HubUnavailableError,
    OfflineCacheMissError,
    RepoNotFoundError,
    RevisionNotFoundError,
)
from audit.model import HubFacts

CARD_FILE = "README.md"


@dataclass
class HubFetch:
    """What the Hub gave us about one repo (model or dataset)."""

    card: bytes | None = None
    resolved_revision: str | None = None
    info: HubFacts | None = None
    info_error: str | None = None
    files: tuple[str, ...] = ()
    config: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def offline_mode() -> bool:
    """True when HF_HUB_OFFLINE asks huggingface_hub not to touch the network.

    huggingface_hub reads the variable once, at import; either source saying "offline" wins.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return True
    constants = sys.modules.get("huggingface_hub.constants")
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _cache(options: AuditOptions) -> str | None:
    return str(options.cache_dir) if options.cache_dir else None


def map_hub_error(
    exc: BaseException, repo_id: str, revision: str | None, repo_type: str = "model"
) -> CollectionError:
    """Translate a huggingface_hub / httpx exception into an AuditError with a hint."""
    from huggingface_hub import errors as hf

    kind = "dataset" if repo_type == "dataset" else "model"
    page = f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"
    token_set = bool(os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"))
    if isinstance(exc, hf.GatedRepoError):
        hint = (
            f"your token has no access yet: request it on {page} and retry"
            if token_set
            else f"request access on {page}, then set HF_TOKEN to a token of that account"
        )
        return GatedRepoError(f"{kind} repo '{repo_id}' is gated", hint)
    if isinstance(exc, hf.RepositoryNotFoundError):
        hint = "check the repo id; if it is private, set HF_TOKEN to a token that can read it"
        return RepoNotFoundError(f"{kind} repo '{repo_id}' was not found on the Hub", hint)
    if isinstance(exc, hf.RevisionNotFoundError):
        return RevisionNotFoundError(
            f"revision '{revision}' of {kind} repo '{repo_id}' does not exist",
            f"use a branch, tag or commit sha listed on {page}/tree/main",
        )
    if isinstance(exc, hf.OfflineModeIsEnabled | hf.LocalEntryNotFoundError):
        return OfflineCacheMissError(
            f"{kind} repo '{repo_id}' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set",
            "unset HF_HUB_OFFLINE and run once with network access to fill the cache, or audit a local folder",
        )
    if isinstance(exc, hf.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        if status == 401:
            return GatedRepoError(
                f"the Hub refused access to {kind} repo '{repo_id}' (401)",
                "set HF_TOKEN to a valid token (is it expired?)",
            )
        if status == 403:
            return GatedRepoError(
                f"the Hub refused access to {kind} repo '{repo_id}' (403)",
                f"request access on {page} or use a token with read permission",
            )
        return HubUnavailableError(
            f"the Hub answered HTTP {status} for {kind} repo '{repo_id}'",
            "retry later; with a filled cache, HF_HUB_OFFLINE=1 audits from the cache",
        )
    name = type(exc).__name__
    if isinstance(exc, OSError | TimeoutError) or "Timeout" in name or "Connect" in name or "Network" in name:
        return HubUnavailableError(
            f"the Hub could not be reached for {kind} repo '{repo_id}' ({name})",
            "check the network or HF_ENDPOINT; with a filled cache, set HF_HUB_OFFLINE=1",
        )
    return CollectionError(f"collecting {kind} repo '{repo_id}' failed: {name}: {str(exc)[:200]}", "")


def _download(
    repo_id: str, filename: str, revision: str | None, repo_type: str, options: AuditOptions, cache_only: bool
) -> Path:
    from huggingface_hub import hf_hub_download

    return Path(
        hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            repo_type=repo_type,
            cache_dir=_cache(options),
            etag_timeout=options.timeout,
            local_files_only=cache_only,
        )
    )


def _revision_from_cache_path(path: Path) -> str | None:
    """The commit a cached file belongs to (`.../snapshots/<sha>/file`)."""
    parts = path.parts
    if "snapshots" in parts:
        i = parts.index("snapshots")
        if i + 1 < len(parts):
            return parts[i + 1]
    return None


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    iso = getattr(value, "isoformat", None)
    return str(iso()) if callable(iso) else str(value)[:40]


def _read_limited(path: Path, limit: int) -> bytes:
    with path.open("rb") as fh:
        return fh.read(limit + 1)


def _hub_facts(info: Any) -> HubFacts:
    gated = getattr(info, "gated", None)
    st = getattr(info, "safetensors", None)
    total = getattr(st, "total", None) if st is not None else None
    card_data = getattr(info, "card_data", None)
    base = getattr(card_data, "base_model", None) if card_data is not None else None
    if isinstance(base, str):
        base_models: tuple[str, ...] = (base,)
    elif isinstance(base, list):
        base_models = tuple(str(b) for b in base if isinstance(b, str))
    else:
        base_models = tuple(str(b) for b in (getattr(info, "base_models", None) or []) if isinstance(b, str))
    tags = getattr(info, "tags", None) or []
    return HubFacts(
        sha=getattr(info, "sha", None),
        last_modified=_iso(getattr(info, "last_modified", None)),
        created_at=_iso(getattr(info, "created_at", None)),
        gated=str(gated) if gated not in (None, False) else None,
        private=getattr(info, "private", None),
        disabled=getattr(info, "disabled", None),
        downloads=getattr(info, "downloads", None),
        likes=getattr(info, "likes", None),
        library_name=getattr(info, "library_name", None),
        pipeline_tag=getattr(info, "pipeline_tag", None),
        tags=tuple(str(t)[:100] for t in tags[:200]),
        base_models=base_models[:20],
        safetensors_total=total if isinstance(total, int) else None,
    )


def fetch_repo(
    repo_id: str,
    revision: str | None,
    options: AuditOptions,
    *,
    repo_type: str = "model",
    want_config: bool = True,
) -> HubFetch:
    """Fetch a repo's card, metadata and (for models) config.json.

    Raises an AuditError when the repo itself cannot be had (not found, gated, offline
    cache miss, bad revision). A missing README leaves `card` None, and Hub metadata that
    cannot be had (offline) is recorded in `info_error`: both are findings, not failures.
    """
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hf

    from audit.collect.refs import check_repo_id, check_revision

    # Every part is checked before any call: huggingface_hub writes refs/<revision> into its cache.
    check_repo_id(repo_id, "dataset id" if repo_type == "dataset" else "repo id")
    check_revision(revision)
    out = HubFetch()
    api = HfApi()
    offline = options.offline or offline_mode()
    hub_down: CollectionError | None = None
    if not offline:
        try:
            getter = api.dataset_info if repo_type == "dataset" else api.model_info
            info = getter(repo_id, revision=revision, timeout=options.timeout)
            out.info = _hub_facts(info)
            out.resolved_revision = out.info.sha
            siblings = getattr(info, "siblings", None) or []
            out.files = tuple(str(s.rfilename) for s in siblings[:5000] if getattr(s, "rfilename", None))
        except (hf.RepositoryNotFoundError, hf.RevisionNotFoundError) as exc:
            raise map_hub_error(exc, repo_id, revision, repo_type) from exc
        except hf.HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            if status in (401, 403):
                raise map_hub_error(exc, repo_id, revision, repo_type) from exc
            hub_down = map_hub_error(exc, repo_id, revision, repo_type)
            out.info_error = str(hub_down)
        except Exception as exc:  # noqa: BLE001 - metadata is optional; the card may still be cached
            hub_down = map_hub_error(exc, repo_id, revision, repo_type)
            out.info_error = str(hub_down)
    else:
        out.info_error = "Hub metadata not collected: offline mode (HF_HUB_OFFLINE or the offline option)"
    # Download by the user's revision (so the cache learns the branch for later offline runs), then make
    # sure card, config and metadata come from one commit: if a commit landed in between, pin to info.sha.
    # When the Hub is failing, read the cache only: huggingface_hub would otherwise retry for ~25 s per file.
    cache_only = offline or hub_down is not None
    try:
        path = _download(repo_id, CARD_FILE, revision, repo_type, options, cache_only)
        if out.info is not None and out.info.sha and _revision_from_cache_path(path) != out.info.sha:
            path = _download(repo_id, CARD_FILE, out.info.sha, repo_type, options, cache_only)
        out.card = _read_limited(path, options.max_card_bytes)
        out.extra["card_size"] = path.stat().st_size
        out.resolved_revision = out.resolved_revision or _revision_from_cache_path(path)
    except hf.EntryNotFoundError as exc:
        if isinstance(exc, hf.LocalEntryNotFoundError) and out.info is None:
            if hub_down is not None:
                raise hub_down from exc
            raise map_hub_error(exc, repo_id, revision, repo_type) from exc
        out.card = None
    except Exception as exc:  # noqa: BLE001
        raise map_hub_error(exc, repo_id, revision, repo_type) from exc
    if repo_type == "model" and want_config and (not out.files or "config.json" in out.files):
        try:
            pinned = out.resolved_revision or revision
            cpath = _download(repo_id, "config.json", pinned, repo_type, options, cache_only)
            from audit.collect.architecture import MAX_CONFIG_BYTES, load_config_json

            out.config = load_config_json(_read_limited(cpath, MAX_CONFIG_BYTES))
        except Exception:  # noqa: BLE001 - a model without config.json is possible (GGUF, adapters)
            out.config = None
    return out
