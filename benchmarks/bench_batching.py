"""Benchmark token-budget batches against fixed batches of 64 (both length-sorted), bert-base Detoxify.

Two sets: short texts (ToxiGen statements, tweet-sized) and a mixed-length set (the same statements
plus long ETHOS comments, ~1 in 8). Both sides run the same forward (`SequenceClassifier.logits`),
only the batches differ: fixed = 64 texts a batch (the old Detoxify default), budget = packed up to
the CPU token budget (padded length x batch size). Peak memory: the largest batch in padded tokens
(what activations scale with) and the process's peak RSS above its baseline while scoring (sampled
every 5 ms from /proc/self/statm).

Usage: python benchmarks/bench_batching.py [--short 512] [--long 64] [--repeats 2]
Exits 1 when budget / fixed throughput is below 1.0x on short texts or below 1.2x on the mixed set.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
SHARED = ROOT.parent / "shared" / "data"


def short_texts(n: int) -> list[str]:
    """Tweet-sized statements from ToxiGen (each file line holds several, separated by a literal '\\n-')."""
    out: list[str] = []
    for path in sorted((SHARED / "probes" / "toxigen").glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            for part in line.replace("\\n", "\n").split("\n"):
                part = part.strip().lstrip("-").strip()
                if len(part) > 10 and part not in out:
                    out.append(part)
                if len(out) >= n:
                    return out
    return out


def long_texts(n: int) -> list[str]:
    """The longest ETHOS comments (two joined where one is not long enough: ~150-400 words)."""
    path = SHARED / "labeled" / "ethos" / "Ethos_Dataset_Binary.csv"
    with path.open(encoding="utf-8") as fh:
        rows = sorted((r[0] for r in list(csv.reader(fh, delimiter=";"))[1:] if r), key=len, reverse=True)
    out = []
    for i in range(n):
        text = rows[i % len(rows)]
        if len(text.split()) < 150:
            text = text + " " + rows[(i + n) % len(rows)] + " " + rows[(i + 2 * n) % len(rows)]
        out.append(text)
    return out


class PeakRSS:
    """Peak resident memory above the baseline while the block runs."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")

    def rss(self) -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self.page

    def measure(self, fn: Callable[[], None]) -> tuple[float, int]:
        base = self.rss()
        peak = [base]
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], self.rss())
                stop.wait(0.005)

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        stop.set()
        t.join()
        return dt, peak[0] - base


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short", type=int, default=512)
    ap.add_argument("--long", type=int, default=64)
    ap.add_argument("--fixed", type=int, default=64, help="texts per fixed batch")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    import numpy as np
    import torch
    from bench_probe import build_bert_base_detoxify

    from audit.score.batching import budget_batches, fixed_batches, padded_tokens
    from audit.score.detoxify import DetoxifyScorer

    ckpt = build_bert_base_detoxify(tmp / "detox")
    engine = DetoxifyScorer(checkpoint=str(ckpt)).engine()
    short = short_texts(args.short)
    mixed = short[: args.short - args.long] + long_texts(args.long)
    print(
        f"bert-base Detoxify (random weights), torch threads {torch.get_num_threads()}, token budget "
        f"{engine.token_budget} (cpu), fixed batches of {args.fixed}; load average {os.getloadavg()[0]:.1f}"
    )
    meter = PeakRSS()
    engine.logits(short[:8])  # warm-up
    ok = True
    for name, data, target in (("short", short, 1.0), ("mixed", mixed, 1.2)):
        lengths = engine.lengths(data)
        plans = {
            "fixed": fixed_batches(lengths, args.fixed),
            "budget": budget_batches(lengths, engine.token_budget, engine.max_texts),
        }
        print(
            f"{name}: {len(data)} texts, tokens per text median {int(np.median(lengths))}, max {int(lengths.max())}"
        )
        runs: dict[str, list[tuple[float, int]]] = {plan: [] for plan in plans}
        for _ in range(args.repeats):  # interleaved, best of: the machine is shared
            for plan, batches in plans.items():

                def run(batches: list[np.ndarray] = batches, texts: list[str] = data) -> None:
                    for idx in batches:
                        engine.logits([texts[i] for i in idx])

                runs[plan].append(meter.measure(run))
        rate: dict[str, float] = {}
        for plan, batches in plans.items():
            best = min(t for t, _ in runs[plan])
            rate[plan] = len(data) / best
            pads = padded_tokens(lengths, batches)
            print(
                f"  {plan:6s} {len(batches):4d} batches, {sum(pads):7d} padded tokens, largest batch {max(pads):6d} "
                f"padded tokens, peak RSS +{max(m for _, m in runs[plan]) / 2**20:6.0f} MiB: {best:6.1f} s = "
                f"{rate[plan]:5.1f} texts/s (passes {', '.join(f'{t:.1f}' for t, _ in runs[plan])} s)"
            )
        ratio = rate["budget"] / rate["fixed"]
        print(f"  budget / fixed = {ratio:.2f}x (target >= {target}x)")
        ok = ok and ratio >= target
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
