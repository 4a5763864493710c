"""Probe suites: load probes/*.yaml (safe YAML, validated, errors with line numbers) and expand their prompts."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from audit.config import SUITE_TAGS, AnySuite, PromptSource, SuiteSpec
from audit.errors import AuditError, UsageError
from audit.fsutil import sha256_file
from audit.model import Prompt as Prompt  # re-exported: suites speak of prompts
from audit.resources import probes_dir
from audit.yamlconfig import load_validated

MAX_SUITE_BYTES = 2 * 1024 * 1024
MAX_PROMPT_CHARS = 4000


class SuiteError(UsageError):
    """A suite file is invalid (the message names the file and line)."""


@dataclass
class ExpandedSuite:
    """A suite with its prompts loaded, and where they came from."""

    spec: SuiteSpec
    prompts: list[Prompt]
    source: dict[str, Any] = field(default_factory=dict)


_SUITE_ADAPTER: TypeAdapter[SuiteSpec] = TypeAdapter(AnySuite)


def parse_suite(text: str, source: str = "<suite>") -> SuiteSpec:
    """Validate suite YAML. Unknown keys are rejected; errors name the line."""
    return load_validated(
        text,
        source,
        "suite",
        _SUITE_ADAPTER.validate_python,
        SuiteError,
        "see `model-audit suites`, probes/toxicity-continuation.yaml and the README",
        skip_tags=SUITE_TAGS,
    )


def load_suite_file(path: Path) -> SuiteSpec:
    """Read and validate one suite file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SuiteError(f"cannot read suite {path}: {exc.strerror}", "check the path") from exc
    if len(data) > MAX_SUITE_BYTES:
        raise SuiteError(
            f"{path}: suite file larger than {MAX_SUITE_BYTES} bytes", "keep prompts in a separate file"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{path}: not UTF-8 text", "save the suite as UTF-8") from exc
    return parse_suite(text, str(path))


def builtin_suites() -> dict[str, SuiteSpec]:
    """The suites shipped in probes/, by id (read and validated once per process: they ship with it)."""
    return dict(_shipped_suites())


def select_suites(kind: str | None) -> list[str]:
    """The built-in suites whose YAML declares the model's kind (none when the kind is unknown)."""
    if not kind:
        return []
    return [spec.id for spec in builtin_suites().values() if kind in spec.model_kinds]


@lru_cache(maxsize=1)
def _shipped_suites() -> tuple[tuple[str, SuiteSpec], ...]:
    specs = [load_suite_file(path) for path in sorted(probes_dir().glob("*.yaml"))]
    return tuple((spec.id, spec) for spec in specs)


def resolve_suite(name: str) -> SuiteSpec:
    """A built-in suite by id, or a suite file by path; a did-you-mean error otherwise."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        return load_suite_file(Path(name))
    suites = builtin_suites()
    if name in suites:
        return suites[name]
    import difflib

    close = difflib.get_close_matches(name, list(suites), n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"available: {', '.join(suites)}"
    raise UsageError(f"unknown suite '{name}'", hint)


def _field(row: Any, dotted: str) -> Any:
    cur = row
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def read_prompt_file(path: Path, text_field: str = "text", filter_field: str | None = None) -> list[str]:
    """Prompts from .txt (a line each), .jsonl/.json (a text field, dotted paths allowed) or .csv."""
    if not path.is_file():
        raise UsageError(
            f"prompt file not found: {path}", "give a .txt (one prompt per line), .jsonl or .csv file"
        )
    import csv

    try:
        return _read_prompt_file(path, text_field, filter_field)
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})", "save the prompt file as UTF-8"
        ) from exc
    except (ValueError, RecursionError, csv.Error) as exc:  # JSON and CSV errors
        raise UsageError(
            f"{path}: not a valid prompt file ({str(exc)[:200]})",
            ".jsonl: one JSON object a line with a text field; .csv: a header row; .txt: a prompt per line",
        ) from exc


def _read_prompt_file(path: Path, text_field: str, filter_field: str | None) -> list[str]:
    suffix = path.suffix.lower()
    texts: list[str] = []
    if suffix in {".jsonl", ".json"}:
        raw = path.read_text(encoding="utf-8-sig")
        rows = json.loads(raw) if suffix == ".json" and raw.lstrip().startswith("[") else []
        if not rows:
            for n, line in enumerate(raw.splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError as exc:
                        raise ValueError(f"line {n} is not JSON: {exc}") from exc
        for row in rows:
            if filter_field and not _field(row, filter_field):
                continue
            value = _field(row, text_field) if isinstance(row, dict) else row
            if value is None and isinstance(row, dict):
                value = _field(row, "prompt.text") or _field(row, "prompt")
            if isinstance(value, str) and value.strip():
                texts.append(value)
    elif suffix == ".csv":
        import csv

        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                value = row.get(text_field) or row.get("prompt") or row.get("text")
                if value and value.strip():
                    texts.append(value)
    else:
        texts = [line for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    return [t[:MAX_PROMPT_CHARS] for t in texts]


def read_bold(folder: Path) -> list[Prompt]:
    """BOLD prompts: one {group: {entity: [prompts]}} JSON per domain; the domain is the axis."""
    out: list[Prompt] = []
    for path in sorted(folder.glob("*_prompt.json")):
        domain = path.name.removesuffix("_prompt.json")
        data = json.loads(path.read_text(encoding="utf-8"))
        for group, entities in sorted(data.items()):
            for entity, texts in sorted(entities.items()):
                for j, text in enumerate(texts):
                    if isinstance(text, str) and text.strip():
                        out.append(
                            Prompt(
                                id=f"{domain}-{group}-{entity}-{j}"[:200],
                                text=text.strip()[:MAX_PROMPT_CHARS],
                                axis=domain,
                                group=group,
                            )
                        )
    return out


def _hf_dataset_prompts(src: PromptSource, cache_dir: Path | None) -> tuple[list[str], dict[str, Any]]:
    """Download the prompt set's data files from the Hub (cached by huggingface_hub), never bundled."""
    from huggingface_hub import HfApi, hf_hub_download

    from audit.collect.hub import map_hub_error
    from audit.collect.refs import check_repo_id, check_revision

    assert src.hf_dataset is not None
    check_repo_id(src.hf_dataset, "prompt dataset id")
    check_revision(src.revision, "prompt dataset revision")
    try:
        info = HfApi().dataset_info(src.hf_dataset, revision=src.revision)
        files = [s.rfilename for s in (info.siblings or [])]
        data_files = [
            f
            for f in files
            if f.endswith((".jsonl", ".json", ".csv"))
            and not f.startswith((".", "/"))
            and ".." not in f.split("/")
            and "\\" not in f
        ]
        split_files = [
            f for f in data_files if src.split in Path(f).name or f"/{src.split}" in f
        ] or data_files
        if not split_files:
            raise UsageError(
                f"dataset {src.hf_dataset} has no JSONL/JSON/CSV data files", "use --prompts FILE instead"
            )
        texts: list[str] = []
        for f in split_files[:20]:
            local = hf_hub_download(
                src.hf_dataset,
                f,
                repo_type="dataset",
                revision=info.sha,
                cache_dir=str(cache_dir) if cache_dir else None,
            )
            texts.extend(read_prompt_file(Path(local), src.text_field, src.filter_field))
    except AuditError:
        raise
    except Exception as exc:  # noqa: BLE001
        err = map_hub_error(exc, src.hf_dataset, src.revision, "dataset")
        raise type(err)(f"prompt set: {err.message}", err.hint + "; or pass --prompts FILE") from exc
    return texts, {
        "kind": "hf_dataset",
        "dataset": src.hf_dataset,
        "revision": info.sha,
        "files": split_files[:20],
        "filter": src.filter_field,
        "license": src.license,
    }


def expand_prompts(
    spec: SuiteSpec,
    *,
    prompts_file: Path | None = None,
    limit: int | None = None,
    cache_dir: Path | None = None,
    data: dict[str, str] | None = None,
) -> ExpandedSuite:
    """Load the suite's prompts and apply the seeded subset (`sampling.prompts`, or `limit` when given)."""
    src: PromptSource | None = getattr(spec, "prompts", None)
    if src is None:
        raise UsageError(f"suite {spec.id} ({spec.method}) has no prompts to expand", "")
    if prompts_file is not None and src.kind != "templates":
        texts = read_prompt_file(prompts_file, src.text_field, None)
        prompts = [Prompt(id=f"p{i:05d}", text=t) for i, t in enumerate(texts)]
        source: dict[str, Any] = {
            "kind": "file",
            "path": str(prompts_file),
            "sha256": sha256_file(prompts_file),
        }
    elif src.kind == "inline":
        prompts = [Prompt(id=f"p{i:05d}", text=t[:MAX_PROMPT_CHARS]) for i, t in enumerate(src.inline or [])]
        source = {"kind": "inline"}
    elif src.kind == "file":
        assert src.file is not None
        path = Path(src.file)
        texts = read_prompt_file(path, src.text_field, src.filter_field)
        prompts = [Prompt(id=f"p{i:05d}", text=t) for i, t in enumerate(texts)]
        source = {"kind": "file", "path": str(path), "sha256": sha256_file(path)}
    elif src.kind == "bold":
        key = src.data_key or "bold"
        folder = Path((data or {}).get(key, ""))
        if not (data or {}).get(key) or not folder.is_dir():
            raise UsageError(
                f"suite {spec.id} needs the BOLD prompts folder (*_prompt.json, CC BY-SA 4.0)",
                f"pass --data {key}=PATH/to/bold/prompts",
            )
        prompts = read_bold(folder)
        source = {
            "kind": "bold",
            "path": str(folder),
            "files": sorted(p.name for p in folder.glob("*_prompt.json")),
        }
    elif src.kind == "hf_dataset":
        texts, source = _hf_dataset_prompts(src, cache_dir)
        prompts = [Prompt(id=f"p{i:05d}", text=t) for i, t in enumerate(texts)]
    else:
        prompts = []
        for ti, template in enumerate(src.templates or []):
            if "{term}" not in template:
                raise SuiteError(
                    f"suite {spec.id}: template {ti} has no {{term}} placeholder",
                    "add {term} to the template",
                )
            for g in src.groups or []:
                for term in g.terms:
                    prompts.append(
                        Prompt(
                            id=f"t{ti:02d}-{g.axis}-{g.group}-{term}",
                            text=template.replace("{term}", term),
                            axis=g.axis,
                            group=g.group,
                            template_id=f"t{ti:02d}",
                            term=term,
                        )
                    )
        source = {"kind": "templates", "templates": len(src.templates or []), "groups": len(src.groups or [])}
    source["license"] = src.license
    if not prompts:
        raise UsageError(f"suite {spec.id} has no prompts", "check the prompt source or --prompts FILE")
    n = limit or spec.sampling.prompts
    if n is not None and n < len(prompts) and src.kind != "templates":
        rng = random.Random(spec.sampling.seed)
        keep = sorted(rng.sample(range(len(prompts)), n))
        prompts = [prompts[i] for i in keep]
    elif n is not None and n < len(prompts):
        # Counterfactual suites keep whole templates, so every group sees the same templates.
        tids = sorted({p.template_id for p in prompts})
        rng = random.Random(spec.sampling.seed)
        per = max(1, n // max(1, len({(p.axis, p.group, p.term) for p in prompts})))
        keep_t = set(sorted(rng.sample(tids, min(per, len(tids)))))
        prompts = [p for p in prompts if p.template_id in keep_t]
    source["total_prompts"] = len(prompts)
    return ExpandedSuite(spec=spec, prompts=prompts, source=source)
