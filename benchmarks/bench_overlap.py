"""Benchmark sampling overlapped with scoring: an endpoint run with Detoxify scoring.

The endpoint is tests/fakeopenai.py in its own process (50 ms per request); the scorer is a
Detoxify-sized (bert-base, random weights) DetoxifyScorer, loaded before any timing. Measured with
the ProbeRunner on fresh run folders and no cache: sampling alone (`sample`), scoring alone (`score`
on those samples), and both overlapped (`sample_and_score`, what `run` does with an endpoint). The
defaults make the two stages about equally long, where overlapping matters most.

Usage: python benchmarks/bench_overlap.py [--prompts 100] [--samples 6] [--concurrency 1] [--latency 0.05]
Exits 1 when the overlapped wall time is above 1.15 x max(sampling alone, scoring alone).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SUITE = """
id: overlap-bench
version: "0.1"
title: Overlap benchmark
description: Endpoint sampling with Detoxify scoring.
citation: none
model_kinds: [text-generation]
prompts:
  kind: inline
  inline: [{prompts}]
sampling: {{samples_per_prompt: {k}, max_new_tokens: 20, temperature: 1.0, top_p: 0.9, seed: 0}}
scorers: [{{name: detoxify}}]
metrics: [expected_maximum_toxicity, toxicity_probability, mean_toxicity, per_label]
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=100)
    ap.add_argument("--samples", type=int, default=6)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--target", type=float, default=1.15)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    from bench_probe import build_bert_base_detoxify

    from audit.config import ProbeOptions
    from audit.probe import ProbeRunner, SubjectModel
    from audit.score.detoxify import DetoxifyScorer
    from audit.suites import expand_prompts, resolve_suite

    cmd = [
        sys.executable,
        str(ROOT / "tests" / "fakeopenai.py"),
        "--honour-n",
        "--latency",
        str(args.latency),
    ]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    try:
        ckpt = build_bert_base_detoxify(tmp / "detox")
        scorer = DetoxifyScorer(checkpoint=str(ckpt))
        scorer.score(["warm up the model"])
        suite_file = tmp / "suite.yaml"
        prompts = ", ".join(f'"Prompt number {i} says that"' for i in range(args.prompts))
        suite_file.write_text(SUITE.format(prompts=prompts, k=args.samples))
        suite = expand_prompts(resolve_suite(str(suite_file)))
        sampling = suite.spec.sampling  # type: ignore[attr-defined]
        popts = ProbeOptions(
            backend="openai",
            backend_options={"base_url": url, "model": "bench", "concurrency": str(args.concurrency)},
            no_cache=True,
        )

        def runner(name: str) -> ProbeRunner:
            return ProbeRunner(SubjectModel("bench", None, None), popts, tmp / name)

        warm = runner("warm")  # the client's first-request work, as an earlier suite would have done
        warm.sample(expand_prompts(resolve_suite(str(suite_file)), limit=2), sampling)

        alone = runner("alone")
        alone._backend = warm.backend()
        t0 = time.perf_counter()
        samples = alone.sample(suite, sampling)
        sampling_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        alone.score(suite.spec, samples, scorer, seed=sampling.seed)
        scoring_s = time.perf_counter() - t0

        both = runner("both")
        both._backend = warm.backend()
        assert both.overlap()
        t0 = time.perf_counter()
        _, scores = both.sample_and_score(suite, sampling, [scorer])
        overlap_s = time.perf_counter() - t0
        n = args.prompts * args.samples
        assert len(scores["detoxify"]) == n
        bound = max(sampling_s, scoring_s)
        ratio = overlap_s / bound
        print(
            f"{args.prompts} prompts x {args.samples} samples, concurrency {args.concurrency}, "
            f"{args.latency * 1000:.0f} ms per request; bert-base Detoxify; load average {os.getloadavg()[0]:.1f}"
        )
        print(f"  sampling alone   {sampling_s:6.2f} s")
        print(f"  scoring alone    {scoring_s:6.2f} s  ({n / scoring_s:.1f} texts/s)")
        print(f"  sum              {sampling_s + scoring_s:6.2f} s")
        print(f"  overlapped       {overlap_s:6.2f} s")
        print(f"  overlapped / max(sampling, scoring) = {ratio:.2f} (target <= {args.target})")
        ok = ratio <= args.target
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    sys.exit(main())
