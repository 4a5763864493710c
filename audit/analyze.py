"""Analyse stage: facts in, findings out. Every finding id here is a public contract (users waive by id).

The catalogue of ids, severities and meanings is documented in docs/findings.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import PurePosixPath

from audit.collect import Collected
from audit.collect.licenses import STRICTNESS, is_stricter
from audit.config import AuditOptions
from audit.model import CardFacts, DatasetFacts, Finding, Severity, Verdict

S = Severity

SECTION_SEVERITY: dict[str, Severity] = {
    "model_description": S.medium,
    "intended_uses": S.medium,
    "out_of_scope_uses": S.medium,
    "bias_risks_limitations": S.high,
    "training_data": S.high,
    "training_procedure": S.low,
    "evaluation": S.medium,
    "environmental_impact": S.low,
    "citation": S.info,
    "contact": S.low,
}

PICKLE_EXTS = {".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib"}
SAFE_WEIGHT_EXTS = {".safetensors", ".gguf", ".onnx", ".msgpack", ".h5", ".tflite", ".keras"}
NON_WEIGHT_BIN_PREFIXES = ("training_args", "optimizer", "scheduler", "rng_state", "tokenizer")


def _fmt_params(n: int) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def _weights(files: Iterable[str]) -> tuple[list[str], list[str]]:
    pickles, safe = [], []
    for f in files:
        p = PurePosixPath(f)
        ext = p.suffix.lower()
        if ext in SAFE_WEIGHT_EXTS:
            safe.append(f)
        elif ext in PICKLE_EXTS or (ext == ".bin" and not p.name.startswith(NON_WEIGHT_BIN_PREFIXES)):
            pickles.append(f)
    return pickles, safe


def card_findings(card: CardFacts, options: AuditOptions, now: dt.datetime) -> list[Finding]:
    """Findings about the model's own card, licence, files and Hub metadata."""
    out: list[Finding] = []
    subj = card.subject
    add = out.append
    if not card.has_card:
        add(
            Finding(
                "docs.no_card",
                S.high,
                "documentation",
                "The model has no model card",
                "No README.md model card was found, so nothing about intended use, data or limitations is documented.",
                (f"{card.source}: no README.md",),
                "Ask the model's authors for a model card before adoption.",
                subj,
            )
        )
    elif not card.readable:
        add(
            Finding(
                "docs.unreadable",
                S.high,
                "documentation",
                "The model card cannot be read",
                "The card is not valid UTF-8 text (binary data or another encoding); none of its content could be checked.",
                card.problems[:3],
                "Obtain a readable (UTF-8 Markdown) model card from the authors.",
                subj,
            )
        )
    else:
        if not card.has_metadata:
            add(
                Finding(
                    "docs.no_metadata",
                    S.medium,
                    "documentation",
                    "The card has no YAML metadata",
                    "Without front matter, the licence, datasets, language and evaluation results are not machine-readable.",
                    ("card: no '---' front matter at the top",),
                    "Ask the authors to add metadata (license, datasets, language, base_model, model-index).",
                    subj,
                )
            )
        meta_problems = [p for p in card.problems if "metadata" in p or "YAML" in p or "front matter" in p]
        if meta_problems:
            add(
                Finding(
                    "docs.metadata_invalid",
                    S.medium,
                    "documentation",
                    "The card's metadata is invalid",
                    "Part of the YAML front matter or model-index could not be read; the audit used what it could.",
                    tuple(meta_problems[:10]),
                    "Fix the card metadata; check it with huggingface_hub's metadata validation.",
                    subj,
                )
            )
        if card.card_truncated:
            add(
                Finding(
                    "docs.card_truncated",
                    S.low,
                    "documentation",
                    "The card was too large to read whole",
                    f"The card is {card.card_bytes:,} bytes; only the first {options.max_card_bytes:,} bytes were analysed.",
                    (f"card size {card.card_bytes:,} bytes",),
                    "Review the rest of the card by hand.",
                    subj,
                )
            )
        for sec in card.sections:
            if sec.present:
                continue
            where = (
                f"heading '{sec.heading}' at line {sec.line} holds only a placeholder"
                if sec.placeholder
                else "no matching heading"
            )
            add(
                Finding(
                    f"docs.section_missing.{sec.key}",
                    SECTION_SEVERITY.get(sec.key, S.low),
                    "documentation",
                    f"Card section missing: {sec.label}",
                    f"The card does not document '{sec.label}'"
                    + (" (placeholder only)." if sec.placeholder else "."),
                    (where,),
                    f"Ask the authors to document '{sec.label}', or document it in your adoption review.",
                    subj,
                )
            )
    out.extend(license_findings(card))
    if card.has_card and card.readable and not card.datasets:
        add(
            Finding(
                "data.undisclosed",
                S.high,
                "data",
                "No training datasets are declared",
                "The card's metadata declares no training datasets, so their licences and content cannot be checked.",
                ("metadata: no 'datasets' field",),
                "Ask the authors which data the model was trained on; check the card's training-data section.",
                subj,
            )
        )
    pickles, safe = _weights(card.files)
    if pickles and not safe:
        add(
            Finding(
                "weights.pickle_only",
                S.high,
                "security",
                "Weights are only in pickle format",
                "Loading pickle-based weights (.bin/.pt/.ckpt/.pkl) can execute arbitrary code; no safetensors file is offered.",
                tuple(pickles[:10]),
                "Convert the weights to safetensors in a sandbox, or load only with weights_only=True.",
                subj,
            )
        )
    remote = remote_code_evidence(card)
    if remote:
        add(
            Finding(
                "code.remote_code",
                S.high,
                "security",
                "The model needs custom code (trust_remote_code)",
                "Loading this model runs Python code from the repository.",
                tuple(remote[:10]),
                "Review the code at a pinned revision before enabling trust_remote_code.",
                subj,
            )
        )
    if card.hub is not None and card.hub.gated:
        add(
            Finding(
                "access.gated",
                S.low,
                "access",
                "Access to the model is gated",
                f"The Hub gates this repository ({card.hub.gated} approval): every user or pipeline needs approved access and a token.",
                (f"model_info.gated = {card.hub.gated}",),
                "Request access for the service account that will load the model.",
                subj,
            )
        )
    if card.hub_error and card.source == "hub":
        add(
            Finding(
                "provenance.hub_unavailable",
                S.info,
                "provenance",
                "Hub metadata was not collected",
                card.hub_error,
                ("model_info",),
                "Re-run with network access for downloads, gating and update dates.",
                subj,
            )
        )
    if card.hub is not None and card.hub.last_modified:
        try:
            last = dt.datetime.fromisoformat(card.hub.last_modified)
            if last.tzinfo is None:
                last = last.replace(tzinfo=dt.timezone.utc)
            age = (now - last).days
            if age >= options.stale_days:
                add(
                    Finding(
                        "provenance.stale",
                        S.medium,
                        "provenance",
                        "The model has not been updated in years",
                        f"Last change on the Hub {age} days ago ({last.date().isoformat()}): it may be unmaintained.",
                        (f"model_info.last_modified = {card.hub.last_modified}",),
                        "Check for a maintained successor; plan to own fixes yourself.",
                        subj,
                    )
                )
        except ValueError:
            pass
    out.append(size_finding(card, options))
    return out


