"""Suite methods other than generation: each a Python function behind one small protocol.

A method gets the suite spec and a MethodContext (the model, options, data paths, seed) and
returns a ProbeResult plus findings. YAML picks a method by name; no code comes from YAML.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.config import ProbeOptions, Sampling, SuiteSpec
from audit.errors import UsageError
from audit.model import Finding, ProbeResult
from audit.progress import Progress, SilentProgress
from audit.suites import Prompt

# Backends that give access to a local model's internals (log-likelihoods, embeddings, probabilities).
MODEL_BACKENDS = ("hf",)


@dataclass
class MethodContext:
    """What a method may use: the model (lazily loaded), options, data paths and progress."""

    source: str | None
    revision: str | None
    popts: ProbeOptions
    seed: int
    progress: Progress = field(default_factory=SilentProgress)
    kind: str | None = None
    generator: Callable[[list[Prompt], Sampling], dict[str, list[str]]] | None = None
    suite: str = ""
    _model: Any = None

    def generate(self, prompts: list[Prompt], sampling: Sampling) -> dict[str, list[str]]:
        """k sampled outputs per prompt id, through the run's backend, cache and samples.jsonl (any backend)."""
        if self.generator is None:
            raise UsageError(
                f"suite {self.suite}: no backend is available to generate", "run it through `run`"
            )
        return self.generator(prompts, sampling)

    def model(self) -> Any:
        """The local model, for methods that need its internals (pseudo-log-likelihoods, embeddings,
        class probabilities, fill-mask): only the hf backend can serve them."""
        if self.popts.backend not in MODEL_BACKENDS:
            raise UsageError(
                f"suite {self.suite or '?'} needs the model's internals, which the {self.popts.backend} backend "
                "cannot serve",
                f"backends that can serve it: {', '.join(MODEL_BACKENDS)} (--backend hf on a model folder or Hub id)",
            )
        if self._model is None:
            from audit.sample.hf import HFModel

            if not self.source:
                raise UsageError("this suite needs a local model", "give a model folder or Hub id as REF")
            self._model = HFModel(
                self.source,
                self.revision,
                trust_remote_code=self.popts.trust_remote_code,
                device=self.popts.backend_options.get("device", "auto"),
            )
        return self._model

    def data_path(self, key: str, what: str) -> Path:
        """A data file or folder the user gave with --data KEY=PATH (never bundled)."""
        value = self.popts.data.get(key)
        if not value:
            raise UsageError(
                f"this suite needs {what}", f"pass --data {key}=PATH (public sets are never bundled)"
            )
        if value.startswith(("http://", "https://")):
            return download(value)
        path = Path(value)
        if not path.exists():
            raise UsageError(f"--data {key}: {path} does not exist", f"give the path to {what}")
        return path


def download(url: str) -> Path:
    """Fetch a data file the user named by URL into the cache (once); a hash of the URL names the copy."""
    import hashlib
    import urllib.request

    from audit.cache import cache_home
    from audit.fsutil import atomic_write

    name = hashlib.sha256(url.encode()).hexdigest()[:24] + Path(url.split("?")[0]).suffix
    target = cache_home() / "data" / name
    if target.exists():
        return target
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - a URL the user gave
            data = resp.read(200 * 1024 * 1024)
    except OSError as exc:
        raise UsageError(
            f"cannot download {url}: {exc}", "download it yourself and pass the local path"
        ) from None
    atomic_write(target, data)
    return target


MethodFn = Callable[[SuiteSpec, MethodContext], tuple[ProbeResult, list[Finding]]]


def run_method(spec: SuiteSpec, ctx: MethodContext) -> tuple[ProbeResult, list[Finding]]:
    """Dispatch a suite to its method."""
    from audit.registry import METHODS

    fn: MethodFn = METHODS.load(spec.method)
    served_by = getattr(sys.modules.get(fn.__module__), "SERVED_BY", None)
    if served_by is not None and ctx.popts.backend not in served_by:
        raise UsageError(
            f"suite {spec.id} needs the model's internals, which the {ctx.popts.backend} backend cannot serve",
            f"backends that can serve it: {', '.join(served_by)} (on a model folder or Hub id)",
        )
    return fn(spec, ctx)
