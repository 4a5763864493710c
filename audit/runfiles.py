"""The run folder's record files: `samples.jsonl` and `scores.jsonl`. The only module that reads and
writes them (the probe runner and drift use it).

Records are appended as they are produced (flushed and fsynced), keyed (`key` for samples, `skey` for
scores), so a resumed run never appends a key twice; a torn or repeated line is dropped on read,
wherever it is and whoever wrote it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from audit.fsutil import atomic_write
from audit.model import SampleRecord, ScoreRecord

log = logging.getLogger("audit")
SAMPLES = "samples.jsonl"
SCORES = "scores.jsonl"


class RunFiles:
    """samples.jsonl / scores.jsonl in the run directory: read back on resume, appended as produced."""

    samples: dict[str, SampleRecord]
    scores: dict[str, ScoreRecord]

    def __init__(self, out_dir: Path, fresh: bool) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.samples_path = out_dir / "samples.jsonl"
        self.scores_path = out_dir / "scores.jsonl"
        if fresh:
            for p in (self.samples_path, self.scores_path):
                p.unlink(missing_ok=True)
        self.samples = cast("dict[str, SampleRecord]", self._read(self.samples_path, "key"))
        self.scores = cast("dict[str, ScoreRecord]", self._read(self.scores_path, "skey"))

    @staticmethod
    def _read(path: Path, key: str) -> dict[str, dict[str, Any]]:
        """Records by key. A torn, unparsable or repeated line is dropped, wherever it is and whoever
        wrote it; when any was dropped the file is rewritten atomically with the good records only."""
        if not path.exists():
            return {}
        raw = path.read_bytes()
        records: dict[str, dict[str, Any]] = {}
        dropped = 0
        for line in raw.split(b"\n"):
            if not line:
                continue
            try:
                rec = json.loads(line)
                k = rec[key] if isinstance(rec, dict) else None
            except (ValueError, KeyError):
                k = None
            if not isinstance(k, str) or k in records:
                dropped += 1  # torn by a killed run, or a key written twice
                continue
            records[k] = rec
        if dropped:
            log.info("%s: dropped %d torn or repeated line(s)", path.name, dropped)
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records.values())
            atomic_write(path, data.encode())
        return records

    @staticmethod
    def append(path: Path, records: Sequence[SampleRecord] | Sequence[ScoreRecord]) -> None:
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
        with path.open("ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def read_records(folder: Path, name: str) -> list[dict[str, Any]]:
    """The records of one run file (read-only: nothing is rewritten), torn and repeated lines dropped."""
    path = folder / name
    if not path.is_file():
        return []
    key = "skey" if name == SCORES else "key"
    out: dict[str, dict[str, Any]] = {}
    for line in path.read_bytes().split(b"\n"):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get(key), str):
            out.setdefault(rec[key], rec)
    return list(out.values())
