"""Sample stage: backends that produce model outputs (local transformers, OpenAI-compatible, replay)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any, Protocol

from audit.config import Sampling
from audit.errors import UsageError
from audit.suites import Prompt

BACKENDS: dict[str, str] = {
    "hf": "audit.sample.hf:HFBackend",
    "openai": "audit.sample.openai:OpenAIBackend",
    "replay": "audit.sample.replay:ReplayBackend",
}


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


def available_backends() -> dict[str, str]:
    """Built-in backends plus those registered under the `model_audit.backends` entry-point group."""
    from importlib.metadata import entry_points

    found = dict(BACKENDS)
    for ep in entry_points(group="model_audit.backends"):
        found.setdefault(ep.name, ep.value)
    return found


def make_backend(name: str, **kwargs: Any) -> Backend:
    """Instantiate a backend by name (lazy import: torch only for `hf`)."""
    backends = available_backends()
    if name not in backends:
        raise UsageError(f"unknown backend '{name}'", f"choose from {', '.join(backends)}")
    module, _, attr = backends[name].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    backend: Backend = cls(**kwargs)
    return backend
