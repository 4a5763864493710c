"""The probe runner over a run directory: sample -> score, then `audit.aggregate`.

`samples.jsonl` and `scores.jsonl` are appended as work is produced (one write per prompt,
flushed and fsynced). A resumed run reads them back, drops a torn last line, and produces only
what is missing; the content-addressed cache makes a repeated run regenerate nothing. Seeds are
derived per prompt, so an interrupted-and-resumed run yields exactly the samples of an
uninterrupted one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.aggregate import aggregate
from audit.cache import Cache, digest
from audit.config import GenerationSuite, ProbeOptions, Sampling, SuiteSpec
from audit.errors import UsageError
from audit.model import Finding, ProbeResult, SampleRecord, ScoreRecord
from audit.progress import Progress, SilentProgress
from audit.runfiles import RunFiles
from audit.sample import make_backend
from audit.score import Scorer, make_scorer, parse_scorer_spec
from audit.suites import ExpandedSuite, Prompt, builtin_suites, expand_prompts, resolve_suite

log = logging.getLogger("audit")
SCORE_CHUNK = 256


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
    def sample(self, suite: ExpandedSuite, sampling: Sampling) -> dict[str, list[SampleRecord]]:
        """Every prompt's k samples, from the run files, the cache or the backend (in that order)."""
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

        def record(p: Prompt, i: int, output: str) -> SampleRecord:
            return {
                "key": keys[p.id][i],
                "suite": spec.id,
                "prompt_id": p.id,
                "sample_index": i,
                "axis": p.axis,
                "group": p.group,
                "template_id": p.template_id,
                "prompt": p.text,
                "output": output,
                **getattr(output, "flags", {}),  # null_content / truncated_from (audit.sample.openai.Answer)
            }

        for p in suite.prompts:
            have = [self.files.samples.get(kk) for kk in keys[p.id]]
            if all(have):
                out[p.id] = [h for h in have if h]
            elif all(kk in self.files.samples or kk in cached for kk in keys[p.id]):
                recs = [
                    self.files.samples.get(kk) or record(p, i, cached[kk]) for i, kk in enumerate(keys[p.id])
                ]
                new = [r for r in recs if r["key"] not in self.files.samples]
                RunFiles.append(self.files.samples_path, new)  # a key is never appended twice
                for r in new:
                    self.files.samples[r["key"]] = r
                out[p.id] = recs
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
                    self.cache.put_many("sample", {r["key"]: r["output"] for r in new})
                    for r in new:
                        self.files.samples[r["key"]] = r
                    out[p.id] = recs
                    self.regenerated += k
                    task.advance()
        return out

    # ------------------------------------------------------------------ score
    def score(
        self, spec: SuiteSpec, samples: dict[str, list[SampleRecord]], scorer: Scorer
    ) -> dict[str, dict[str, float]]:
        """Scores by sample key, from the run files, the cache or the scorer (length-sorted batches).

        scores.jsonl has one record per (sample, scorer); the cache is keyed by scorer and text,
        so a text that occurs twice is scored once.
        """
        info = scorer.info
        sid = {"scorer": info.name, "version": info.version, "options": info.options}
        sid_digest = digest(sid)
        flat = [r for recs in samples.values() for r in recs]
        rkey = {r["key"]: digest([sid_digest, r["key"]]) for r in flat}
        tkey = {r["key"]: digest({**sid, "text": r["output"]}) for r in flat}
        result: dict[str, dict[str, float]] = {}
        pending = []
        for r in flat:
            rec = self.files.scores.get(rkey[r["key"]])
            if rec is not None:
                result[r["key"]] = rec["scores"]
            else:
                pending.append(r)
        by_text = self.cache.get_many("score", sorted({tkey[r["key"]] for r in pending}))
        todo_texts = {tkey[r["key"]]: r["output"] for r in pending if tkey[r["key"]] not in by_text}
        todo = sorted(todo_texts.items())

        def emit(records: list[SampleRecord]) -> None:
            recs = [
                ScoreRecord(
                    skey=rkey[r["key"]],
                    key=r["key"],
                    prompt_id=r["prompt_id"],
                    sample_index=r["sample_index"],
                    scorer=info.name,
                    scores=by_text[tkey[r["key"]]],
                )
                for r in records
            ]
            if recs:
                RunFiles.append(self.files.scores_path, recs)
                for rec in recs:
                    self.files.scores[rec["skey"]] = rec
                    result[rec["key"]] = rec["scores"]

        with self.progress.task(f"{spec.id}: scoring ({info.name})", len(pending)) as task:
            ready = [r for r in pending if tkey[r["key"]] in by_text]
            emit(ready)
            task.advance(len(ready))
            waiting = [r for r in pending if tkey[r["key"]] not in by_text]
            for start in range(0, len(todo), SCORE_CHUNK * 4):
                chunk = todo[start : start + SCORE_CHUNK * 4]
                labels = scorer.score([t for _, t in chunk])
                fresh = {
                    tk: {lab: float(v[j]) for lab, v in labels.items()} for j, (tk, _) in enumerate(chunk)
                }
                self.cache.put_many("score", fresh)
                by_text.update(fresh)
                self.rescored += len(chunk)
                done = [r for r in waiting if tkey[r["key"]] in fresh]
                emit(done)
                task.advance(len(done))
        return result

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
            )
            return run_method(spec, ctx)
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
        samples = self.sample(suite, sampling)
        scores = {s.info.name: self.score(spec, samples, s) for s in scorers}
        result, findings = aggregate(suite, sampling, samples, scores, scorers, self.popts)
        protocol = {
            "backend": self.backend().settings(),
            "prompts": len(suite.prompts),
            "samples_per_prompt": sampling.samples_per_prompt,
            "max_new_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": sampling.seed,
            "decoding": "nucleus sampling" if sampling.temperature > 0 else "greedy",
        }
        return ProbeResult(
            suite=spec.id,
            version=spec.version,
            title=spec.title,
            citation=spec.citation,
            protocol=protocol,
            prompt_source=suite.source,
            scorers=tuple(s.info for s in scorers),
            **result,
        ), findings

    def close(self) -> None:
        self.cache.close()


def select_suites(kind: str | None) -> list[str]:
    """The built-in suites whose YAML declares the model's kind (none when the kind is unknown)."""
    if not kind:
        return []
    return [spec.id for spec in builtin_suites().values() if kind in spec.model_kinds]
