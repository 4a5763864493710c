"""The probe runner over a run directory: sample -> score, then `audit.aggregate`.

`samples.jsonl` and `scores.jsonl` are appended as work is produced (one write per prompt,
flushed and fsynced). A resumed run reads them back, drops a torn last line, and produces only
what is missing; the content-addressed cache makes a repeated run regenerate nothing. Seeds are
derived per prompt, so an interrupted-and-resumed run yields exactly the samples of an
uninterrupted one.

With an endpoint backend the two stages overlap: samples go through a bounded queue to a scoring
thread as they arrive, so a run takes about max(sampling, scoring) rather than their sum; the run
files and the cache are written exactly as in the sequential order. A scorer with `quantize=int8`
checks itself first (`calibrate`) on a seeded subset of the suite's texts (sequential: all of them;
overlapped: the first 200 to arrive), so its cache keys say whether int8 or float was used.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.aggregate import aggregate
from audit.cache import Cache, digest
from audit.config import GenerationSuite, ProbeOptions, Sampling, SuiteSpec
from audit.errors import UsageError
from audit.model import Finding, GenerationProtocol, ProbeResult, SampleRecord, ScoreRecord
from audit.progress import Progress, SilentProgress, Task
from audit.runfiles import RunFiles
from audit.sample import make_backend
from audit.score import Scorer, make_scorer, parse_scorer_spec
from audit.suites import ExpandedSuite, Prompt, expand_prompts, resolve_suite

log = logging.getLogger("audit")
SCORE_CHUNK = 256
QUEUE_PROMPTS = 256  # prompts' samples held between the sample and score stages before sampling waits
CALIBRATION_TEXTS = 200  # texts an int8 scorer checks itself on (audit.score.quantize)


@dataclass
class SubjectModel:
    """What the backends need to know about the audited model."""

    ref: str
    source: str | None  # a Hub id or a local folder for the hf backend
    revision: str | None
    kind: str | None = None  # detected model kind (text-generation, fill-mask, ...)


def _scorers(spec: SuiteSpec, popts: ProbeOptions) -> list[Scorer]:
    refs = (
        [parse_scorer_spec(s) for s in popts.scorers]
        if popts.scorers
        else [(r.name, dict(r.options)) for r in spec.scorers]
        if isinstance(spec, GenerationSuite)
        else []
    )
    out = []
    for name, opts in refs:
        if name == "detoxify" and popts.detoxify_checkpoint is not None:
            opts = {**opts, "checkpoint": str(popts.detoxify_checkpoint)}
        out.append(make_scorer(name, opts))
    return out


class ProbeRunner:
    """Runs suites for one model through one backend, over one run directory."""

    def __init__(
        self,
        subject: SubjectModel,
        popts: ProbeOptions,
        out_dir: Path,
        progress: Progress | None = None,
        hub_cache: Path | None = None,
    ) -> None:
        self.subject, self.popts, self.out_dir = subject, popts, out_dir
        self.progress = progress or SilentProgress()
        self.cache = Cache(popts.cache_path, enabled=not popts.no_cache)
        self.files = RunFiles(out_dir, fresh=popts.no_cache)
        self.hub_cache = hub_cache
        self._backend: Any = None
        self.regenerated = 0
        # What loading the last suite's model reported (missing_keys: weights newly initialised).
        self.loading_info: dict[str, Any] | None = None
        self.rescored = 0

    def backend(self) -> Any:
        if self._backend is None:
            self._backend = make_backend(
                self.popts.backend,
                options=dict(self.popts.backend_options),
                model_source=self.subject.source,
                revision=self.subject.revision,
                trust_remote_code=self.popts.trust_remote_code,
            )
        return self._backend

    # ------------------------------------------------------------------ sample
    def sample(
        self,
        suite: ExpandedSuite,
        sampling: Sampling,
        on_records: Callable[[list[SampleRecord]], None] | None = None,
    ) -> dict[str, list[SampleRecord]]:
        """Every prompt's k samples, from the run files, the cache or the backend (in that order).

        `on_records` receives each prompt's records as soon as they are had (the overlapped score stage).
        """
        emit = on_records or (lambda recs: None)
        spec = suite.spec
        seeds = {p.id: int(digest([sampling.seed, spec.id, p.id])[:8], 16) for p in suite.prompts}
        settings = self.backend().settings()
        decoding = sampling.model_dump(exclude={"prompts"})
        k = sampling.samples_per_prompt

        def key(p: Prompt, i: int) -> str:
            return digest(
                {
                    "model": self.subject.ref,
                    "revision": self.subject.revision,
                    "backend": settings,
                    "prompt": p.text,
                    "decoding": decoding,
                    "seed": seeds[p.id],
                    "index": i,
                }
            )

        keys = {p.id: [key(p, i) for i in range(k)] for p in suite.prompts}
        cached = self.cache.get_many(
            "sample", [kk for p in suite.prompts for kk in keys[p.id] if kk not in self.files.samples]
        )
        todo: list[Prompt] = []
        out: dict[str, list[SampleRecord]] = {}

        def record(p: Prompt, i: int, output: Any) -> SampleRecord:
            if isinstance(
                output, dict
            ):  # a cached answer with its flags: {"output": text, "null_content": ...}
                flags = {k: v for k, v in output.items() if k != "output"}
                output = str(output.get("output", ""))
            else:
                flags = dict(getattr(output, "flags", {}))  # null_content / truncated_from (openai.Answer)
            return {
                "key": keys[p.id][i],
                "suite": spec.id,
                "prompt_id": p.id,
                "sample_index": i,
                "axis": p.axis,
                "group": p.group,
                "template_id": p.template_id,
                "prompt": p.text,
                "output": str(output),
                **flags,
            }

        for p in suite.prompts:
            have = [self.files.samples.get(kk) for kk in keys[p.id]]
            if all(have):
                out[p.id] = [h for h in have if h]
                emit(out[p.id])
            elif all(kk in self.files.samples or kk in cached for kk in keys[p.id]):
                recs = [
                    self.files.samples.get(kk) or record(p, i, cached[kk]) for i, kk in enumerate(keys[p.id])
                ]
                new = [r for r in recs if r["key"] not in self.files.samples]
                RunFiles.append(self.files.samples_path, new)  # a key is never appended twice
                for r in new:
                    self.files.samples[r["key"]] = r
                out[p.id] = recs
                emit(recs)
            else:
                todo.append(p)
        with self.progress.task(f"{spec.id}: sampling", len(suite.prompts)) as task:
            task.advance(len(suite.prompts) - len(todo))
            if todo:
                for p, outputs in self.backend().generate_many(spec.id, todo, sampling, seeds):
                    if len(outputs) != k:
                        raise UsageError(
                            f"backend returned {len(outputs)} outputs for {p.id}, expected {k}", ""
                        )
                    recs = [
                        self.files.samples.get(keys[p.id][i]) or record(p, i, o)
                        for i, o in enumerate(outputs)
                    ]
                    new = [r for r in recs if r["key"] not in self.files.samples]
                    RunFiles.append(self.files.samples_path, new)  # written as produced, each key once
                    self.cache.put_many("sample", {r["key"]: _cached_value(r) for r in new})
                    for r in new:
                        self.files.samples[r["key"]] = r
                    out[p.id] = recs
                    self.regenerated += k
                    task.advance()
                    emit(recs)
        return out

    # ------------------------------------------------------------------ score
    def score(
        self, spec: SuiteSpec, samples: dict[str, list[SampleRecord]], scorer: Scorer, seed: int = 0
    ) -> dict[str, dict[str, float]]:
        """Scores by sample key, from the run files, the cache or the scorer (length-sorted batches).

        scores.jsonl has one record per (sample, scorer); the cache is keyed by scorer and text,
        so a text that occurs twice is scored once.
        """
        flat = [r for recs in samples.values() for r in recs]
        _calibrate(scorer, [r["output"] for r in flat], seed)
        with self.progress.task(f"{spec.id}: scoring ({scorer.info.name})", len(flat)) as task:
            stage = _ScoreStage(self, scorer, task)
            stage.feed(flat)
        return stage.result

    def sample_and_score(
        self, suite: ExpandedSuite, sampling: Sampling, scorers: Sequence[Scorer]
    ) -> tuple[dict[str, list[SampleRecord]], dict[str, dict[str, dict[str, float]]]]:
        """Sampling with the samples scored as they arrive (a scoring thread behind a bounded queue).

        The run files and the cache get exactly what the sequential stages write; only the timing differs.
        """
        spec = suite.spec
        total = len(suite.prompts) * sampling.samples_per_prompt
        inbox: queue.Queue[list[SampleRecord] | None] = queue.Queue(maxsize=QUEUE_PROMPTS)
        abort = threading.Event()
        failure: list[BaseException] = []
        stages: list[_ScoreStage] = []
        wait = any(getattr(s, "calibrated", True) is False for s in scorers)

        def consume() -> None:
            try:
                with _tasks(
                    self.progress, [f"{spec.id}: scoring ({s.info.name})" for s in scorers], total
                ) as tasks:
                    held: list[SampleRecord] = []
                    started = False
                    done = False
                    while not done and not abort.is_set():
                        arrived = [inbox.get()]
                        while True:  # take everything that is waiting: larger, better-packed batches
                            try:
                                arrived.append(inbox.get_nowait())
                            except queue.Empty:
                                break
                        records = [r for item in arrived if item is not None for r in item]
                        done = any(item is None for item in arrived)
                        if abort.is_set():
                            return
                        if not started:
                            held += records
                            if wait and not done and len(held) < min(CALIBRATION_TEXTS, total):
                                continue  # an int8 scorer checks itself on the first texts to arrive
                            for s in scorers:
                                _calibrate(s, [r["output"] for r in held], sampling.seed)
                            stages.extend(
                                _ScoreStage(self, s, t, stop=abort)
                                for s, t in zip(scorers, tasks, strict=True)
                            )
                            started, records = True, held
                        for stage in stages:
                            stage.feed(records)
            except BaseException as exc:  # noqa: BLE001 - handed to the sampling thread, raised there
                failure.append(exc)
                abort.set()

        def hand_over(records: list[SampleRecord]) -> None:
            while not abort.is_set():
                try:
                    inbox.put(records, timeout=0.1)
                    return
                except queue.Full:
                    continue
            raise failure[0] if failure else RuntimeError("the scoring thread stopped")

        worker = threading.Thread(target=consume, name="audit-score", daemon=True)
        worker.start()
        try:
            samples = self.sample(suite, sampling, on_records=hand_over)
        except BaseException:
            abort.set()
            raise
        finally:
            while worker.is_alive():
                try:
                    inbox.put(None, timeout=0.1)  # end of the stream (or wake a waiting consumer to abort)
                    break
                except queue.Full:
                    continue
            worker.join()
        if failure:
            raise failure[0]
        return samples, {stage.scorer.info.name: stage.result for stage in stages}

    # ------------------------------------------------------------------ one suite
    def run_suite(self, name: str) -> tuple[ProbeResult, list[Finding]]:
        spec = resolve_suite(name)
        update: dict[str, Any] = {}
        if self.popts.samples is not None:
            update["samples_per_prompt"] = self.popts.samples
        if self.popts.seed is not None:
            update["seed"] = self.popts.seed
        sampling = spec.sampling.model_copy(update=update)
        spec = spec.model_copy(update={"sampling": sampling})
        if spec.method != "generation":
            from audit.methods import MethodContext, run_method

            method_spec = spec

            def generate(prompts: list[Prompt], s: Sampling) -> dict[str, list[str]]:
                suite = ExpandedSuite(method_spec, prompts, {"kind": "method", "method": method_spec.method})
                return {pid: [r["output"] for r in recs] for pid, recs in self.sample(suite, s).items()}

            ctx = MethodContext(
                self.subject.source,
                self.subject.revision,
                self.popts,
                sampling.seed,
                self.progress,
                kind=self.subject.kind,
                generator=generate,
                suite=spec.id,
                cache=self.cache if self.cache.enabled else None,
            )
            try:
                return run_method(spec, ctx)
            finally:  # what transformers said when the method loaded its model (newly initialised heads)
                self.loading_info = _method_loading_info(ctx)
        if not isinstance(spec, GenerationSuite):
            raise UsageError(f"suite {spec.id}: method {spec.method} is not a generation suite", "")
        suite = expand_prompts(
            spec,
            prompts_file=self.popts.prompts_file,
            limit=self.popts.limit,
            cache_dir=self.hub_cache,
            data=self.popts.data,
        )
        scorers = _scorers(spec, self.popts)
        if scorers and self.overlap():
            samples, scores = self.sample_and_score(suite, sampling, scorers)
        else:
            samples = self.sample(suite, sampling)
            scores = {s.info.name: self.score(spec, samples, s, seed=sampling.seed) for s in scorers}
        result, findings = aggregate(suite, sampling, samples, scores, scorers, self.popts)
        self.loading_info = getattr(self._backend, "loading_info", None)
        protocol = GenerationProtocol(
            backend=self.backend().settings(),
            prompts=len(suite.prompts),
            samples_per_prompt=sampling.samples_per_prompt,
            max_new_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            seed=sampling.seed,
            decoding="nucleus sampling" if sampling.temperature > 0 else "greedy",
        )
        return ProbeResult(
            suite=spec.id,
            version=spec.version,
            title=spec.title,
            citation=spec.citation,
            protocol=protocol,
            prompt_source=suite.source,
            scorers=tuple(s.info for s in scorers),
            metrics=result.metrics,
            distribution=result.distribution,
            worst=result.worst,
            redacted=result.redacted,
            notes=result.notes,
            scorer_validation=result.scorer_validation,
        ), findings

    def overlap(self) -> bool:
        """Whether sampling waits on something other than this machine's CPU (an endpoint), so scoring overlaps it."""
        backend = self.backend()
        return bool(getattr(backend, "remote", False))

    def close(self) -> None:
        """Release the cache and the backend (an endpoint backend's connections and event-loop thread)."""
        closer = getattr(self._backend, "close", None)
        if callable(closer):
            closer()
        self.cache.close()


