"""The data model of an audit: frozen dataclasses, defined once.

Everything that crosses a stage boundary (collect -> analyse -> render) is one of
these types. `report.json` is `AuditReport` serialised with pydantic's TypeAdapter,
which also validates it when read back and publishes its JSON Schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Any, Literal, TypedDict

from pydantic import Field

SCHEMA_VERSION = "1.1"


class Severity(str, Enum):
    """How much a finding matters to an adoption decision."""

    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self.value]


_SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
SEVERITIES: tuple[Severity, ...] = tuple(Severity)

RefKind = Literal["hub", "local-folder", "card-file", "azureml"]
LicenseClass = Literal[
    "permissive", "copyleft", "restricted_use", "noncommercial", "other", "unknown", "missing"
]


@dataclass(frozen=True)
class ModelRef:
    """What the user asked to audit: a Hub repo id (with revision), a local folder or a card file."""

    raw: str
    kind: RefKind
    repo_id: str | None = None
    revision: str | None = None
    path: str | None = None
    name: str | None = None
    # An Azure ML registry model (kind "azureml"): repo_id is the model name, revision the version asked for.
    registry: str | None = None
    label: str | None = None

    @property
    def display(self) -> str:
        if self.name:
            return self.name
        if self.kind == "azureml":
            tail = f"versions/{self.revision}" if self.revision else f"labels/{self.label}"
            return f"azureml://registries/{self.registry}/models/{self.repo_id}/{tail}"
        if self.kind == "hub":
            return f"{self.repo_id}@{self.revision}" if self.revision else str(self.repo_id)
        return str(self.path)


@dataclass(frozen=True)
class Finding:
    """One thing a reviewer should know, with a stable id users can waive."""

    id: str
    severity: Severity
    category: str
    title: str
    detail: str
    evidence: tuple[str, ...] = ()
    recommendation: str = ""
    subject: str = ""


@dataclass(frozen=True)
class SectionFact:
    """Whether a recommended card section is present, and where."""

    key: str
    label: str
    present: bool
    placeholder: bool = False
    heading: str = ""
    line: int | None = None
    excerpt: str = ""
    # How the section was found: heading, lead-in (bold/italic/`Label:` at the start of a paragraph or list item),
    # table (a header cell), text (a sentence or BibTeX entry), introduction, metadata; "" when not found.
    found_by: str = ""
    # The placeholder the section holds when it holds nothing else ("[More Information Needed]", "(an empty table)").
    placeholder_text: str = ""


@dataclass(frozen=True)
class EvalResultFact:
    """One declared evaluation result from the card's `model-index`."""

    task_type: str
    dataset_name: str
    dataset_type: str
    metric_type: str
    metric_value: str
    metric_name: str = ""
    dataset_split: str = ""
    dataset_config: str = ""
    verified: bool | None = None


@dataclass(frozen=True)
class ArchitectureFacts:
    """What `config.json` says about the network: drives inference cost."""

    model_type: str | None = None
    architectures: tuple[str, ...] = ()
    context_length: int | None = None
    num_layers: int | None = None
    hidden_size: int | None = None
    intermediate_size: int | None = None
    vocab_size: int | None = None
    num_attention_heads: int | None = None
    num_key_value_heads: int | None = None
    attention: str | None = None
    sliding_window: int | None = None
    num_experts: int | None = None
    torch_dtype: str | None = None
    auto_map: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class HubFacts:
    """Hub metadata from `model_info` / `dataset_info`."""

    sha: str | None = None
    last_modified: str | None = None
    created_at: str | None = None
    gated: str | None = None
    private: bool | None = None
    disabled: bool | None = None
    downloads: int | None = None
    likes: int | None = None
    library_name: str | None = None
    pipeline_tag: str | None = None
    tags: tuple[str, ...] = ()
    base_models: tuple[str, ...] = ()
    safetensors_total: int | None = None


