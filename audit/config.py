"""Validated options (pydantic, unknown keys rejected)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
    max_card_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="Larger cards are truncated.")
    max_metadata_bytes: int = Field(512 * 1024, ge=1024, description="Larger YAML front matter is rejected.")


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


Method = Literal[
    "generation", "embedding-association", "crows-pairs", "honest", "bbq", "classifier-invariance"
]


class SuiteSpec(_Strict):
    """A probe suite as declared in YAML. `method` picks the Python code that runs it (never code from YAML)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: str
    title: str
    description: str
    citation: str
    method: Method = "generation"
    model_kinds: list[ModelKind] = Field(min_length=1)
    prompts: PromptSource | None = None
    sampling: Sampling = Field(default_factory=Sampling)
    scorers: list[ScorerRef] = Field(default_factory=list)
    metrics: list[str] = Field(min_length=1)
    association_tests: list[AssociationTest] | None = None
    data: dict[str, str] = Field(
        default_factory=dict, description="method data: dataset ids, licences, file names"
    )
    sentence_templates: list[str] | None = None

    @model_validator(mode="after")
    def _method_needs(self) -> SuiteSpec:
        if self.method == "generation" and (self.prompts is None or not self.scorers):
            raise ValueError("a generation suite needs prompts and at least one scorer")
        if self.method == "embedding-association" and not self.association_tests:
            raise ValueError("an embedding-association suite needs association_tests")
        return self


class ProbeOptions(BaseModel):
    """Options of the sample, score and aggregate stages (`model-audit run --suite ...`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suites: list[str] = Field(default_factory=list)
    auto_suites: bool = Field(True, description="without --suite, run the suites that fit the model's kind")
    backend: Literal["hf", "openai", "replay"] = "hf"
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
