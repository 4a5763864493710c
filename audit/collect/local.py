"""Model references, and the collector for local model folders and single card files."""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.collect.architecture import (
    MAX_CONFIG_BYTES,
    MAX_PARAMETERS,
    load_config_json,
    safetensors_parameters,
)
from audit.collect.cardfacts import is_repo_id
from audit.collect.refs import check_revision
from audit.errors import CollectionError, InvalidRefError
from audit.fsutil import file_kind, open_regular
from audit.model import ModelRef

MAX_FILES = 5000
MAX_SHARDS = 200
CARD_NAMES = ("README.md", "readme.md", "Readme.md", "MODEL_CARD.md", "model_card.md", "modelcard.md")
_HUB_URL = re.compile(r"^https?://(www\.)?(huggingface\.co|hf\.co)/")


def parse_ref(raw: str) -> ModelRef:
    """Parse REF: a local folder, a card file, or a Hub repo id with an optional @revision."""
    text = raw.strip()
    if not text:
        raise InvalidRefError(
            "REF is empty", "give a Hub repo id (org/name[@rev]), a model folder or a card .md file"
        )
    if text[:10].lower() == "azureml://":
        from audit.collect.azure import azureml_model_ref

        return azureml_model_ref(text)
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


UNSAFE_PREFIX = "unsafe entry: "  # problems with this prefix become the finding files.unsafe_entry
IMPLAUSIBLE_PREFIX = "implausible parameter count: "  # evidence of size.unknown
MAX_INDEX_BYTES = 16 * 1024 * 1024


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
    unsafe: list[str] = field(default_factory=list)  # FIFOs, devices, links or shard paths leaving the folder


def _roots(folder: Path) -> tuple[Path, ...]:
    """Where a file of the folder may really live: the folder, and for a Hub cache snapshot its blobs."""
    root = Path(os.path.realpath(folder))
    blobs = root.parent.parent / "blobs"
    if root.parent.name == "snapshots" and blobs.is_dir():
        return root, Path(os.path.realpath(blobs))
    return (root,)


@dataclass
class Entry:
    """A file of the model folder as checked before any read: its real path, or why it is refused."""

    rel: str
    real: Path | None = None
    problem: str | None = None  # missing or unreadable (a problem, not a finding)
    unsafe: str | None = None  # a FIFO, a device, a link or a path leaving the folder (never opened)


def check_entry(folder: Path, rel: str, roots: tuple[Path, ...] | None = None) -> Entry:
    """Check a relative path of the folder without opening it: only a regular file inside is usable."""
    roots = roots or _roots(folder)
    parts = rel.split("/")
    if (
        not rel
        or rel.startswith("/")
        or "\\" in rel
        or any(ord(ch) < 32 for ch in rel)
        or ".." in parts
        or re.match(r"^[A-Za-z]:", rel)
    ):
        return Entry(rel, unsafe=f"{rel!r} is a path outside the folder")
    path = folder / rel
    try:
        os.lstat(path)
    except OSError as exc:
        return Entry(rel, problem=f"{rel}: {exc.strerror or exc}")
    real = Path(os.path.realpath(path))
    if not any(real == r or real.is_relative_to(r) for r in roots):
        return Entry(rel, unsafe=f"{rel} is a link leaving the folder (to {real})")
    try:
        mode = os.stat(real).st_mode
    except OSError as exc:
        return Entry(rel, problem=f"{rel}: {exc.strerror or exc}")
    if not stat.S_ISREG(mode):
        if stat.S_ISDIR(mode):
            return Entry(rel, problem=f"{rel} is a folder, not a file")
        return Entry(rel, unsafe=f"{rel} is {file_kind(mode)}, not a regular file")
    return Entry(rel, real=real)


def read_regular(path: Path, limit: int) -> tuple[bytes, int]:
    """Up to `limit` bytes of a regular file and its size; never blocks on a FIFO or follows a link."""
    with open_regular(path) as (fh, st):
        return fh.read(min(limit, st.st_size)), st.st_size


def _read_card(path: Path, limit: int) -> tuple[bytes, int]:
    try:
        return read_regular(path, limit)
    except OSError as exc:
        raise CollectionError(
            f"cannot read {path}: {exc.strerror or exc}", "check the file's permissions"
        ) from exc