@dataclass(frozen=True)
class CardFacts:
    """Facts about one model: its card, Hub metadata, files and architecture."""

    subject: str
    source: str
    readable: bool = True
    has_card: bool = True
    has_metadata: bool = False
    resolved_revision: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    licenses: tuple[str, ...] = ()
    license_name: str | None = None
    license_link: str | None = None
    license_class: LicenseClass = "missing"
    datasets: tuple[str, ...] = ()
    base_models: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    pipeline_tag: str | None = None
    library_name: str | None = None
    title: str = ""
    sections: tuple[SectionFact, ...] = ()
    documentation_score: float = 0.0
    eval_results: tuple[EvalResultFact, ...] = ()
    hub: HubFacts | None = None
    hub_error: str | None = None
    architecture: ArchitectureFacts | None = None
    parameters: int | None = None
    parameters_source: str | None = None
    size_class: str | None = None
    files: tuple[str, ...] = ()
    card_bytes: int = 0
    card_truncated: bool = False
    problems: tuple[str, ...] = ()
    # False when the front matter could not be read or a metadata field has the wrong type.
    metadata_ok: bool = True
    metadata_problems: tuple[str, ...] = ()
    # The language of the card's prose (ISO 639-1, guessed from scripts and stopwords; None when too little text),
    # and whether section matching is limited for it: the card is written in a language the section patterns do
    # not cover, so a section not found may still be there.
    language_detected: str | None = None
    sections_limited: bool = False
    # What the card's prose states about training (audit/compute.py): tokens and a parameter count, with where.
    training_tokens: int | None = None
    training_tokens_source: str = ""
    parameters_stated: int | None = None
    parameters_stated_source: str = ""
    # What an Azure AI Foundry catalog entry states (source "azureml"); None for other sources.
    catalog: CatalogFacts | None = None


@dataclass(frozen=True)
class CatalogFacts:
    """What one Azure AI Foundry catalog entry (an Azure ML registry model version) states.

    A field the entry does not state stays empty and its label is listed in `not_stated`: the
    audit never guesses it.
    """

    registry: str
    name: str
    version: str
    asset_id: str
    requested: str = ""
    created_at: str | None = None
    license: str | None = None
    license_source: str | None = None
    task: str | None = None
    task_source: str | None = None
    author: str | None = None
    languages: tuple[str, ...] = ()
    model_type: str | None = None
    inference_compute: tuple[str, ...] = ()
    finetune_compute: tuple[str, ...] = ()
    finetuning_tasks: tuple[str, ...] = ()
    inference_envs: tuple[str, ...] = ()
    security_scanned: bool = False
    datasets: tuple[str, ...] = ()
    weight_files: tuple[str, ...] = ()
    hub_model_id: str | None = None
    hub_commit: str | None = None
    hub_resolved_revision: str | None = None
    hub_licenses: tuple[str, ...] = ()
    hub_license_class: LicenseClass | None = None
    hub_error: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    not_stated: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetFacts:
    """Facts about one training dataset the model card declares."""

    id: str
    available: bool
    error: str | None = None
    source: str = "hub"
    resolved_revision: str | None = None
    pretty_name: str | None = None
    licenses: tuple[str, ...] = ()
    license_class: LicenseClass = "missing"
    task_categories: tuple[str, ...] = ()
    size_categories: tuple[str, ...] = ()
    personal_info: Literal["present", "absent", "unclear", "undocumented"] = "undocumented"
    personal_info_excerpt: str = ""
    bias_documented: bool = False
    sections: tuple[SectionFact, ...] = ()
    gated: str | None = None
    last_modified: str | None = None
    problems: tuple[str, ...] = ()
    # As on CardFacts: the dataset card's language and whether section matching is limited for it.
    language_detected: str | None = None
    sections_limited: bool = False


@dataclass(frozen=True)
class Prompt:
    """One prompt of a suite, with the group it speaks about (counterfactual suites)."""

    id: str
    text: str
    axis: str = ""
    group: str = ""
    template_id: str = ""
    term: str = ""


class SampleRecord(TypedDict):
    """One line of samples.jsonl: one sampled output of one prompt (keyed by `key`)."""

    key: str
    suite: str
    prompt_id: str
    sample_index: int
    axis: str
    group: str
    template_id: str
    prompt: str
    output: str


class ScoreRecord(TypedDict):
    """One line of scores.jsonl: one scorer's scores of one sample (keyed by `skey`)."""

    skey: str
    key: str
    prompt_id: str
    sample_index: int
    scorer: str
    scores: dict[str, float]


@dataclass(frozen=True)
class MetricResult:
    """A metric value with its 95% confidence interval, n and group (axis for gaps)."""

    name: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    group: str = ""
    note: str = ""
    axis: str = ""
    label: str = ""
    higher_is_worse: bool = True
    p_value: float | None = None
    p_adjusted: float | None = None
    # True for a metric that checks the instrument, not the model (a sanity-control test, the scorer's own gap).
    control: bool = False


