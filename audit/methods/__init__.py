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

from audit.cache import Cache, digest
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
    cache: Cache | None = None
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
            model = HFModel(
                self.source,
                self.revision,
                trust_remote_code=self.popts.trust_remote_code,
                device=self.popts.backend_options.get("device", "auto"),
            )
            self._model = CachedModel(model, self.cache, self.source, self.revision) if self.cache else model
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


class CachedModel:
    """A local model whose per-text calls (fill_mask, classify, embed) go through the run's cache.

    Keys are the model source and revision, the call, its arguments and the text: a repeated run of a
    method that needs model internals computes nothing it has computed before. Other attributes pass through.
    """

    def __init__(self, model: Any, cache: Cache, source: str, revision: str | None) -> None:
        self._inner, self._cache, self._id = model, cache, {"model": source, "revision": revision}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _cached(
        self, op: str, args: dict[str, Any], texts: list[str], compute: Callable[[list[str]], Any]
    ) -> list[Any]:
        keys = [digest({**self._id, "op": op, "args": args, "text": t}) for t in texts]
        have = self._cache.get_many("model", keys)
        todo = sorted({t for t, k in zip(texts, keys, strict=True) if k not in have})
        if todo:
            fresh = compute(todo)
            by_text = dict(zip(todo, fresh, strict=True))
            new = {k: by_text[t] for t, k in zip(texts, keys, strict=True) if k not in have}
            self._cache.put_many("model", new)
            have.update(new)
        return [have[k] for k in keys]

    def fill_mask(self, texts: list[str], top_k: int = 5) -> list[list[tuple[str, float]]]:
        rows = self._cached(
            "fill_mask", {"top_k": top_k}, texts, lambda t: self._inner.fill_mask(t, top_k=top_k)
        )
        return [[(str(w), float(p)) for w, p in row] for row in rows]

    def classify(self, texts: list[str]) -> list[dict[str, float]]:
        return [dict(r) for r in self._cached("classify", {}, texts, self._inner.classify)]

    def embed(self, texts: list[str]) -> Any:
        import numpy as np

        rows = self._cached("embed", {}, texts, lambda t: np.asarray(self._inner.embed(t)).tolist())
        return np.asarray(rows, dtype=np.float32)  # float32 survives the JSON round trip exactly


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
        ) from exc
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
