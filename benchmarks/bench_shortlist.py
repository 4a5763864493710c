"""Benchmark: a card shortlist of 200 candidates against the fake Hub with 50 ms per request.

The fake Hub (a generated catalog with gated, missing and slow models) runs in its own process,
so the benchmarked process has its cores to itself. Each case runs in a fresh child process (its
peak RSS is its own) with a fresh Hugging Face cache:

- sequential: the same card audits one after another (`--workers 1`) on the first
  `--sequential-sample` candidates, extrapolated to all of them;
- parallel: `--workers N` over all candidates (and over a quarter of them, for the memory check);
- with `--ray`: the same 50-candidate shortlist with `--workers N` and with `--executor ray` on a
  local instance (start-up, including warming the workers, reported apart), results compared.

Targets (exit 1 when missed): parallel wall time <= 1/5 of sequential; peak RSS of 200 candidates
<= 1.25 x that of 50 (flat in the number of candidates); Ray within 1.5 x of `--workers` with
identical facts, findings and metrics.
Usage: python benchmarks/bench_shortlist.py [--candidates 200] [--workers 16] [--latency 0.05] [--ray]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def serve(n: int, latency: float, queue: mp.Queue, stop: mp.Event) -> None:  # type: ignore[type-arg]
    from fakehub import FakeHub, generate_catalog

    hub = FakeHub().start()
    generate_catalog(hub, n, slow_delay=0.2)
    hub.latency = latency
    queue.put(hub.url)
    stop.wait()
    queue.put(len(hub.requests))
    hub.stop()


def child(args: argparse.Namespace) -> None:
    """One case: run the shortlist and print its figures as JSON."""
    from audit.config import AuditOptions, ProbeOptions
    from audit.shortlist import ShortlistRun, run_shortlist, search_candidates

    candidates = search_candidates(limit=args.n, sort="downloads")
    out = Path(args.out)
    spec = ShortlistRun(
        candidates=candidates,
        out=out,
        options=AuditOptions(cache_dir=out / "hf-cache", timeout=10),
        probe_options=ProbeOptions(auto_suites=False),
        formats=["json", "md"],
        executor=args.executor,
        workers=args.w,
        cpus_per_candidate=args.cpus,
        line_per_candidate=False,
    )
    t0 = time.perf_counter()
    result, _ = run_shortlist(spec)
    wall = time.perf_counter() - t0
    m = result.meta
    print(
        json.dumps(
            {
                "n": len(candidates),
                "wall_s": round(wall, 3),
                "audit_wall_s": m["audit_wall_s"],
                "ray_startup_s": m.get("ray_startup_s"),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "ranked": len(result.ranked),
                "disqualified": len(result.disqualified),
                "failed": len(result.failed),
            }
        )
    )


def run_case(
    url: str, n: int, workers: int, out: Path, executor: str = "local", cpus: float = 0.25
) -> dict[str, float]:
    env = {**os.environ, "HF_ENDPOINT": url, "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": str(out / "hf-home")}
    env.update(
        {"MPLCONFIGDIR": str(out / "mpl"), "RAY_AUTH_MODE": "disabled", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    )
    cmd = [sys.executable, __file__, "--child", "--n", str(n), "--w", str(workers), "--out", str(out)]
    cmd += ["--executor", executor, "--cpus", str(cpus)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"case failed: {' '.join(cmd)}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]  # Ray may print after it
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def same_results(a: Path, b: Path) -> bool:
    """Facts (apart from timestamps), findings and metrics of every candidate are equal."""
    from audit.frames import frames

    da = json.loads((a / "shortlist.json").read_text())
    db = json.loads((b / "shortlist.json").read_text())
    for key in ("ranked", "disqualified", "failed"):
        if [r["candidate"] for r in da[key]] != [r["candidate"] for r in db[key]]:
            return False
    names = sorted(p.name for p in (a / "candidates").iterdir() if (p / "report.json").is_file())
    fa = frames([a / "candidates" / n for n in names])
    fb = frames([b / "candidates" / n for n in names])
    for t in ("facts", "findings", "metrics", "datasets"):
        x, y = fa[t], fb[t]
        if t == "facts":
            x, y = x.drop(columns="finished_at"), y.drop(columns="finished_at")
        if not x.equals(y):
            return False
    return True


def ray_case(args: argparse.Namespace, url: str, n: int, tmp: Path) -> int:
    """--workers against --executor ray on the same 50 candidates; 0 when on target."""
    m = min(50, n)
    local = run_case(url, m, args.workers, tmp / "ray-local")
    ray = run_case(url, m, args.workers, tmp / "ray", executor="ray", cpus=args.ray_cpus)
    rr = ray["audit_wall_s"] / local["audit_wall_s"]
    same = same_results(tmp / "ray-local", tmp / "ray")
    print(
        f"ray ({args.ray_cpus} CPU per candidate): {m} candidates in {ray['audit_wall_s']:.1f} s vs --workers "
        f"{args.workers} {local['audit_wall_s']:.1f} s: x{rr:.2f} (target <= 1.5); Ray start-up "
        f"{ray['ray_startup_s']:.1f} s (apart); identical results: {same}"
    )
    return 0 if rr <= 1.5 and same else 1


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--candidates", type=int, default=200)
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--latency", type=float, default=0.05)
    p.add_argument("--sequential-sample", type=int, default=50)
    p.add_argument("--ray", action="store_true", help="also compare --executor ray on 50 candidates")
    p.add_argument(
        "--ray-cpus", type=float, default=0.5, help="Ray CPUs per candidate (0.5: 4 workers on 2 cores)"
    )
    p.add_argument("--skip-local", action="store_true", help="only the Ray comparison")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--w", type=int, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--executor", default="local", help=argparse.SUPPRESS)
    p.add_argument("--cpus", type=float, default=0.25, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return 0
    ctx = mp.get_context("spawn")
    queue, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=serve, args=(args.candidates + 20, args.latency, queue, stop), daemon=True)
    server.start()
    url = queue.get(timeout=120)
    tmp = Path(tempfile.mkdtemp(prefix="bench-shortlist-"))
    ok = True
    n, k = args.candidates, min(args.sequential_sample, args.candidates)
    print(
        f"fake Hub {url}: {n + 20} models, {args.latency * 1000:.0f} ms per request; {os.cpu_count()} cores"
    )
    if not args.skip_local:
        seq = run_case(url, k, 1, tmp / "seq")
        seq_total = seq["audit_wall_s"] * n / k
        print(
            f"sequential: {k} candidates in {seq['audit_wall_s']:.1f} s -> {seq_total:.1f} s estimated for {n}"
        )
        par = run_case(url, n, args.workers, tmp / "par")
        ratio = par["audit_wall_s"] / seq_total
        print(
            f"--workers {args.workers}: {n} candidates in {par['audit_wall_s']:.1f} s "
            f"({par['ranked']} ranked, {par['disqualified']} disqualified, {par['failed']} failed): "
            f"{ratio:.3f} of sequential (target <= 0.2)"
        )
        ok &= ratio <= 0.2
        quarter = run_case(url, max(1, n // 4), args.workers, tmp / "quarter")
        growth = par["peak_rss_mb"] / quarter["peak_rss_mb"]
        print(
            f"peak RSS: {quarter['peak_rss_mb']:.0f} MB for {quarter['n']} candidates, {par['peak_rss_mb']:.0f} MB "
            f"for {n}: x{growth:.2f} (target <= 1.25)"
        )
        ok &= growth <= 1.25
    if args.ray or args.skip_local:
        ok &= ray_case(args, url, n, tmp) == 0
    stop.set()
    print(f"{queue.get(timeout=30)} requests served")
    server.join(timeout=10)
    print("PASS" if ok else "FAIL: below target")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
