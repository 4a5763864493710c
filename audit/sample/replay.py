"""The replay backend: outputs recorded elsewhere, as JSONL (suite, prompt_id, sample_index, output)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from audit.config import Sampling
from audit.errors import UsageError
from audit.registry import PluginOptions, coerce_options
from audit.suites import Prompt


class ReplayOptions(PluginOptions):
    """--backend-option keys of the replay backend."""

    file: str | None = None
    path: str | None = None  # an alias of file


class ReplayBackend:
    """Looks every (suite, prompt id, sample index) up in a JSONL file; nothing is generated."""

    name = "replay"
    Options = ReplayOptions

    def __init__(self, options: ReplayOptions | dict[str, str] | None = None, **_: Any) -> None:
        opts = coerce_options(ReplayOptions, options, "backend 'replay'")
        path = opts.file or opts.path
        if not path:
            raise UsageError(
                "the replay backend needs a file", "--backend replay --backend-option file=outputs.jsonl"
            )
        self.path = Path(path)
        if not self.path.is_file():
            raise UsageError(
                f"replay file not found: {self.path}",
                "record outputs as JSONL: suite, prompt_id, sample_index, output",
            )
        self.outputs: dict[tuple[str, str, int], str] = {}
        try:
            text = self.path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"{self.path}: not UTF-8 text (byte {exc.start}: {exc.reason})",
                "save the replay file as UTF-8 JSONL",
            ) from exc
        except OSError as exc:
            raise UsageError(
                f"cannot read {self.path}: {exc.strerror or exc}", "check the file's permissions"
            ) from exc
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                key = (str(row["suite"]), str(row["prompt_id"]), int(row["sample_index"]))
                output = row["output"]
            except (ValueError, KeyError, TypeError, RecursionError) as exc:
                raise UsageError(
                    f"{self.path}:{n}: not a replay record ({type(exc).__name__}: {str(exc)[:200]})",
                    'each line: {"suite", "prompt_id", "sample_index", "output"}',
                ) from exc
            if not isinstance(output, str):
                raise UsageError(f"{self.path}:{n}: output is not a string", "store the model's text output")
            self.outputs[key] = output

    def settings(self) -> dict[str, Any]:
        import hashlib

        return {"backend": "replay", "file_sha256": hashlib.sha256(self.path.read_bytes()).hexdigest()}

    def generate_many(
        self, suite: str, prompts: list[Prompt], sampling: Sampling, seeds: dict[str, int]
    ) -> Iterator[tuple[Prompt, list[str]]]:
        missing = [
            (p.id, i)
            for p in prompts
            for i in range(sampling.samples_per_prompt)
            if (suite, p.id, i) not in self.outputs
        ]
        if missing:
            example = ", ".join(f"{pid}#{i}" for pid, i in missing[:3])
            raise UsageError(
                f"the replay file lacks {len(missing)} outputs of suite {suite} (e.g. {example})",
                "record every prompt id and sample index, or lower --samples / --limit",
            )
        for p in prompts:
            yield p, [self.outputs[(suite, p.id, i)] for i in range(sampling.samples_per_prompt)]
