"""int8 scoring on CPU: ONNX Runtime dynamic quantisation of a classifier, and its agreement check.

The model is exported to ONNX (`torch.onnx.export`) and its linear layers' weights are quantised to
int8 with `onnxruntime.quantization.quantize_dynamic` (activations are quantised per batch at run
time). ONNX Runtime is the maintained path: `torch.ao.quantization.quantize_dynamic` is deprecated,
and torchao's int8 dynamic configuration ran slower than float on this CPU build without
`torch.compile`. The quantised file is cached (keyed by a digest of the weights), so a model is
exported once per machine.

Every run checks itself: a seeded calibration subset of the run's texts (200, or all of them when
fewer) is scored both ways; Pearson r, the largest absolute difference and the share of texts on
the same side of the threshold are recorded, and below the floor the scorer falls back to float.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from audit.cache import cache_home
from audit.errors import UsageError
from audit.model import QuantizationFacts

log = logging.getLogger("audit")

CALIBRATION_TEXTS = 200
FLOOR_R = 0.99  # Pearson r between float and int8 scores, over every label
FLOOR_SAME_SIDE = 0.95  # share of texts on the same side of the threshold, for every label
FLOOR = f"Pearson r >= {FLOOR_R} and >= {FLOOR_SAME_SIDE:.0%} of texts on the same side of the threshold"
EXPORT_CHECK_TOL = 1e-3  # the float ONNX export must reproduce torch's logits this closely


def runtime_version() -> str:
    """The ONNX Runtime version, or a usage error naming the extra to install."""
    try:
        return version("onnxruntime")
    except PackageNotFoundError:
        raise UsageError(
            "int8 scoring needs onnxruntime and onnx",
            "pip install 'model-risk-audit[int8]', or drop quantize=int8",
        ) from None


def runtime_label() -> str:
    return f"onnxruntime {runtime_version()} dynamic quantisation (int8 per-channel weights of the linear layers)"


def weights_digest(model: Any) -> str:
    """sha256 over the model's parameter and buffer names, shapes and bytes (the int8 file's cache key)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        arr = t.detach().cpu().contiguous().numpy()
        h.update(f"{name}:{arr.dtype}:{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def quantize_file(src: Path, dst: Path) -> None:
    """Quantise an ONNX file's weights to int8 (linear layers; a seam for tests that degrade it)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class _Quiet(logging.Filter):  # its "consider pre-processing" advice goes to the root logger
        def filter(self, record: logging.LogRecord) -> bool:
            return "pre-processing" not in record.getMessage()

    import onnx

    graph = onnx.load(str(src), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    # Linear layers only (a weight among the inputs): attention's activation x activation products stay float.
    skip = [
        n.name
        for n in graph.node
        if n.op_type in ("MatMul", "Gemm") and not any(x in weights for x in n.input)
    ]
    quiet, root = _Quiet(), logging.getLogger()
    root.addFilter(quiet)
    try:
        # Per output channel: on a MiniLM classifier r rose from 0.968 to 0.989 against per-tensor scales.
        quantize_dynamic(
            str(src),
            str(dst),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Gemm"],
            nodes_to_exclude=skip,
        )
    finally:
        root.removeFilter(quiet)


class Int8Model:
    """A sequence classifier as an int8 ONNX Runtime session: `logits(feed)` takes the tokenizer's arrays."""

    def __init__(self, path: Path, input_names: Sequence[str], threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or max(1, len(os.sched_getaffinity(0)))
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.path = path
        self.input_names = tuple(input_names)
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    @classmethod
    def build(cls, model: Any, input_names: Sequence[str], cache_dir: Path | None = None) -> Int8Model:
        """Export (once per weights digest) and load the int8 model."""
        runtime_version()
        key = hashlib.sha256(f"{weights_digest(model)}|{runtime_version()}|{tuple(input_names)}".encode())
        folder = (cache_dir or cache_home() / "int8") / key.hexdigest()[:32]
        target = folder / "model.int8.onnx"
        if not target.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                fp32, int8 = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
                export_onnx(model, input_names, fp32)
                quantize_file(fp32, int8)
                os.replace(int8, target)  # atomic: a concurrent run sees the whole file or none
                for extra in Path(tmp).iterdir():
                    if extra.is_file() and extra.name.startswith("model.int8.onnx"):
                        shutil.move(str(extra), folder / extra.name)  # external data, if any
        return cls(target, input_names)

    def logits(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        arrays = {n: np.ascontiguousarray(feed[n], dtype=np.int64) for n in self.input_names}
        out = self.session.run(None, arrays)[0]
        return np.asarray(out, dtype=np.float32)


def export_onnx(model: Any, input_names: Sequence[str], path: Path) -> None:
    """Export the classifier's logits to ONNX (dynamic batch and length), checked against torch."""
    import warnings

    import torch

    names = tuple(input_names)

    class Logits(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            logits: torch.Tensor = self.inner(**dict(zip(names, tensors, strict=True)))[0]
            return logits

    wrapper = Logits(model).eval()

    vocab = int(getattr(model.config, "vocab_size", 100) or 100)

    def example(batch: int, length: int, pad: int) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(batch * 1000 + length)
        ids = torch.randint(min(5, vocab - 1), min(vocab, 1000), (batch, length), generator=g)
        mask = torch.ones(batch, length, dtype=torch.long)
        if pad:
            mask[0, length - pad :] = 0
            ids[0, length - pad :] = 0
        parts = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
        return tuple(parts[n] for n in names)

    axes = {n: {0: "batch", 1: "length"} for n in names}
    axes["logits"] = {0: "batch"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            example(2, 16, 3),
            str(path),
            input_names=list(names),
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
        # A graph traced at one shape must hold at others (padding included), or it is not used.
        import onnxruntime as ort

        check = example(3, 9, 4)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = sess.run(None, {n: t.numpy() for n, t in zip(names, check, strict=True)})[0]
        want = wrapper(*check).numpy()
    if got.shape != want.shape or float(np.abs(got - want).max()) > EXPORT_CHECK_TOL:
        raise RuntimeError("the ONNX export does not reproduce the model at another shape")


def calibration_subset(texts: Sequence[str], seed: int, n: int = CALIBRATION_TEXTS) -> list[str]:
    """A seeded subset of the distinct texts (all of them when there are n or fewer), independent of order."""
    distinct = sorted(set(texts), key=lambda t: hashlib.sha256(t.encode("utf-8", "replace")).hexdigest())
    if len(distinct) <= n:
        return distinct
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(distinct), size=n, replace=False))
    return [distinct[i] for i in pick]


def agreement(
    float_scores: np.ndarray, int8_scores: np.ndarray, threshold: float
) -> tuple[float | None, float, float]:
    """(Pearson r over every label, largest absolute difference, lowest per-label same-side share).

    Scores are (texts, labels). r is None when float scores do not vary (nothing to correlate).
    """
    a, b = np.asarray(float_scores, dtype=np.float64), np.asarray(int8_scores, dtype=np.float64)
    if a.size == 0:
        return None, 0.0, 1.0
    diff = float(np.abs(a - b).max())
    r: float | None = None
    if float(a.std()) > 0 and float(b.std()) > 0:
        r = float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    same = float(((a >= threshold) == (b >= threshold)).mean(axis=0).min())
    return r, diff, same


def check(
    float_scores: np.ndarray, int8_scores: np.ndarray, threshold: float, runtime: str
) -> QuantizationFacts:
    """The agreement facts and whether int8 may be used (used="int8") or the run falls back (used="float")."""
    n = int(np.asarray(float_scores).shape[0])
    r, diff, same = agreement(float_scores, int8_scores, threshold)
    problems = []
    if not np.isfinite(np.asarray(int8_scores, dtype=np.float64)).all():
        problems.append("the int8 model gave non-finite scores (NaN or infinity)")
    if not np.isfinite(np.asarray(float_scores, dtype=np.float64)).all():
        problems.append("the float model gave non-finite scores (NaN or infinity)")
    finite_diff = bool(np.isfinite(diff))
    if n == 0:
        problems.append("no texts to calibrate on")
    if r is not None and r < FLOOR_R:
        problems.append(f"Pearson r {r:.4f} < {FLOOR_R}")
    if r is None and diff > 1e-3:
        problems.append(f"float scores do not vary while int8 differs by up to {diff:.4f}")
    if same < FLOOR_SAME_SIDE:
        problems.append(f"only {same:.1%} of texts on the same side of {threshold}")
    note = ""
    if problems:
        note = "int8 agreement below the floor (" + "; ".join(problems) + "): the run fell back to float"
    return QuantizationFacts(
        requested="int8",
        used="float" if problems else "int8",
        runtime=runtime,
        n=n,
        pearson_r=None if r is None else round(r, 6),
        max_abs_diff=round(diff, 6) if finite_diff else None,
        same_side=round(same, 6),
        threshold=threshold,
        floor=FLOOR,
        note=note,
    )


def failed(reason: str, threshold: float, runtime: str) -> QuantizationFacts:
    """Facts for int8 that could not be built at all (the run is in float)."""
    return QuantizationFacts(
        requested="int8",
        used="float",
        runtime=runtime,
        n=0,
        pearson_r=None,
        max_abs_diff=None,
        same_side=None,
        threshold=threshold,
        floor=FLOOR,
        note=f"int8 model could not be built ({reason[:200]}): the run fell back to float",
    )