def _calibrate(scorer: Scorer, texts: list[str], seed: int) -> None:
    """Let a scorer that can check itself (int8) do so before any score is keyed or written."""
    calibrate = getattr(scorer, "calibrate", None)
    if callable(calibrate):
        calibrate(texts, seed)


class _tasks:  # noqa: N801 - used as a context manager, like the progress tasks it holds
    """Several progress tasks entered together (one per scorer)."""

    def __init__(self, progress: Progress, names: list[str], total: int) -> None:
        self.contexts = [progress.task(n, total) for n in names]

    def __enter__(self) -> list[Task]:
        return [c.__enter__() for c in self.contexts]

    def __exit__(self, *exc: Any) -> None:
        for c in reversed(self.contexts):
            c.__exit__(*exc)


class _ScoreStage:
    """One scorer over a suite's samples, fed all at once or as they arrive: run files, cache, then the scorer.

    The scorer's identity (name, version, options: int8 or float) is read once, after calibration,
    and keys both scores.jsonl records and the cache.
    """

    def __init__(
        self, runner: ProbeRunner, scorer: Scorer, task: Task, stop: threading.Event | None = None
    ) -> None:
        self.runner, self.scorer, self.task, self.stop = runner, scorer, task, stop
        info = scorer.info
        self.sid = {"scorer": info.name, "version": info.version, "options": info.options}
        self.sid_digest = digest(self.sid)
        self.result: dict[str, dict[str, float]] = {}
        self.by_text: dict[str, dict[str, float]] = {}

    def feed(self, records: list[SampleRecord]) -> None:
        """Score these samples (each text once), append their records, advance the task."""
        files, cache = self.runner.files, self.runner.cache
        info = self.scorer.info
        rkey = {r["key"]: digest([self.sid_digest, r["key"]]) for r in records}
        tkey = {r["key"]: digest({**self.sid, "text": r["output"]}) for r in records}
        pending = []
        for r in records:
            rec = files.scores.get(rkey[r["key"]])
            if rec is not None:
                self.result[r["key"]] = rec["scores"]
            else:
                pending.append(r)
        self.task.advance(len(records) - len(pending))
        by_text = self.by_text
        by_text.update(cache.get_many("score", sorted({tkey[r["key"]] for r in pending} - by_text.keys())))
        todo = sorted({tkey[r["key"]]: r["output"] for r in pending if tkey[r["key"]] not in by_text}.items())

        def emit(ready: list[SampleRecord]) -> None:
            recs = [
                ScoreRecord(
                    skey=rkey[r["key"]],
                    key=r["key"],
                    prompt_id=r["prompt_id"],
                    sample_index=r["sample_index"],
                    scorer=info.name,
                    scores=by_text[tkey[r["key"]]],
                )
                for r in ready
                if rkey[r["key"]] not in files.scores  # a sample listed twice is written once
            ]
            if recs:
                RunFiles.append(files.scores_path, recs)
                for rec in recs:
                    files.scores[rec["skey"]] = rec
            for r in ready:
                self.result[r["key"]] = by_text[tkey[r["key"]]]
            self.task.advance(len(ready))

        emit([r for r in pending if tkey[r["key"]] in by_text])
        waiting = [r for r in pending if tkey[r["key"]] not in by_text]
        for start in range(0, len(todo), SCORE_CHUNK * 4):
            if self.stop is not None and self.stop.is_set():
                return  # sampling failed or was interrupted: what is scored so far is on file
            chunk = todo[start : start + SCORE_CHUNK * 4]
            labels = self.scorer.score([t for _, t in chunk])
            fresh = {tk: {lab: float(v[j]) for lab, v in labels.items()} for j, (tk, _) in enumerate(chunk)}
            cache.put_many("score", fresh)
            by_text.update(fresh)
            self.runner.rescored += len(chunk)
            emit([r for r in waiting if tkey[r["key"]] in fresh])


def _cached_value(rec: SampleRecord) -> Any:
    """What the sample cache keeps of a record: the text, with the answer's flags when it has any."""
    flags = {k: v for k, v in rec.items() if k in ("null_content", "truncated_from")}
    return {"output": rec["output"], **flags} if flags else rec["output"]


def _method_loading_info(ctx: Any) -> dict[str, Any] | None:
    """The loading report of a method's model: the first class it loaded that newly initialised weights."""
    model = getattr(ctx, "_model", None)
    reports = getattr(getattr(model, "_inner", model), "loading_info", None) or {}
    for report in reports.values():
        if report.get("missing_keys"):
            return dict(report)
    return next((dict(r) for r in reports.values()), None)
