"""`shortlist --executor ray` on a local Ray instance gives the same facts, findings and metrics as threads."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakehub import FakeHub, add_catalog_dataset, add_catalog_model

from audit.cli import main
from audit.frames import frames

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    """One local Ray instance for the session (2 CPUs, no dashboard)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (the [scale] extra)")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_and_threads_agree(ray_local: Any, hub: FakeHub, tmp_path: Path) -> None:
    add_catalog_dataset(hub, "data/documented", license="cc-by-4.0", documented=True)
    add_catalog_dataset(hub, "data/bare", license=None, documented=False)
    add_catalog_model(hub, "r/alpha", datasets=("data/documented",), sections=6)
    add_catalog_model(hub, "r/bravo", datasets=("data/bare",), sections=2, license="mit")
    add_catalog_model(hub, "r/charlie", license="cc-by-nc-4.0", sections=4, params=7_000_000_000)
    add_catalog_model(hub, "r/delta", license="gpl-3.0", sections=0, context=8192)
    add_catalog_model(hub, "r/gated", gated=True)
    common = ["-q", "shortlist", "--task", "text-classification", "--format", "json,md"]
    common += ["--license-class", "permissive,copyleft", "--cache-dir", str(tmp_path / "hf")]
    assert main([*common, "--out", str(tmp_path / "local"), "--workers", "4"]) == 0
    assert (
        main([*common, "--out", str(tmp_path / "ray"), "--executor", "ray", "--cpus-per-candidate", "1"]) == 0
    )
    local = json.loads((tmp_path / "local" / "shortlist.json").read_text())
    ray = json.loads((tmp_path / "ray" / "shortlist.json").read_text())
    assert ray["executor"] == "ray" and ray["audited"] == 4
    for key in ("ranked", "disqualified", "failed"):
        assert [r["candidate"] for r in ray[key]] == [r["candidate"] for r in local[key]]
    assert [r["reasons"] for r in ray["disqualified"]] == [r["reasons"] for r in local["disqualified"]]
    names = ["r__alpha", "r__bravo", "r__charlie", "r__delta"]
    a = frames([tmp_path / "local" / "candidates" / n for n in names])
    b = frames([tmp_path / "ray" / "candidates" / n for n in names])
    for name in ("facts", "findings", "metrics", "datasets"):
        left, right = a[name], b[name]
        if name == "facts":  # apart from timestamps
            left, right = left.drop(columns="finished_at"), right.drop(columns="finished_at")
        assert left.equals(right), name
    assert len(a["findings"]) > 10