@dataclass(frozen=True)
class QuantizationFacts:
    """int8 scoring's agreement with float on a seeded calibration subset of the run's own texts."""

    requested: str  # "int8"
    used: str  # "int8", or "float" when the check failed (or the model could not be quantised)
    runtime: str  # e.g. "onnxruntime 1.32.0 dynamic quantisation (int8 weights, linear layers)"
    n: int  # calibration texts scored both ways
    pearson_r: float | None
    max_abs_diff: float | None
    same_side: float | None  # share of texts on the same side of the threshold (the lowest over labels)
    threshold: float
    floor: str  # the agreement floor, stated
    note: str = ""  # why the run fell back to float, when it did


@dataclass(frozen=True)
class ScorerFacts:
    """A scorer as run: version, threshold and its source, direction."""

    name: str
    version: str
    citation: str
    primary: str
    threshold: float
    threshold_source: str
    higher_is_worse: bool
    kind: str  # "toxicity" or "sentiment"
    options: tuple[tuple[str, str], ...] = ()
    # int8 scoring's self-check on this run (None when the scorer ran in float without being asked for int8).
    quantization: QuantizationFacts | None = None


@dataclass(frozen=True)
class SampleView:
    """One sample shown in the report (worst samples), with its scores."""

    prompt_id: str
    sample_index: int
    prompt: str
    output: str
    score: float
    group: str = ""


@dataclass(frozen=True)
class ScorerValidation:
    """A scorer against human labels: AUC and accuracy at its threshold."""

    scorer: str
    source: str
    sha256: str
    n: int
    positives: int
    auc: float | None
    accuracy: float | None
    threshold: float
    label: str = ""


@dataclass(frozen=True)
class GenerationProtocol:
    """How a generation suite sampled: the backend's settings, prompts x samples and the decoding."""

    backend: dict[str, Any]
    prompts: int
    samples_per_prompt: int
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int
    decoding: str
    kind: Literal["generation"] = "generation"


@dataclass(frozen=True)
class MethodProtocol:
    """How a method suite ran (association tests, CrowS-Pairs, HONEST, BBQ, invariance): its own settings."""

    method: str
    settings: dict[str, Any] = field(default_factory=dict)
    kind: Literal["method"] = "method"


Protocol = Annotated[GenerationProtocol | MethodProtocol, Field(discriminator="kind")]


@dataclass(frozen=True)
class GenerationAggregate:
    """What the aggregate stage of a generation suite yields, besides its findings."""

    metrics: tuple[MetricResult, ...] = ()
    distribution: tuple[float, ...] = ()
    worst: tuple[SampleView, ...] = ()
    redacted: bool = False
    notes: tuple[str, ...] = ()
    scorer_validation: tuple[ScorerValidation, ...] = ()


@dataclass(frozen=True)
class ProbeResult:
    """The result of one probe suite: the protocol as run, metrics with intervals, distribution, worst samples."""

    suite: str
    version: str
    title: str = ""
    citation: str = ""
    protocol: Protocol | None = None
    prompt_source: dict[str, Any] = field(default_factory=dict)
    scorers: tuple[ScorerFacts, ...] = ()
    metrics: tuple[MetricResult, ...] = ()
    distribution: tuple[float, ...] = ()
    worst: tuple[SampleView, ...] = ()
    redacted: bool = False
    notes: tuple[str, ...] = ()
    skipped: str = ""
    # Why the suite's metrics are invalid ("" when they are valid): e.g. the head it relies on was newly initialised.
    invalid: str = ""
    # The scorer checked against labelled data the user gave (--data scorer-validation=FILE).
    scorer_validation: tuple[ScorerValidation, ...] = ()


@dataclass(frozen=True)
class RunInfo:
    """How the audit was run: enough to reproduce it."""

    tool_version: str
    started_at: str
    finished_at: str
    duration_s: float
    inputs: dict[str, Any]
    resolved_revision: str | None
    library_versions: dict[str, str]
    hub_endpoint: str | None = None
    offline: bool = False


