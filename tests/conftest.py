"""Test setup: the fake Hub starts before huggingface_hub is imported (HF_ENDPOINT is read at import)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakehub import FakeHub  # noqa: E402

assert "huggingface_hub" not in sys.modules, "huggingface_hub was imported before the fake Hub was configured"

_HOME = tempfile.mkdtemp(prefix="model-audit-tests-")
HUB = FakeHub().start()
os.environ.update(
    {
        "HF_ENDPOINT": HUB.url,
        "HF_HOME": os.path.join(_HOME, "hf"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DOWNLOAD_TIMEOUT": "3",
        "HF_HUB_ETAG_TIMEOUT": "3",
        "TORCH_HOME": os.path.join(_HOME, "torch"),
        "MPLCONFIGDIR": os.path.join(_HOME, "mpl"),
        "XDG_CACHE_HOME": os.path.join(_HOME, "cache"),
    }
)
for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
    os.environ.pop(var, None)

# huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE once, at import: import it now, with the fake Hub
# set and offline mode off, so a test that sets HF_HUB_OFFLINE later does not fix it for the whole session.
import huggingface_hub  # noqa: E402, F401

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REPO_ROOT = Path(__file__).resolve().parents[1]

# Every Finding the audit package builds during the session, checked against the catalogue at the end.
EMITTED_FINDINGS: list[Any] = []


def _built_by_audit() -> bool:
    """Whether the Finding being built comes from the audit package (not a test, not report loading)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__") == "dataclasses":  # dataclasses.replace
        frame = frame.f_back  # type: ignore[assignment]
    return frame is not None and str(frame.f_globals.get("__name__", "")).split(".")[0] == "audit"


@pytest.fixture(scope="session", autouse=True)
def _findings_come_from_the_catalogue() -> Iterator[None]:
    """Every finding emitted anywhere in the test session carries a catalogue id, title and recommendation."""
    from audit.findings import catalogue_problems
    from audit.model import Finding

    original = Finding.__init__

    def recording_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if _built_by_audit():
            EMITTED_FINDINGS.append(self)

    Finding.__init__ = recording_init  # type: ignore[method-assign]
    yield
    Finding.__init__ = original  # type: ignore[method-assign]
    problems = sorted({p for f in EMITTED_FINDINGS for p in catalogue_problems(f)})
    assert not problems, "findings that do not match the catalogue:\n" + "\n".join(problems)


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    """The fake Hub, emptied for each test."""
    HUB.reset()
    yield HUB
    HUB.reset()


@pytest.fixture
def options(tmp_path: Path):  # type: ignore[no-untyped-def]
    """AuditOptions with a private Hugging Face cache per test."""
    from audit.config import AuditOptions

    return AuditOptions(cache_dir=tmp_path / "hf-cache", timeout=3)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or skip with the reason."""
    if not SHARED.is_dir():
        pytest.skip(
            f"../shared/data is absent ({SHARED}); these tests need the shared real cards and probe sets"
        )
    return SHARED


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.needs_shared)


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 model folder (needs torch and transformers)."""
    pytest.importorskip("torch", reason="the probe tests need torch ([models] extra)")
    pytest.importorskip("transformers", reason="the probe tests need transformers ([models] extra)")
    from models import build_tiny_gpt2

    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def tiny_detoxify(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Detoxify checkpoint folder (.ckpt + config.json + tokenizer)."""
    pytest.importorskip("detoxify", reason="the Detoxify tests need detoxify ([probes] extra)")
    from models import build_tiny_detoxify

    return build_tiny_detoxify(tmp_path_factory.mktemp("tiny-detoxify"))
