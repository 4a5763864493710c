"""Benchmark: `model-audit table` over 1,000 report.json files (target: under 10 s).

Builds 1,000 run folders from one real card audit (with two probe suites' metrics and a few
datasets), each a little different, then times `model-audit table DIR... --out FILE` for CSV,
Parquet and Excel, and checks the row counts.
Usage: python benchmarks/bench_table.py [--reports 1000] [--format csv,parquet,xlsx]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from helpers import FULL_BODY, card  # noqa: E402

from audit.cli import main as cli_main  # noqa: E402
from audit.config import AuditOptions  # noqa: E402
from audit.model import DatasetFacts, MetricResult, ProbeResult  # noqa: E402
from audit.pipeline import audit_model  # noqa: E402
from audit.serialize import report_to_dict  # noqa: E402


def build(root: Path, n: int) -> list[Path]:
    path = root / "model.md"
    path.write_text(card({"license": "apache-2.0", "datasets": ["a/b", "c/d", "e/f"]}, FULL_BODY))
    base = audit_model(str(path), AuditOptions(fetch_datasets=False))
    groups = ["women", "men", "muslim", "christian", "jewish", "black", "white", "asian"]
    probes = (
        ProbeResult(
            suite="toxicity-continuation",
            version="1",
            metrics=tuple(
                MetricResult(name, 0.1, 0.05, 0.15, 100, label="toxicity")
                for name in ("expected_maximum_toxicity", "toxicity_probability", "mean_toxicity")
            ),
        ),
        ProbeResult(
            suite="identity-counterfactual",
            version="1",
            metrics=tuple(
                MetricResult("group_mean_toxicity", 0.1, 0.05, 0.15, 40, group=g, axis="axis") for g in groups
            ),
        ),
    )
    datasets = tuple(
        DatasetFacts(id=d, available=True, license_class="permissive") for d in ("a/b", "c/d", "e/f")
    )
    data = report_to_dict(replace(base, probes=probes, datasets=datasets))
    dirs = []
    for i in range(n):
        data["card"]["subject"] = f"org/model-{i:04d}"
        data["card"]["documentation_score"] = float(i % 100)
        for p in data["probes"]:
            for m in p["metrics"]:
                m["value"] = (i % 50) / 100
        d = root / f"run-{i:04d}"
        d.mkdir()
        (d / "report.json").write_text(json.dumps(data))
        dirs.append(d)
    return dirs


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--reports", type=int, default=1000)
    p.add_argument("--format", default="csv,parquet,xlsx")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-table-"))
    t0 = time.perf_counter()
    dirs = build(root, args.reports)
    print(f"built {len(dirs)} report.json files in {time.perf_counter() - t0:.1f} s")
    ok = True
    for fmt in args.format.split(","):
        out = root / f"tables.{fmt}"
        t0 = time.perf_counter()
        rc = cli_main(["-q", "table", *map(str, dirs), "--out", str(out)])
        wall = time.perf_counter() - t0
        print(f"table -> {fmt}: {wall:.2f} s (target < 10 s), exit {rc}")
        ok &= rc == 0 and wall < 10
    from audit.frames import read_tables

    back = read_tables(root / f"tables.{args.format.split(',')[0]}")
    rows = {k: len(v) for k, v in back.items()}
    print(f"rows: {rows}")
    ok &= rows["facts"] == args.reports and rows["metrics"] == 11 * args.reports
    print("PASS" if ok else "FAIL: below target")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