@dataclass(frozen=True)
class Verdict:
    """The overall summary before any policy is applied."""

    rating: Literal["low risk", "review", "high risk"]
    highest_severity: Severity | None
    counts: dict[str, int]
    summary: str
    # The findings that set the rating, one line each, in order of concern.
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleOutcome:
    """One policy rule as evaluated: what it checked, its verdict and the evidence."""

    rule: str
    kind: str
    verdict: Literal["pass", "warn", "fail", "inconclusive"]
    message: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class WaiverStatus:
    """A waiver from the policy and whether it applied."""

    finding_id: str
    owner: str
    justification: str
    expires: str
    status: Literal["active", "expired", "unused"]


@dataclass(frozen=True)
class GateResult:
    """A policy applied to this report."""

    policy: str
    policy_sha256: str
    verdict: Literal["pass", "warn", "fail", "inconclusive"]
    rules: tuple[RuleOutcome, ...]
    waivers: tuple[WaiverStatus, ...] = ()
    # The use-context profile the findings were weighed under when the policy was applied.
    profile: str = ""


@dataclass(frozen=True)
class MetricChange:
    """A metric of the baseline and of this run, and whether the change is significant."""

    suite: str
    metric: str
    group: str
    old: float | None
    new: float | None
    p_value: float | None
    significant: bool
    worse: bool
    test: str


@dataclass(frozen=True)
class DriftResult:
    """What changed since a baseline audit."""

    baseline: str
    old_revision: str | None
    new_revision: str | None
    revision_changed: bool
    metadata_changes: tuple[str, ...] = ()
    license_changed: bool = False
    sections_added: tuple[str, ...] = ()
    sections_removed: tuple[str, ...] = ()
    findings_new: tuple[str, ...] = ()
    findings_resolved: tuple[str, ...] = ()
    metrics: tuple[MetricChange, ...] = ()


@dataclass(frozen=True)
class Integrity:
    """sha256 over the report (with this field empty) and the run's sample and score files."""

    content_hash: str
    covers: tuple[str, ...]


@dataclass(frozen=True)
class SeverityChange:
    """A finding whose severity the use-context profile changed, and the rule that changed it."""

    finding_id: str
    subject: str
    old: Severity
    new: Severity
    rule: str
    detail: str = ""


@dataclass(frozen=True)
class ProfileApplied:
    """The use-context profile the findings are weighed under (audit/profiles.py), and what it changed.

    `added` and `removed` hold the findings the profile raised or withdrew (stricter or looser probe
    thresholds, probe-data licences), so the profile can be undone exactly and another applied.
    """

    name: str
    source: str
    sha256: str
    description: str
    commercial: bool
    thresholds: dict[str, float] = field(default_factory=dict)
    changes: tuple[SeverityChange, ...] = ()
    added: tuple[Finding, ...] = ()
    removed: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class ComputeEstimate:
    """Training compute estimated as 6 x parameters x training tokens, with its inputs (audit/compute.py)."""

    statement: str
    flop: float | None = None
    parameters: int | None = None
    parameters_source: str = ""
    tokens: int | None = None
    tokens_source: str = ""
    threshold_flop: float = 1e25
    exceeds_threshold: bool | None = None


@dataclass(frozen=True)
class FrameworkItemEvidence:
    """One item of a governance framework and what this audit says about it."""

    item: str
    title: str
    answered: bool
    evidence: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class FrameworkCoverage:
    """One governance framework: items this audit gives evidence for, and items a reviewer must answer."""

    framework: str
    title: str
    citation: str
    items: tuple[FrameworkItemEvidence, ...] = ()


@dataclass(frozen=True)
class AuditReport:
    """One audit: the single object every renderer reads."""

    schema_version: str
    run: RunInfo
    subject: ModelRef
    card: CardFacts
    base_models: tuple[CardFacts, ...]
    datasets: tuple[DatasetFacts, ...]
    findings: tuple[Finding, ...]
    probes: tuple[ProbeResult, ...]
    verdict: Verdict
    gate: GateResult | None = None
    drift: DriftResult | None = None
    integrity: Integrity | None = None
    # The use-context profile (research, internal, customer-facing or a file) the findings are weighed under.
    profile: ProfileApplied | None = None
    # Training compute estimated from the card (6 x parameters x tokens), when it states training tokens.
    compute: ComputeEstimate | None = None
    # What this audit gives evidence for in NIST AI RMF 1.0, the EU AI Act and ISO/IEC 42001 (audit/frameworks.py).
    frameworks: tuple[FrameworkCoverage, ...] = ()
