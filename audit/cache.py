"""A content-addressed cache of samples and scores (SQLite, one file), shared by all runs.

Keys are sha256 digests of everything that determines a value: for a sample, the model
revision, backend settings (never secrets), prompt, decoding parameters, seed and sample
index; for a score, the scorer, its version and options, and the text.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any


def cache_home() -> Path:
    """$MODEL_AUDIT_CACHE, else $XDG_CACHE_HOME/model-audit, else ~/.cache/model-audit."""
    if os.environ.get("MODEL_AUDIT_CACHE"):
        return Path(os.environ["MODEL_AUDIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "model-audit"


def digest(obj: Any) -> str:
    """A stable sha256 of JSON-able data."""
    return hashlib.sha256(
        json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()


class Cache:
    """Samples and scores by key. `enabled=False` (--no-cache) reads nothing and writes nothing."""

    def __init__(self, path: Path | None = None, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if enabled:
            path = path or cache_home() / "cache.sqlite"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS kv (ns TEXT, key TEXT, value TEXT, PRIMARY KEY (ns, key))"
            )
            self._db.commit()

    def get_many(self, ns: str, keys: list[str]) -> dict[str, Any]:
        if self._db is None or not keys:
            return {}
        out: dict[str, Any] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                q = f"SELECT key, value FROM kv WHERE ns = ? AND key IN ({','.join('?' * len(chunk))})"
                for k, v in self._db.execute(q, [ns, *chunk]):
                    out[k] = json.loads(v)
        return out

    def put_many(self, ns: str, items: dict[str, Any]) -> None:
        if self._db is None or not items:
            return
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO kv (ns, key, value) VALUES (?, ?, ?)",
                [(ns, k, json.dumps(v, ensure_ascii=False)) for k, v in items.items()],
            )
            self._db.commit()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
