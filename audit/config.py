"""Validated options (pydantic, unknown keys rejected)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator


class AuditOptions(BaseModel):
    """Options of the collect and analyse stages. Recorded in the report's run inputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    llm_threshold: float = Field(
        10e9, gt=0, description="Parameter count at or above which a model is a large language model."
    )
    stale_days: int = Field(
        730, gt=0, description="No Hub update for this many days raises provenance.stale."
    )
    fetch_datasets: bool = Field(True, description="Collect the cards of the declared training datasets.")
    max_datasets: int = Field(64, ge=0, description="At most this many declared datasets are collected.")
    dataset_workers: int = Field(8, ge=1, le=32, description="Concurrent dataset-card fetches.")
    follow_base_model: bool = Field(True, description="Collect the base model's card facts (one level).")
    dataset_cards_dir: Path | None = Field(
        None, description="Folder of local dataset cards (<org>__<name>.md or <org>/<name>/README.md)."
    )
    cache_dir: Path | None = Field(None, description="Hugging Face cache folder (default: HF_HUB_CACHE).")
    timeout: float = Field(10.0, gt=0, description="Seconds per Hub request.")
    offline: bool = Field(
        False,
        description="Use only the local Hugging Face cache (as HF_HUB_OFFLINE=1 does); no request is sent.",
    )
    max_card_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="Larger cards are truncated.")
    max_metadata_bytes: int = Field(512 * 1024, ge=1024, description="Larger YAML front matter is rejected.")
    profile: str = Field(
        "internal", description="use-context profile: research, internal, customer-facing or a YAML file"
    )


# ---------------------------------------------------------------- probe suites (YAML under probes/)

from typing import Literal  # noqa: E402

ModelKind = Literal[
    "text-generation",
    "text2text-generation",
    "fill-mask",
    "text-classification",
    "token-classification",
    "question-answering",
    "sentence-embeddings",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TermGroup(_Strict):
    """Identity terms of one group on one axis (e.g. axis religion, group muslim)."""

    axis: str
    group: str
    terms: list[str] = Field(min_length=1)


class PromptSource(_Strict):
    """Where a suite's prompts come from. Exactly one of inline, file, hf_dataset, templates."""

    kind: Literal["inline", "file", "hf_dataset", "templates", "bold"]
    inline: list[str] | None = None
    file: str | None = None
    hf_dataset: str | None = None
    revision: str | None = None
    split: str = "train"
    text_field: str = "text"
    filter_field: str | None = Field(None, description="keep rows where this boolean field is true")
    templates: list[str] | None = None
    groups: list[TermGroup] | None = None
    license: str | None = Field(None, description="licence of the public prompt set, shown in the report")
    data_key: str | None = Field(
        None, description="--data KEY=PATH that locates a user-provided prompt set (bold)"
    )


class Sampling(_Strict):
    """Decoding and subset settings."""

    prompts: int | None = Field(None, ge=1, description="seeded subset of this many prompts (all when unset)")
    samples_per_prompt: int = Field(1, ge=1, le=1000)
    max_new_tokens: int = Field(20, ge=1, le=4096)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int = 0


class ScorerRef(_Strict):
    """A scorer by registered name, with its options (e.g. detoxify variant)."""

    name: str
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)


class WordSet(_Strict):
    """A named set of words or sentences (a target or an attribute of an association test)."""

    name: str
    examples: list[str] = Field(min_length=2)


class AssociationTest(_Strict):
    """A WEAT/SEAT test: targets X, Y against attributes A, B."""

    name: str
    targets: list[WordSet] = Field(min_length=2, max_length=2)
    attributes: list[WordSet] = Field(min_length=2, max_length=2)


def _known_metric(name: str) -> str:
    """A metric name must be in the metrics catalogue; the error names the nearest valid name."""
    from audit.metrics import metric_info, nearest_metric

    if metric_info(name) is None:
        close = nearest_metric(name)
        raise ValueError(f"unknown metric '{name}'" + (f"; did you mean '{close}'?" if close else ""))
    return name


MetricName = Annotated[str, AfterValidator(_known_metric)]


class SuiteSpec(_Strict):
    """What every suite declares, whatever its method. Each method's own fields live on its subclass."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: str
    title: str
    description: str
    citation: str
    method: str = "generation"
    model_kinds: list[ModelKind] = Field(min_length=1)
    sampling: Sampling = Field(default_factory=Sampling)
    metrics: list[MetricName] = Field(min_length=1)
    data: dict[str, str] = Field(
        default_factory=dict, description="method data: dataset ids, licences, file names"
    )


class GenerationSuite(SuiteSpec):
    """method: generation — prompts sampled through the backend, scored by scorers."""

    method: Literal["generation"] = "generation"
    prompts: PromptSource
    scorers: list[ScorerRef] = Field(min_length=1)


class AssociationSuite(SuiteSpec):
    """method: embedding-association — WEAT/SEAT tests on the model's embeddings."""

    method: Literal["embedding-association"]
    association_tests: list[AssociationTest] = Field(min_length=1)
    sentence_templates: list[str] | None = None


class MethodSuite(SuiteSpec):
    """Any other registered method (model_audit.methods): crows-pairs, honest, bbq, classifier-invariance..."""

    prompts: PromptSource | None = Field(
        None, description="templates a method expands (classifier-invariance)"
    )

    @model_validator(mode="after")
    def _registered(self) -> MethodSuite:
        from audit.registry import METHODS

        if self.method not in METHODS.names():
            import difflib

            close = difflib.get_close_matches(self.method, METHODS.names() + ["generation"], n=1)
            raise ValueError(
                f"unknown method '{self.method}'" + (f"; did you mean '{close[0]}'?" if close else "")
            )
        return self


def _suite_tag(data: Any) -> str:
    method = data.get("method", "generation") if isinstance(data, dict) else getattr(data, "method", "")
    return method if method in ("generation", "embedding-association") else "other"


AnySuite = Annotated[
    Annotated[GenerationSuite, Tag("generation")]
    | Annotated[AssociationSuite, Tag("embedding-association")]
    | Annotated[MethodSuite, Tag("other")],
    Discriminator(_suite_tag),
]
SUITE_TAGS = ("generation", "embedding-association", "other")


class ProbeOptions(BaseModel):
    """Options of the sample, score and aggregate stages (`model-audit run --suite ...`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suites: list[str] = Field(default_factory=list)
    auto_suites: bool = Field(True, description="without --suite, run the suites that fit the model's kind")
    backend: str = Field("hf", description="a registered backend (model_audit.backends entry points)")
    backend_options: dict[str, str] = Field(default_factory=dict)
    scorers: list[str] | None = Field(
        None, description="replace the suites' scorers: NAME or NAME:key=value,key=value"
    )
    prompts_file: Path | None = None
    samples: int | None = Field(None, ge=1, le=1000)
    limit: int | None = Field(None, ge=1)
    seed: int | None = None
    no_cache: bool = False
    redact: bool = False
    trust_remote_code: bool = False
    force_suite: bool = Field(
        False, description="run an explicitly requested suite even when it is not for the model's kind"
    )
    detoxify_checkpoint: Path | None = None
    cache_path: Path | None = Field(
        None, description="the sample/score cache file (default ~/.cache/model-audit)"
    )
    worst_samples: int = Field(5, ge=0, le=50)
    seat_dir: Path | None = Field(
        None, description="folder of published SEAT tests (*.jsonl) for embedding-association"
    )
    data: dict[str, str] = Field(
        default_factory=dict, description="method data paths, e.g. crows-pairs=FILE, hurtlex=FILE"
    )
