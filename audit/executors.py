"""Running many candidate audits: bounded threads on one machine, or Ray tasks over a cluster.

Each candidate is a `CandidateJob` (plain data, so it crosses to a Ray worker unchanged) and
`audit_candidate` turns it into a `CandidateOutcome` by the same per-model pipeline as
`model-audit run` (`run_audit` + `write_report`, the run folder locked by `RunFolderLock`).
A candidate that cannot be audited is an outcome with a reason, never an exception.

Rate limits: a 429 from the Hub makes the candidate wait for the server's `Retry-After` (a
cheap `model_info` request reads it; exponential backoff when the header is absent) and retry,
up to `MAX_ATTEMPTS` times. On one machine all workers share one `Backoff`, so one 429 pauses
every worker.

Ray (the optional `[scale]` extra): each audit is a Ray task with fractional CPUs (card audits
wait on the network) and, when probe suites run, `gpus_per_candidate` GPUs. The workers get the
Hub settings (HF_ENDPOINT, HF_TOKEN, ...) through the task's runtime environment and write the
run folders themselves: on a cluster, `--out` must be on a filesystem every node shares.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from audit.errors import AuditError, UsageError
from audit.redact import redact_text

if TYPE_CHECKING:
    from audit.config import ProbeOptions

log = logging.getLogger("audit")

MAX_ATTEMPTS = 5
BASE_WAIT_S = 1.0
MAX_WAIT_S = 60.0
# The environment a Ray worker needs to reach the same Hub as the driver.
HUB_ENV = (
    "HF_ENDPOINT",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HF_HUB_OFFLINE",
    "HF_HUB_DISABLE_TELEMETRY",
    "HF_HUB_DISABLE_PROGRESS_BARS",
    "HF_HUB_DOWNLOAD_TIMEOUT",
    "HF_HUB_ETAG_TIMEOUT",
    "MODEL_AUDIT_CACHE",
    "MPLCONFIGDIR",
    "XDG_CACHE_HOME",
    "TORCH_HOME",
)
RAY_INSTALL_HINT = "pip install 'model-risk-audit[scale]' (or `pip install ray`), or use --workers N"


@dataclass(frozen=True)
class CandidateJob:
    """One candidate to audit into its own run folder (plain data: it travels to Ray workers)."""

    ref: str
    out_dir: str
    options: dict[str, Any]
    probe_options: dict[str, Any]
    formats: tuple[str, ...] = ("json", "html", "md")
    # The commit the search listing reported; None when the candidate came from a REF.
    known_revision: str | None = None


@dataclass(frozen=True)
class CandidateOutcome:
    """What became of one candidate: audited, reused (same revision and options), or failed with a reason."""

    ref: str
    out_dir: str
    status: Literal["audited", "reused", "failed"]
    revision: str | None = None
    reason: str = ""
    attempts: int = 1
    seconds: float = 0.0


@dataclass
class Backoff:
    """Shared by the workers of one machine: after a 429, nobody calls the Hub before `resume_at`."""

    resume_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pause(self, seconds: float) -> None:
        with self.lock:
            self.resume_at = max(self.resume_at, time.monotonic() + seconds)

    def wait(self) -> None:
        delay = self.resume_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class RateLimitedError(Exception):
    """The Hub answered 429; `retry_after` is its Retry-After in seconds (None when absent)."""

    def __init__(self, retry_after: float | None) -> None:
        super().__init__(f"rate limited (Retry-After {retry_after})")
        self.retry_after = retry_after


def _is_rate_limit(exc: AuditError) -> bool:
    return "HTTP 429" in exc.message


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return min(float(value), MAX_WAIT_S) if value is not None else None
    except ValueError:
        return None


def resolve_revision(repo_id: str, revision: str | None, timeout: float) -> str | None:
    """The commit a Hub ref points at now (one `model_info` request); RateLimitedError on 429."""
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hf

    from audit.collect.hub import map_hub_error
    from audit.collect.refs import check_repo_id, check_revision

    check_repo_id(repo_id, "repo id")
    check_revision(revision)
    try:
        info = HfApi().model_info(repo_id, revision=revision, timeout=timeout, expand=["sha"])
    except hf.HfHubHTTPError as exc:
        if exc.response is not None and exc.response.status_code == 429:
            raise RateLimitedError(_retry_after(exc.response)) from exc
        raise map_hub_error(exc, repo_id, revision) from exc
    except Exception as exc:  # noqa: BLE001 - network errors become the Hub error with its hint
        raise map_hub_error(exc, repo_id, revision) from exc
    sha = getattr(info, "sha", None)
    return str(sha) if sha else None


def reusable(out_dir: Path, revision: str | None, options: dict[str, Any], popts: ProbeOptions) -> bool:
    """True when the run folder holds a finished audit of this revision with the same collection options,
    suites and probe options (samples, seed, limit, scorers, backend and its options, data)."""
    import json

    from audit.pipeline import recorded_probe_options

    path = out_dir / "report.json"
    if revision is None or not path.is_file():
        return False
    try:
        data = json.loads(path.read_bytes())
        inputs = data["run"]["inputs"]
        done = inputs.get("probes")
        if popts.suites:
            expected = json.loads(json.dumps(recorded_probe_options(popts), default=str))
            same_probes = done == expected
        else:
            same_probes = not (done or {}).get("suites")
        return bool(
            data["run"]["resolved_revision"] == revision and inputs.get("options") == options and same_probes
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def audit_candidate(job: CandidateJob, backoff: Backoff | None = None) -> CandidateOutcome:
    """Audit one candidate into its run folder (or reuse the finished one); never raises an AuditError."""
    from audit.collect import parse_ref
    from audit.config import AuditOptions, ProbeOptions

    t0 = time.monotonic()
    out = Path(job.out_dir)
    backoff = backoff or Backoff()
    options = AuditOptions.model_validate(job.options)
    popts = ProbeOptions.model_validate(job.probe_options)
    attempts = 0
    revision = job.known_revision

    def outcome(status: Literal["audited", "reused", "failed"], reason: str = "") -> CandidateOutcome:
        return CandidateOutcome(
            job.ref,
            job.out_dir,
            status,
            revision,
            redact_text(reason),
            attempts,
            round(time.monotonic() - t0, 3),
        )

    try:
        ref = parse_ref(job.ref)
    except AuditError as exc:
        return outcome("failed", _reason(exc))
    recorded = options.model_dump(mode="json")
    while True:
        attempts += 1
        backoff.wait()
        try:
            if (out / "report.json").is_file():  # a previous shortlist audited it: is it still current?
                if revision is None and ref.kind == "hub" and ref.repo_id:
                    revision = resolve_revision(ref.repo_id, ref.revision, options.timeout)
                if reusable(out, revision, recorded, popts):
                    return outcome("reused")
            revision = _audit(ref, options, popts, out, job.formats)
            return outcome("audited")
        except RateLimitedError as exc:
            wait_s = exc.retry_after
        except AuditError as exc:
            if not _is_rate_limit(exc) or attempts >= MAX_ATTEMPTS:
                return outcome("failed", _reason(exc))
            wait_s = _probe_retry_after(ref, options.timeout)
        except Exception as exc:  # noqa: BLE001 - one candidate never stops the shortlist
            log.debug("candidate %s failed", job.ref, exc_info=True)
            return outcome("failed", f"unexpected {type(exc).__name__}: {str(exc)[:200]}")
        if attempts >= MAX_ATTEMPTS:
            return outcome("failed", f"the Hub kept answering 429 (rate limited) after {attempts} attempts")
        delay = wait_s if wait_s is not None else min(BASE_WAIT_S * 2 ** (attempts - 1), MAX_WAIT_S)
        log.info("%s: rate limited by the Hub; retrying in %.1f s", job.ref, delay)
        backoff.pause(delay)


def _probe_retry_after(ref: Any, timeout: float) -> float | None:
    """After a 429 inside an audit: read the Retry-After with one cheap request (None: no header, or it passed)."""
    if ref.kind != "hub" or not ref.repo_id:
        return None
    try:
        resolve_revision(ref.repo_id, ref.revision, timeout)
    except RateLimitedError as exc:
        return exc.retry_after if exc.retry_after is not None else None
    except AuditError:
        return None
    return 0.0


def _audit(ref: Any, options: Any, popts: Any, out: Path, formats: Sequence[str]) -> str | None:
    from audit.pipeline import run_audit, write_report
    from audit.progress import SilentProgress

    with contextlib.ExitStack() as locks:
        report, _ = run_audit(ref, options, popts, out_dir=out, progress=SilentProgress(), locks=locks)
        write_report(report, out, list(formats))
    return report.run.resolved_revision


def _reason(exc: AuditError) -> str:
    return f"{exc.message} ({exc.hint})" if exc.hint else exc.message


# ------------------------------------------------------------------ executors

OnDone = Callable[[CandidateOutcome], None]


def run_local(
    jobs: Sequence[CandidateJob], workers: int, on_done: OnDone | None = None
) -> list[CandidateOutcome]:
    """Audit the jobs on `workers` threads (at most that many in flight); outcomes in job order."""
    if workers < 1:
        raise UsageError("--workers must be at least 1", "give --workers 8, for example")
    backoff = Backoff()
    results: dict[int, CandidateOutcome] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="candidate") as pool:
        pending: dict[Future[CandidateOutcome], int] = {}
        queue = iter(enumerate(jobs))
        for i, job in _take(queue, workers):
            pending[pool.submit(audit_candidate, job, backoff)] = i
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                i = pending.pop(fut)
                results[i] = fut.result()
                if on_done is not None:
                    on_done(results[i])
                for j, job in _take(queue, 1):  # bounded: one new job per finished one
                    pending[pool.submit(audit_candidate, job, backoff)] = j
    return [results[i] for i in range(len(jobs))]


def _take(it: Iterator[tuple[int, CandidateJob]], n: int) -> list[tuple[int, CandidateJob]]:
    out = []
    for item in it:
        out.append(item)
        if len(out) >= n:
            break
    return out


def import_ray() -> Any:
    """The ray module, or a UsageError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise UsageError("--executor ray needs Ray, which is not installed", RAY_INSTALL_HINT) from exc
    return ray