def remote_code_evidence(card: CardFacts) -> list[str]:
    """Why the model needs trust_remote_code (config auto_map, .py files, custom_code tag)."""
    ev = []
    if "custom_code" in card.tags:
        ev.append("tag: custom_code")
    ev.extend(f"file: {f}" for f in card.files if f.endswith(".py"))
    if card.architecture is not None:
        ev.extend(f"config.json auto_map: {m}" for m in card.architecture.auto_map)
    return ev


def size_finding(card: CardFacts, options: AuditOptions) -> Finding:
    """The size class (small or large language model) and what it implies."""
    if card.parameters is None:
        return Finding(
            "size.unknown",
            S.low,
            "deployment",
            "Model size is unknown",
            "Neither safetensors metadata nor config.json gave a parameter count.",
            (),
            "Find the parameter count before estimating serving cost.",
            card.subject,
        )
    n = card.parameters
    gb16 = n * 2 / 1e9
    thr = _fmt_params(int(options.llm_threshold))
    if card.size_class == "large":
        detail = (
            f"{_fmt_params(n)} parameters (at or above the {thr} threshold): about {gb16:.0f} GB of weights in 16-bit, "
            "so serving needs one or more large GPUs or quantisation, and fine-tuning needs parameter-efficient "
            "methods (LoRA/QLoRA) or a multi-GPU cluster."
        )
        title = f"Large language model ({_fmt_params(n)} parameters)"
    else:
        detail = (
            f"{_fmt_params(n)} parameters (below the {thr} threshold): about {gb16:.2f} GB of weights in 16-bit, "
            "so it can be served on a single GPU or CPU and fully fine-tuned at modest cost; expect less "
            "general capability than large models."
        )
        title = f"Small language model ({_fmt_params(n)} parameters)"
    return Finding(
        "size.class",
        S.info,
        "deployment",
        title,
        detail,
        (f"parameters: {n:,} ({card.parameters_source})",),
        "Size the serving hardware from this figure.",
        card.subject,
    )


