"""Benchmark int8 scoring: a Detoxify-sized (bert-base) scorer in int8 against the float raw forward.

The model is the tests' Detoxify checkpoint builder at bert-base size (random weights, the real
bert-base vocabulary). The texts are ETHOS comments (../shared/data), length-sorted; both sides
score the same token-budget batches. "float raw forward" is tokenizer + `model(**enc)` in torch
(no pipeline code); "int8 scorer" is the DetoxifyScorer's int8 path (tokenizer + ONNX Runtime
int8 session, same batches). The export and quantisation (once per model per machine, cached) and
the calibration are timed apart. The agreement figures are those of the scorer's own self-check
(200 calibration texts) and over every text.

Usage: python benchmarks/bench_int8.py [--texts 512] [--target 2.0]
Exits 1 when int8 / float throughput is below the target.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=512)
    ap.add_argument("--target", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=2, help="timed passes of each side (best is kept)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    os.environ.setdefault("MODEL_AUDIT_CACHE", str(tmp / "cache"))
    import numpy as np
    import torch
    from bench_probe import build_bert_base_detoxify, texts

    from audit.score import quantize
    from audit.score.batching import budget_batches
    from audit.score.detoxify import DetoxifyScorer

    data = texts(args.texts)
    ckpt = build_bert_base_detoxify(tmp / "detox")
    scorer = DetoxifyScorer(checkpoint=str(ckpt), quantize="int8")
    engine = scorer.engine()
    lengths = engine.lengths(data)
    batches = budget_batches(lengths, engine.token_budget, engine.max_texts)
    print(
        f"{len(data)} ETHOS texts, {int(lengths.sum())} tokens, {len(batches)} length-sorted batches "
        f"(token budget {engine.token_budget}), torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}"
    )

    t0 = time.perf_counter()
    scorer.calibrate(data, seed=0)
    calib_s = time.perf_counter() - t0
    facts = scorer.info.quantization
    assert facts is not None
    if engine.int8 is None:  # the check failed: build the int8 model anyway, to time it
        engine.int8 = quantize.Int8Model.build(engine.model, engine.input_names)
    print(f"export + quantise + calibration: {calib_s:.1f} s (the int8 file is cached for later runs)")

    def float_raw() -> np.ndarray:
        out = np.empty((len(data), len(scorer.engine().model.config.id2label)))
        with torch.inference_mode():
            for idx in batches:
                enc = engine.tokenizer(
                    [data[i] for i in idx],
                    truncation=True,
                    max_length=engine.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                out[idx] = torch.sigmoid(engine.model(**enc)[0]).numpy()
        return out

    def int8_scorer() -> np.ndarray:
        return engine.probabilities(data, int8=True)

    # Both paths were warmed up by the calibration (200 texts each way).
    best: dict[str, float] = {}
    scores: dict[str, np.ndarray] = {}
    for name, fn in (("float raw forward", float_raw), ("int8 scorer", int8_scorer)):
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            scores[name] = fn()
            times.append(time.perf_counter() - t0)
        best[name] = min(times)
        print(
            f"{name:18s} {best[name]:7.2f} s = {len(data) / best[name]:6.1f} texts/s  "
            f"(passes: {', '.join(f'{t:.1f}' for t in times)} s)"
        )
    ratio = best["float raw forward"] / best["int8 scorer"]
    as_float, as_int8 = scores["float raw forward"], scores["int8 scorer"]
    r, diff, same = quantize.agreement(as_float, as_int8, 0.5)
    note = f" ({facts.note})" if facts.note else ""
    print(
        f"agreement, the scorer's self-check on {facts.n} calibration texts: r={facts.pearson_r}, "
        f"max |diff|={facts.max_abs_diff}, same side of 0.5: {facts.same_side} -> {facts.used} used{note}"
    )
    print(
        f"agreement over all {len(data)} texts x {as_float.shape[1]} labels: r={r}, max |diff|={diff:.4f}, "
        f"same side {same:.3f}; float score spread (std) {float(np.std(as_float)):.4f} "
        "(random weights: the scores sit near 0.5)"
    )
    print(f"int8 / float throughput = {ratio:.2f}x  (target >= {args.target}x)")
    ok = ratio >= args.target
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
