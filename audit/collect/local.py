"""Model references, and the collector for local model folders and single card files."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.collect.architecture import MAX_CONFIG_BYTES, load_config_json, safetensors_parameters
from audit.collect.cardfacts import is_repo_id
from audit.collect.refs import check_revision
from audit.errors import CollectionError, InvalidRefError
from audit.model import ModelRef

MAX_FILES = 5000
CARD_NAMES = ("README.md", "readme.md", "Readme.md", "MODEL_CARD.md", "model_card.md", "modelcard.md")
_HUB_URL = re.compile(r"^https?://(www\.)?(huggingface\.co|hf\.co)/")


def parse_ref(raw: str) -> ModelRef:
    """Parse REF: a local folder, a card file, or a Hub repo id with an optional @revision."""
    text = raw.strip()
    if not text:
        raise InvalidRefError(
            "REF is empty", "give a Hub repo id (org/name[@rev]), a model folder or a card .md file"
        )
    path = Path(text).expanduser()
    if path.is_dir():
        return ModelRef(raw=raw, kind="local-folder", path=str(path.resolve()))
    if path.is_file():
        return ModelRef(raw=raw, kind="card-file", path=str(path.resolve()))
    looks_local = text.startswith((".", "/", "~")) or text.endswith(".md") or os.sep in text.replace("/", "")
    if looks_local:
        raise InvalidRefError(
            f"no such file or folder: {text}", "check the path, or give a Hub repo id like org/name"
        )
    text = _HUB_URL.sub("", text).strip("/")
    text = re.sub(r"/tree/([^/]+)$", r"@\1", text)
    repo_id, _, revision = text.partition("@")
    if not is_repo_id(repo_id) or repo_id.count("/") > 1:
        raise InvalidRefError(
            f"'{raw}' is not a Hub repo id, a model folder or a card file",
            "use org/name or org/name@revision for the Hub, or an existing path",
        )
    if "@" in text and not revision:
        raise InvalidRefError(
            f"'{raw}' has an empty revision after '@'", "use org/name@branch, @tag or @commit-sha"
        )
    check_revision(revision or None)
    return ModelRef(raw=raw, kind="hub", repo_id=repo_id, revision=revision or None)


@dataclass
class LocalFetch:
    """What a local folder or card file gave us."""

    card: bytes | None = None
    card_path: str | None = None
    card_size: int = 0
    files: tuple[str, ...] = ()
    config: dict[str, Any] | None = None
    parameters: int | None = None
    problems: list[str] = field(default_factory=list)


def _read_card(path: Path, limit: int) -> tuple[bytes, int]:
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            return fh.read(limit), size
    except OSError as exc:
        raise CollectionError(
            f"cannot read {path}: {exc.strerror or exc}", "check the file's permissions"
        ) from None


def list_files(root: Path) -> tuple[list[str], bool]:
    """Relative file paths under root (bounded; symlinks not followed; .git and caches skipped)."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in {".git", ".cache", "__pycache__"})
        for name in sorted(filenames):
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            out.append(rel.replace(os.sep, "/"))
            if len(out) >= MAX_FILES:
                return out, True
    return out, False


def read_local_folder(folder: Path, max_card_bytes: int) -> LocalFetch:
    """Read a model folder as `huggingface-cli download` leaves it: card, config.json, weights."""
    out = LocalFetch()
    files, capped = list_files(folder)
    out.files = tuple(files)
    if capped:
        out.problems.append(
            f"the folder holds more than {MAX_FILES} files; the first {MAX_FILES} were listed"
        )
    for name in CARD_NAMES:
        p = folder / name
        if p.is_file():
            out.card, out.card_size = _read_card(p, max_card_bytes)
            out.card_path = name
            break
    cfg = folder / "config.json"
    if cfg.is_file():
        try:
            with cfg.open("rb") as fh:
                out.config = load_config_json(fh.read(MAX_CONFIG_BYTES + 1))
        except OSError:
            out.config = None
        if out.config is None:
            out.problems.append("config.json is not a readable JSON object")
    shards = [folder / f for f in files if f.endswith(".safetensors")]
    # Sentence-transformers and diffusers folders may hold several models; count the top-level weights
    # (or the shards an index names) so one model is not counted twice.
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            names = set(json.loads(index.read_bytes()[:MAX_CONFIG_BYTES]).get("weight_map", {}).values())
            shards = [folder / n for n in names]
        except (ValueError, AttributeError, OSError):
            pass
    else:
        top = [p for p in shards if p.parent == folder]
        shards = top or shards
    if shards:
        counts = [safetensors_parameters(p) for p in shards[:200]]
        if all(c is not None for c in counts):
            out.parameters = sum(c for c in counts if c is not None)
    return out


def read_card_file(path: Path, max_card_bytes: int) -> LocalFetch:
    """Read a single card file."""
    out = LocalFetch()
    out.card, out.card_size = _read_card(path, max_card_bytes)
    out.card_path = path.name
    return out


def find_local_dataset_card(folder: Path, dataset_id: str) -> Path | None:
    """Look up a dataset card in a local mirror folder (`org__name.md`, `org/name/README.md` or `org/name.md`)."""
    if not is_repo_id(dataset_id):
        return None
    flat = dataset_id.replace("/", "__")
    for cand in (folder / f"{flat}.md", folder / dataset_id / "README.md", folder / f"{dataset_id}.md"):
        try:
            resolved = cand.resolve()
            if resolved.is_file() and resolved.is_relative_to(folder.resolve()):
                return resolved
        except (OSError, ValueError):
            continue
    return None