def license_findings(card: CardFacts) -> list[Finding]:
    """Licence findings for one model card."""
    subj = card.subject
    lic = ", ".join(card.licenses) or "none"
    ev = (f"metadata license: {lic}",)
    c = card.license_class
    if c == "missing":
        if not card.has_card or not card.readable:
            return [
                Finding(
                    "license.missing",
                    S.high,
                    "license",
                    "No licence could be determined",
                    "Without a readable card no licence is declared.",
                    ev,
                    "Do not use the model until its licence is known.",
                    subj,
                )
            ]
        return [
            Finding(
                "license.missing",
                S.high,
                "license",
                "No licence is declared",
                "The card's metadata declares no licence (or 'unknown'): by default, no use is granted.",
                ev,
                "Ask the authors for a licence; do not adopt until one is known.",
                subj,
            )
        ]
    if c == "noncommercial":
        return [
            Finding(
                "license.noncommercial",
                S.high,
                "license",
                "The licence forbids commercial use",
                f"Licence {lic} allows non-commercial use only.",
                ev,
                "Do not use the model in a commercial product; seek a commercial licence.",
                subj,
            )
        ]
    if c == "copyleft":
        return [
            Finding(
                "license.copyleft",
                S.medium,
                "license",
                "Copyleft licence",
                f"Licence {lic} requires derivatives (and possibly services) to be shared under the same terms.",
                ev,
                "Have legal review the share-alike obligations for your distribution model.",
                subj,
            )
        ]
    if c == "restricted_use":
        return [
            Finding(
                "license.restricted_use",
                S.medium,
                "license",
                "Use-restricted licence",
                f"Licence {lic} (OpenRAIL, Llama/Gemma-style community or no-derivatives licence) restricts uses or users.",
                ev,
                "Check the licence's use restrictions and user thresholds against your use case.",
                subj,
            )
        ]
    if c == "other":
        extra = []
        if card.license_name:
            extra.append(f"license_name: {card.license_name}")
        if card.license_link:
            extra.append(f"license_link: {card.license_link}")
        return [
            Finding(
                "license.other",
                S.medium,
                "license",
                "Custom licence needs legal review",
                f"Licence '{lic}' is not a standard licence id; its terms are in custom text.",
                ev + tuple(extra),
                "Send the licence text to legal review before adoption.",
                subj,
            )
        ]
    return []


def conflict_findings(
    card: CardFacts, bases: Iterable[CardFacts], datasets: Iterable[DatasetFacts]
) -> list[Finding]:
    """`license.conflict`: data or a base model under a stricter licence than the model's own."""
    out: list[Finding] = []
    mine = card.license_class
    if mine not in STRICTNESS:
        return out
    for ds in datasets:
        if ds.available and is_stricter(ds.license_class, mine):
            sev = S.high if ds.license_class in ("noncommercial", "restricted_use") else S.medium
            out.append(
                Finding(
                    "license.conflict",
                    sev,
                    "license",
                    f"Training data licence is stricter than the model's ({ds.id})",
                    f"The model is released under {', '.join(card.licenses)} ({mine}) but declares training "
                    f"dataset {ds.id} under {', '.join(ds.licenses)} ({ds.license_class}).",
                    (
                        f"dataset {ds.id} license: {', '.join(ds.licenses)}",
                        f"model license: {', '.join(card.licenses)}",
                    ),
                    "Have legal review whether the model's licence can be relied on.",
                    card.subject,
                )
            )
    for base in bases:
        if base.has_card and is_stricter(base.license_class, mine):
            out.append(
                Finding(
                    "license.conflict",
                    S.high,
                    "license",
                    f"Base model licence is stricter than the derivative's ({base.subject})",
                    f"The model is released under {', '.join(card.licenses)} ({mine}) but its base model "
                    f"{base.subject} is under {', '.join(base.licenses)} ({base.license_class}); the base "
                    "licence's terms still bind the derivative.",
                    (f"base_model {base.subject} license: {', '.join(base.licenses)}",),
                    "Treat the model as bound by the base model's licence.",
                    card.subject,
                )
            )
    return out


