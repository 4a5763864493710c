"""Benchmark the openai backend against our local endpoint (tests/fakeopenai.py).

The toxicity protocol's sampling: 100 prompts x 25 samples, concurrency 8, an endpoint that takes
50 ms per request plus a per-sample cost that grows with n (so batching is not free). With n=25
per request the bound is 100 requests / 8 in flight x (50 ms + 25 x per-sample cost); the target
is a wall time within 1.2x of that bound. Also measured: the same through the whole `run`
(sample stage with the cache and run files, `--prompts` file, profanity scorer), and a repeated
run that must send no request.

Usage: python benchmarks/bench_endpoint.py [--prompts 100] [--samples 25] [--concurrency 8]
       [--latency 0.05] [--per-sample 0.0005] [--repeat 3] [--no-run]
Exits 1 when the sampling wall time is above 1.2x the bound or the request count is not one per prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from audit.config import Sampling  # noqa: E402
from audit.sample.openai import OpenAIBackend  # noqa: E402
from audit.suites import Prompt  # noqa: E402


class Endpoint:
    """tests/fakeopenai.py in its own process (so the server does not share our interpreter's GIL)."""

    def __init__(self, latency: float, per_sample: float) -> None:
        cmd = [sys.executable, str(ROOT / "tests" / "fakeopenai.py"), "--honour-n"]
        cmd += ["--latency", str(latency), "--per-sample", str(per_sample)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    @property
    def count(self) -> int:
        import urllib.request

        root = self.url.rsplit("/v1", 1)[0]
        with urllib.request.urlopen(f"{root}/_stats", timeout=10) as resp:  # noqa: S310 - our local server
            return int(json.loads(resp.read())["requests"])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def sampling_wall(
    backend: OpenAIBackend, server: Endpoint, args: argparse.Namespace
) -> tuple[float, int, int]:
    """(seconds, requests, samples) of generate_many over the protocol."""
    prompts = [Prompt(f"p{i:03d}", f"Prompt number {i} says that") for i in range(args.prompts)]
    seeds = {p.id: 1000 + i for i, p in enumerate(prompts)}
    sampling = Sampling(samples_per_prompt=args.samples, max_new_tokens=20, top_p=0.9, seed=0)
    before = server.count
    start = time.perf_counter()
    samples = sum(len(outs) for _, outs in backend.generate_many("bench", prompts, sampling, seeds))
    return time.perf_counter() - start, server.count - before, samples


def full_run(server: Endpoint, args: argparse.Namespace, tmp: Path) -> tuple[float, float, int, int]:
    """(first run s, repeated run s, requests of the first, requests of the repeat) through `model-audit run`."""
    from audit.cli import main

    os.environ["MODEL_AUDIT_CACHE"] = str(tmp / "cache")
    prompts = tmp / "prompts.txt"
    prompts.write_text("".join(f"Prompt number {i} says that\n" for i in range(args.prompts)))
    card = tmp / "model.md"
    card.write_text("---\nlicense: mit\n---\n# Bench model\n")
    argv = [
        "-q",
        "run",
        str(card),
        "--no-datasets",
        "--suite",
        "toxicity-continuation",
        "--prompts",
        str(prompts),
        "--limit",
        str(args.prompts),
        "--samples",
        str(args.samples),
        "--scorer",
        "profanity",
        "--backend",
        "openai",
        "--backend-option",
        f"base_url={server.url}",
        "--backend-option",
        "model=bench",
        "--backend-option",
        f"concurrency={args.concurrency}",
        "--format",
        "json",
        "--out",
        str(tmp / "run"),
    ]
    times, counts = [], []
    for _ in range(2):
        before = server.count
        start = time.perf_counter()
        code = main(argv)
        times.append(time.perf_counter() - start)
        counts.append(server.count - before)
        if code != 0:
            raise SystemExit(f"model-audit run exited {code}")
    return times[0], times[1], counts[0], counts[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=100)
    ap.add_argument("--samples", type=int, default=25)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    ap.add_argument("--per-sample", type=float, default=0.0005, help="seconds per choice asked for (n)")
    ap.add_argument(
        "--repeat", type=int, default=3, help="sampling runs; the best is compared with the target"
    )
    ap.add_argument("--no-run", action="store_true", help="skip the full `model-audit run` measurement")
    args = ap.parse_args()
    server = Endpoint(args.latency, args.per_sample)
    try:
        backend = OpenAIBackend(
            {"base_url": server.url, "model": "bench", "concurrency": str(args.concurrency)}
        )
        # warm up: the client, its connections and the SDK's first-request work (as an earlier suite would)
        sampling_wall(backend, server, argparse.Namespace(**{**vars(args), "prompts": args.concurrency}))
        runs = [sampling_wall(backend, server, args) for _ in range(args.repeat)]
        walls = sorted(r[0] for r in runs)
        wall, requests, samples = (
            walls[0],
            runs[0][1],
            runs[0][2],
        )  # best of N: other load on the machine only adds
        per_request = args.latency + args.samples * args.per_sample
        bound = max(args.prompts / args.concurrency * per_request, 1e-9)
        plain = max(args.prompts / args.concurrency * args.latency, 1e-9)
        print(
            f"sampling: {args.prompts} prompts x {args.samples} samples, concurrency {args.concurrency}, "
            f"{args.latency * 1000:.0f} ms/request + {args.per_sample * 1000:.2f} ms/sample"
        )
        print(
            f"  wall time        {wall * 1000:8.0f} ms  (best of {args.repeat}; "
            f"median {walls[len(walls) // 2] * 1000:.0f} ms, worst {walls[-1] * 1000:.0f} ms)"
        )
        print(
            f"  bound (n={args.samples})    {bound * 1000:8.0f} ms  "
            f"({args.prompts} requests / {args.concurrency} in flight x {per_request * 1000:.1f} ms)"
        )
        print(
            f"  ratio            {wall / bound:8.2f}   (target <= 1.20; vs the bare {plain * 1000:.0f} ms: {wall / plain:.2f})"
        )
        print(f"  requests         {requests:8d}   (samples {samples}; one request per prompt expected)")
        print(
            f"  one request per sample would take >= "
            f"{args.prompts * args.samples / args.concurrency * (args.latency + args.per_sample) * 1000:.0f} ms"
        )
        if not args.no_run:
            with tempfile.TemporaryDirectory() as tmp:
                first, repeat, n_first, n_repeat = full_run(server, args, Path(tmp))
            print(f"full `model-audit run` (profanity scorer, json): {first:.2f} s, {n_first} requests")
            print(f"repeated run: {repeat:.2f} s, {n_repeat} requests (expected 0)")
            if n_repeat:
                return 1
        ok = wall <= 1.2 * bound and requests == args.prompts and samples == args.prompts * args.samples
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