def task_env() -> dict[str, Any] | None:
    """A task's runtime environment: None when the job's (set by `start_ray`) already carries the Hub
    settings, else the Hub settings themselves (a Ray instance someone else started)."""
    ray = import_ray()
    job_env = ray.get_runtime_context().runtime_env.get("env_vars") or {}
    wanted = hub_env()
    return None if all(job_env.get(k) == v for k, v in wanted.items()) else {"env_vars": wanted}


def hub_env() -> dict[str, str]:
    """The Hub-related environment the driver runs with (passed to Ray workers)."""
    return {k: os.environ[k] for k in HUB_ENV if k in os.environ}


@dataclass
class RayInfo:
    """How the Ray run went: start-up is measured apart from the audits."""

    address: str
    startup_s: float = 0.0
    started_here: bool = False


def start_ray(address: str | None, worker_slots: int | None = None) -> RayInfo:
    """Connect to the cluster at `address`, or start a local instance (reuses one already started).

    A local instance keeps `worker_slots` idle workers alive (Ray's default keeps one per CPU and
    kills the rest after a second idle, so fractional-CPU tasks would pay the worker start-up,
    seconds of imports, again and again).
    """
    ray = import_ray()
    t0 = time.monotonic()
    if ray.is_initialized():
        return RayInfo(address=address or "local (already running)")
    if not address:  # a private local instance: no token file written under the home folder
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # The job's runtime environment carries the Hub settings to every worker of this driver.
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "runtime_env": {"env_vars": hub_env()},
    }
    if address:
        kwargs["address"] = address
    elif worker_slots:
        kwargs["_system_config"] = {
            "num_workers_soft_limit": int(worker_slots),
            "idle_worker_killing_time_threshold_ms": 60_000,
        }
    try:
        ray.init(**kwargs)
    except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ...
        raise UsageError(
            f"could not start or reach Ray{f' at {redact_text(address)}' if address else ''}: {type(exc).__name__}: "
            f"{redact_text(str(exc))[:200]}",
            "check --ray-address (ray://HOST:10001 or HOST:6379, or `auto` on a cluster node)",
        ) from exc
    return RayInfo(address=address or "local", startup_s=round(time.monotonic() - t0, 3), started_here=True)


