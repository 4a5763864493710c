"""Progress for long work: rich bars on a terminal, plain periodic log lines in CI or pipes."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

log = logging.getLogger("audit")


class Task(Protocol):
    def advance(self, n: int = 1) -> None: ...


class Progress(Protocol):
    """What the pipeline stages report progress to."""

    def task(self, description: str, total: int | None) -> AbstractContextManager[Task]: ...


class _NullTask:
    def advance(self, n: int = 1) -> None:
        pass


class SilentProgress:
    """Reports nothing (library use, tests)."""

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Task]:
        yield _NullTask()


class _LogTask:
    def __init__(self, description: str, total: int | None, every_s: float) -> None:
        self.description, self.total, self.every_s = description, total, every_s
        self.done = 0
        self.start = self.last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every_s or (self.total is not None and self.done >= self.total):
            self.last = now
            of = f"/{self.total}" if self.total is not None else ""
            log.info("%s: %d%s done (%.1fs)", self.description, self.done, of, now - self.start)


class LogProgress:
    """Plain log lines at most every `every_s` seconds and at the end of each task."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s = every_s

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Task]:
        log.info("%s: started%s", description, f" ({total} items)" if total is not None else "")
        yield _LogTask(description, total, self.every_s)


class _RichTask:
    def __init__(self, bar: object, task_id: object) -> None:
        self.bar, self.task_id = bar, task_id

    def advance(self, n: int = 1) -> None:
        self.bar.advance(self.task_id, n)  # type: ignore[attr-defined]


class RichProgress:
    """rich progress bars with counts and ETA, on stderr."""

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Task]:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichBar

        columns = [
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
        with RichBar(*columns, console=Console(stderr=True), transient=False) as bar:
            tid = bar.add_task(description, total=total)
            yield _RichTask(bar, tid)


def default_progress() -> Progress:
    """Rich bars on an interactive terminal; log lines when not on a terminal or in CI."""
    if sys.stderr.isatty() and not os.environ.get("CI"):
        return RichProgress()
    return LogProgress()