def list_files(root: Path, unsafe: list[str] | None = None) -> tuple[list[str], bool]:
    """Relative paths of the regular files under root (bounded; links not followed; .git and caches
    skipped). FIFOs, devices, sockets and links leaving root are left out and described in `unsafe`."""
    out: list[str] = []
    roots = _roots(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in {".git", ".cache", "__pycache__"})
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in sorted([*filenames, *links]):
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            entry = check_entry(root, rel, roots)
            if entry.unsafe:
                if unsafe is not None:
                    unsafe.append(entry.unsafe)
                continue
            if entry.real is None or name in links:
                continue
            out.append(rel)
            if len(out) >= MAX_FILES:
                return out, True
    return out, False


def _shards(folder: Path, files: list[str], out: LocalFetch, roots: tuple[Path, ...]) -> list[Path]:
    """The weight files to count: the shards an index names (checked), else the top-level ones."""
    shards = [f for f in files if f.endswith(".safetensors")]
    index = check_entry(folder, "model.safetensors.index.json", roots)
    if index.unsafe:
        return []
    if index.real is None:
        top = [f for f in shards if "/" not in f]
        checked = [check_entry(folder, f, roots).real for f in (top or shards)]
        return [p for p in checked if p is not None]
    try:
        data, size = read_regular(index.real, MAX_INDEX_BYTES)
        weight_map = json.loads(data).get("weight_map", {}) if size <= MAX_INDEX_BYTES else None
        names = sorted({str(v) for v in weight_map.values()}) if isinstance(weight_map, dict) else None
    except (ValueError, AttributeError, OSError, RecursionError):
        names = None
    if names is None:
        out.problems.append("model.safetensors.index.json is not a readable index")
        return []
    if len(names) > MAX_SHARDS:  # a partial sum would be reported as the model's size: unknown instead
        out.problems.append(
            f"model.safetensors.index.json names {len(names)} shards, more than the {MAX_SHARDS} read: "
            "the parameter count is not reported"
        )
        return []
    paths = []
    for name in names:
        entry = check_entry(folder, name, roots)
        if entry.unsafe:
            out.unsafe.append(f"model.safetensors.index.json names a shard {entry.unsafe}")
        elif entry.real is None:
            out.problems.append(f"model.safetensors.index.json names a missing shard: {entry.problem}")
        else:
            paths.append(entry.real)
    return paths if len(paths) == len(names) else []


def read_local_folder(folder: Path, max_card_bytes: int) -> LocalFetch:
    """Read a model folder as `huggingface-cli download` leaves it: card, config.json, weights.

    Only regular files inside the folder are read, each with a size check first; FIFOs, devices,
    sockets, links leaving the folder and index shard paths outside it are never opened: they are
    recorded as unsafe entries (the finding files.unsafe_entry).
    """
    out = LocalFetch()
    roots = _roots(folder)
    files, capped = list_files(folder, out.unsafe)
    out.files = tuple(files)
    if capped:
        out.problems.append(
            f"the folder holds more than {MAX_FILES} files; the first {MAX_FILES} were listed"
        )
    for name in CARD_NAMES:
        entry = check_entry(folder, name, roots)
        if entry.real is not None:
            out.card, out.card_size = _read_card(entry.real, max_card_bytes)
            out.card_path = name
            break
    cfg = check_entry(folder, "config.json", roots)
    if cfg.real is not None:
        try:
            data, size = read_regular(cfg.real, MAX_CONFIG_BYTES + 1)
            out.config = load_config_json(data) if size <= MAX_CONFIG_BYTES else None
        except OSError:
            out.config = None
        if out.config is None:
            out.problems.append("config.json is not a readable JSON object")
    shards = _shards(folder, files, out, roots)
    if shards:
        # More shards than are read: a partial sum would be reported as the size (all() below fails instead).
        counts = [safetensors_parameters(p) for p in shards] if len(shards) <= MAX_SHARDS else [None]
        if all(c is not None for c in counts):
            total = sum(c for c in counts if c is not None)
            if total > MAX_PARAMETERS:
                out.problems.append(
                    f"{IMPLAUSIBLE_PREFIX}the safetensors headers declare {total:.3g} parameters, "
                    f"above any physical model ({MAX_PARAMETERS:.0e}): not reported"
                )
            else:
                out.parameters = total
    out.problems.extend(UNSAFE_PREFIX + u for u in out.unsafe)
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
