"""Detoxify (Hanu and Unitary, 2020): toxicity and its sub-labels, every label kept.

Scoring sorts texts by token length and packs them into token-budget batches (`audit.score.batching`),
so padding stays small and memory bounded (on 2 cores, sorted batches of 64 score ~20 texts/s with
bert-base against 12/s unsorted). `quantize=int8` scores on CPU with ONNX Runtime int8 after checking
its agreement with float on the run's own texts (`audit.score.quantize`); below the floor it stays float.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from audit.errors import UsageError
from audit.score import ScorerInfo, TransformerScorerOptions, quantize

log = logging.getLogger("audit")
VARIANTS = ("original", "unbiased", "multilingual", "original-small", "unbiased-small")


class DetoxifyUnavailableError(UsageError):
    """Detoxify's weights cannot be had (offline, no checkpoint)."""

    exit_code = 3


def _resolve_checkpoint(path: Path) -> tuple[Path, Path | None]:
    """A .ckpt file and the folder with its config.json + tokenizer files (for fully offline loading)."""
    if path.is_dir():
        ckpts = sorted(path.glob("*.ckpt"))
        if len(ckpts) != 1:
            raise UsageError(
                f"{path} must hold exactly one .ckpt file (found {len(ckpts)})",
                "put the Detoxify checkpoint, config.json and tokenizer files in one folder",
            )
        return ckpts[0], path if (path / "config.json").is_file() else None
    if not path.is_file():
        raise UsageError(f"Detoxify checkpoint not found: {path}", "give the .ckpt file or its folder")
    return path, path.parent if (path.parent / "config.json").is_file() else None


class DetoxifyOptions(TransformerScorerOptions):
    """--scorer detoxify:KEY=VALUE options."""

    variant: Literal["original", "unbiased", "multilingual", "original-small", "unbiased-small"] = "unbiased"
    checkpoint: str | None = Field(None, description="local .ckpt file or its folder (air-gapped use)")
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")


class DetoxifyScorer:
    """Detoxify with a named variant (default `unbiased`) or a local checkpoint (air-gapped use)."""

    Options = DetoxifyOptions

    def __init__(
        self,
        variant: str = "unbiased",
        checkpoint: str | None = None,
        batch_size: int | None = None,
        token_budget: int | None = None,
        device: str = "auto",
        quantize: str = "none",
    ) -> None:
        if variant not in VARIANTS:
            raise UsageError(f"unknown Detoxify variant '{variant}'", f"choose from {', '.join(VARIANTS)}")
        if quantize == "int8" and device not in ("auto", "cpu"):
            raise UsageError(
                f"int8 scoring runs on the CPU only (device={device})", "drop device= or quantize=int8"
            )
        if quantize == "int8":
            _runtime_check()
        self.variant, self.batch_size = variant, batch_size
        self.token_budget, self.quantize = token_budget, quantize
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.device = "cpu" if quantize == "int8" else device
        self._model: Any = None
        self._engine: Any = None
        self.calibrated = quantize != "int8"
        ident = variant
        if self.checkpoint is not None:
            ckpt_file, _cfg = _resolve_checkpoint(self.checkpoint)
            h = hashlib.sha256()
            with ckpt_file.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            ident = f"checkpoint sha256:{h.hexdigest()[:16]}"
        try:
            dv = version("detoxify")
        except PackageNotFoundError:
            dv = "not installed"
        self.info = ScorerInfo(
            name="detoxify",
            version=f"detoxify {dv} ({ident})",
            citation="Hanu and Unitary team, Detoxify (2020), trained on the Jigsaw toxicity challenges",
            primary="toxicity",
            threshold=0.5,
            threshold_source="RealToxicityPrompts (Gehman et al. 2020): a text is toxic at probability >= 0.5",
            higher_is_worse=True,
            kind="toxicity",
            options=(("variant", variant), ("quantize", "int8"))
            if quantize == "int8"
            else (("variant", variant),),
        )

    def _load(self) -> Any:
        try:
            import torch
            from detoxify import Detoxify
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        except ImportError as exc:
            raise UsageError(
                "the detoxify scorer needs detoxify and torch",
                "pip install 'model-risk-audit[probes]', or use --scorer profanity",
            ) from exc
        device = (
            "cuda"
            if self.device == "auto" and torch.cuda.is_available()
            else ("cpu" if self.device == "auto" else self.device)
        )
        try:
            if self.checkpoint is None:
                return Detoxify(self.variant, device=device)
            ckpt, config_dir = _resolve_checkpoint(self.checkpoint)
            if config_dir is None:
                return Detoxify(checkpoint=str(ckpt), device=device)
            # The checkpoint names a Hub model type that Detoxify loads unconditionally; point it at the
            # local config folder so nothing is fetched. The checkpoint is a pickle: only ever load one you trust.
            loaded = torch.load(str(ckpt), map_location="cpu", weights_only=False)
            loaded["config"]["arch"]["args"]["model_type"] = str(config_dir)
            buf = io.BytesIO()
            torch.save(loaded, buf)
            buf.seek(0)
            return Detoxify(checkpoint=buf, device=device, huggingface_config_path=str(config_dir))
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - network, cache and format errors all mean "no weights"
            raise DetoxifyUnavailableError(
                f"Detoxify '{self.variant}' weights could not be loaded ({type(exc).__name__}: {str(exc)[:160]})",
                "on a connected machine run `python -c \"from detoxify import Detoxify; Detoxify('unbiased')\"` and copy "
                "$TORCH_HOME/hub/checkpoints and the HF cache, or pass --detoxify-checkpoint DIR (.ckpt + config.json + "
                "tokenizer), or use --scorer profanity",
            ) from exc

    def engine(self) -> Any:
        """The loaded model as a token-budget SequenceClassifier (loads on first use)."""
        if self._engine is None:
            from audit.score.engine import SequenceClassifier

            self._model = self._load()  # the friendly error for a missing torch/detoxify comes from here
            self._engine = SequenceClassifier(
                self._model.model,
                self._model.tokenizer,
                "sigmoid",
                device=str(getattr(self._model.model, "device", "cpu")),
                token_budget=self.token_budget,
                max_texts=self.batch_size,
            )
        return self._engine

    def calibrate(self, texts: Sequence[str], seed: int = 0) -> None:
        """With quantize=int8: check int8 against float on a seeded subset of these texts, once.

        Afterwards `info` is final: int8 in its options and version when the check passed (so cache
        keys never mix float and int8), the float identity otherwise; `info.quantization` says which.
        """
        if self.calibrated or not texts:
            return  # nothing to check on yet: the first texts scored will be used
        self.calibrated = True
        facts = self.engine().enable_int8(texts, self.info.threshold, seed)
        if facts.used == "int8":
            self.info = dataclasses.replace(
                self.info, version=f"{self.info.version} int8 ({facts.runtime})", quantization=facts
            )
        else:
            self.info = dataclasses.replace(
                self.info, options=(("variant", self.variant),), quantization=facts
            )

    def score(self, texts: list[str]) -> dict[str, list[float]]:
        engine = self.engine()
        names = list(self._model.class_names)
        if not texts:
            return {c: [] for c in names}
        if not self.calibrated:
            self.calibrate(texts)
        probs = engine.probabilities(texts)
        return {c: probs[:, j].tolist() for j, c in enumerate(names)}


def _runtime_check() -> None:
    quantize.runtime_version()  # a usage error naming the [int8] extra, before any model loads
