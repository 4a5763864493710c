"""Sample stage: backends that produce model outputs (local transformers, OpenAI-compatible, replay)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from audit.config import Sampling
from audit.errors import UsageError
from audit.suites import Prompt


class Backend(Protocol):
    """Produces k outputs per prompt. `settings()` goes into cache keys and the report: never secrets."""

    name: str

    def settings(self) -> dict[str, Any]: ...

    def generate_many(
        self, suite: str, prompts: list[Prompt], sampling: Sampling, seeds: dict[str, int]
    ) -> Iterator[tuple[Prompt, list[str]]]: ...


def parse_backend_options(pairs: list[str]) -> dict[str, str]:
    """--backend-option KEY=VALUE ... -> dict."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(
                f"--backend-option '{pair}' is not KEY=VALUE",
                "for example --backend-option base_url=http://localhost:8000/v1",
            )
        out[key.strip()] = value.strip()
    return out


def available_backends() -> list[str]:
    """Every registered backend (the built-ins come through the same entry points as third parties)."""
    from audit.registry import BACKENDS

    return BACKENDS.names()


def make_backend(name: str, options: dict[str, str] | None = None, **context: Any) -> Backend:
    """Build a backend by name: options validated against its Options first, lazy import (torch only for hf)."""
    from audit.registry import BACKENDS

    backend: Backend = BACKENDS.create(name, options or {}, **context)
    return backend


def is_remote(name: str) -> bool:
    """Whether a backend serves a model from an endpoint (class attribute `remote = True`): then a REF that
    is not a Hub id or a folder is the endpoint's model name, and the report says there is no card."""
    from audit.registry import BACKENDS

    return bool(getattr(BACKENDS.load(name), "remote", False))
