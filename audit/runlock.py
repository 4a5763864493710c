"""One writer per run folder: an advisory lock kept beside the folder, never inside it.

`run`, `render` and a resumed run take the lock of their output folder before they write.
A second writer fails at once (exit 2) naming the holder's pid. The lock file lives next to
the folder (`.<name>.lock`), so the folder's manifest and `verify` never see it. The next
writer also removes temp files that a killed atomic write left behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from audit.errors import UsageError

log = logging.getLogger("audit")


class RunFolderBusyError(UsageError):
    """Another process is writing the same run folder."""


def lock_paths(folder: Path) -> tuple[Path, Path]:
    """The lock file and its owner record, both beside the folder."""
    folder = folder.absolute()
    name = folder.name or "run"
    return folder.parent / f".{name}.lock", folder.parent / f".{name}.lock.owner"


class RunFolderLock:
    """Context manager: hold the run folder's lock, or raise RunFolderBusyError at once."""

    def __init__(self, folder: Path) -> None:
        from filelock import FileLock

        self.folder = folder
        self.lock_path, self.owner_path = lock_paths(folder)
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.lock_path), timeout=0, is_singleton=False)

    def __enter__(self) -> RunFolderLock:
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout as exc:
            raise RunFolderBusyError(
                f"run folder {self.folder} is being written by another process ({self._holder()})",
                "wait for that run to finish, or give this one another --out",
            ) from exc
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        with contextlib.suppress(OSError):
            self.owner_path.write_text(json.dumps(owner))
        remove_stale_temp_files(self.folder)
        return self

    def _holder(self) -> str:
        try:
            owner = json.loads(self.owner_path.read_text())
            return f"pid {int(owner['pid'])} on {owner.get('host', '?')}"
        except (OSError, ValueError, KeyError, TypeError):
            return "pid unknown"

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(OSError):
            self.owner_path.unlink()
        self._lock.release()


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Remove `.<file>.*.tmp` files a killed atomic write left in the folder (the lock is held)."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        name = entry.name
        if name.startswith(".") and name.endswith(".tmp") and entry.is_file() and not entry.is_symlink():
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    if removed:
        log.info("removed %d temp file(s) of an interrupted write in %s", len(removed), folder)
    return removed