def dataset_findings(datasets: list[DatasetFacts]) -> list[Finding]:
    """Findings over the declared training datasets, one per id with every dataset as evidence."""
    groups: dict[str, list[str]] = {}
    for ds in datasets:
        if not ds.available:
            groups.setdefault("dataset.card_unavailable", []).append(f"{ds.id}: {ds.error}")
            continue
        if ds.license_class == "missing":
            groups.setdefault("dataset.license_missing", []).append(
                f"{ds.id}: license {', '.join(ds.licenses) or 'not declared'}"
            )
        if ds.license_class == "noncommercial":
            groups.setdefault("dataset.noncommercial", []).append(
                f"{ds.id}: license {', '.join(ds.licenses)}"
            )
        if ds.personal_info in ("present", "undocumented"):
            say = (
                "card says personal information is present"
                if ds.personal_info == "present"
                else "card says nothing about personal information"
            )
            groups.setdefault("dataset.personal_info", []).append(f"{ds.id}: {say}")
        if not ds.bias_documented:
            groups.setdefault("dataset.bias_undocumented", []).append(f"{ds.id}: no discussion of biases")
    spec = {
        "dataset.card_unavailable": (
            S.low,
            "Some dataset cards could not be collected",
            "These declared datasets could not be checked for licence, personal data or bias.",
            "Re-run with network access or --dataset-cards DIR, or review these datasets by hand.",
        ),
        "dataset.license_missing": (
            S.medium,
            "Training datasets without a licence",
            "These datasets declare no licence (or 'unknown'): the right to train on them is unclear.",
            "Have legal review the provenance of these datasets.",
        ),
        "dataset.noncommercial": (
            S.high,
            "Training datasets under non-commercial licences",
            "These datasets allow non-commercial use only.",
            "Have legal review whether a model trained on them can be used commercially.",
        ),
        "dataset.personal_info": (
            S.medium,
            "Training data may contain personal information",
            "These dataset cards say personal or sensitive information is present, or say nothing about it.",
            "Run a privacy review (GDPR/CCPA) and probe the model for memorised personal data.",
        ),
        "dataset.bias_undocumented": (
            S.low,
            "Training data biases are undocumented",
            "These dataset cards do not discuss biases in the data.",
            "Probe the model for bias (model-audit run with the bias suites).",
        ),
    }
    out = []
    for fid, (sev, title, detail, rec) in spec.items():
        if fid in groups:
            ev = groups[fid]
            if fid == "dataset.personal_info" and not any("is present" in e for e in ev):
                sev = S.low
            out.append(Finding(fid, sev, "data", f"{title} ({len(ev)})", detail, tuple(ev), rec, "datasets"))
    return out


def base_model_findings(bases: Iterable[CardFacts]) -> list[Finding]:
    """Findings about base models that could not be collected."""
    out = []
    for b in bases:
        if not b.has_card:
            out.append(
                Finding(
                    "lineage.base_unavailable",
                    S.low,
                    "provenance",
                    f"Base model card unavailable ({b.subject})",
                    "The base model's card could not be collected, so its licence could not be compared.",
                    b.problems[:3],
                    "Review the base model's licence by hand.",
                    b.subject,
                )
            )
    return out


def analyse(
    collected: Collected, options: AuditOptions, now: dt.datetime | None = None
) -> tuple[Finding, ...]:
    """All findings for one collected model, sorted by severity (highest first), then id."""
    now = now or dt.datetime.now(dt.timezone.utc)
    findings = card_findings(collected.card, options, now)
    findings += conflict_findings(collected.card, collected.base_models, collected.datasets)
    findings += dataset_findings(list(collected.datasets))
    findings += base_model_findings(collected.base_models)
    return tuple(sorted(findings, key=lambda f: (-f.severity.rank, f.id)))


def verdict(findings: Iterable[Finding]) -> Verdict:
    """Counts by severity and an overall rating (policies refine this later)."""
    fs = list(findings)
    counts = {s.value: sum(1 for f in fs if f.severity == s) for s in Severity}
    top = max((f.severity for f in fs), key=lambda s: s.rank, default=None)
    if top is not None and top.rank >= S.high.rank:
        rating, summary = (
            "high risk",
            f"{counts['critical'] + counts['high']} high or critical findings need resolution before adoption.",
        )
    elif top is not None and top.rank >= S.medium.rank:
        rating, summary = "review", f"{counts['medium']} medium findings need a reviewer's judgement."
    else:
        rating, summary = "low risk", "No finding above low severity."
    return Verdict(rating=rating, highest_severity=top, counts=counts, summary=summary)  # type: ignore[arg-type]