def ray_cpus() -> float:
    """CPUs of the Ray cluster the driver is connected to."""
    ray = import_ray()
    return float(ray.cluster_resources().get("CPU", 1.0))


def _warm(hold_s: float) -> int:
    """Import the audit pipeline in a Ray worker (the first import takes seconds); hold it a moment so
    that the next warm-up task gets a worker of its own."""
    import tempfile

    from audit.config import AuditOptions
    from audit.pipeline import audit_model
    from audit.render import renderer

    # A small offline audit of a card file: imports every module a card audit uses, compiles the templates.
    with tempfile.TemporaryDirectory() as tmp:
        card = Path(tmp) / "warm-up.md"
        card.write_text("---\nlicense: mit\n---\n# Warm-up\n\nA card for warming a worker.\n")
        report = audit_model(str(card), AuditOptions(fetch_datasets=False, follow_base_model=False))
        for fmt in ("json", "html", "md"):
            renderer(fmt)[0](report)
    time.sleep(hold_s)
    return os.getpid()


def warm_ray_workers(slots: int, cpus_per_candidate: float) -> int:
    """Start and warm the workers the audits will use (counted as start-up, not audit time); returns how many."""
    ray = import_ray()
    task = ray.remote(_warm).options(num_cpus=cpus_per_candidate, runtime_env=task_env())
    return len(set(ray.get([task.remote(0.5) for _ in range(max(1, slots))])))


def run_ray(
    jobs: Sequence[CandidateJob],
    *,
    cpus_per_candidate: float = 0.25,
    gpus_per_candidate: float = 0.0,
    on_done: OnDone | None = None,
) -> list[CandidateOutcome]:
    """Audit each job as a Ray task (Ray must be started: `start_ray`); outcomes in job order."""
    ray = import_ray()
    remote = ray.remote(audit_candidate)
    env = task_env()
    refs = []
    for job in jobs:
        probes = bool(job.probe_options.get("suites"))
        refs.append(
            remote.options(
                num_cpus=cpus_per_candidate,
                num_gpus=gpus_per_candidate if probes else 0,
                runtime_env=env,
                max_retries=0,
            ).remote(job)
        )
    index = {r: i for i, r in enumerate(refs)}
    results: dict[int, CandidateOutcome] = {}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for r in done:
            i = index[r]
            try:
                results[i] = ray.get(r)
            except Exception as exc:  # noqa: BLE001 - a worker that died is a failed candidate
                results[i] = CandidateOutcome(
                    jobs[i].ref, jobs[i].out_dir, "failed", None, f"Ray task failed: {type(exc).__name__}"
                )
            if on_done is not None:
                on_done(results[i])
    return [results[i] for i in range(len(jobs))]
