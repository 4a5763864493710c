"""Analyse stage: facts in, findings out. Every finding id here is a public contract (users waive by id).

Ids, severities, titles and recommendations come from the findings catalogue (`audit.findings`,
documented in docs/findings.md); this module decides which findings the facts raise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import PurePosixPath

from audit.collect import Collected
from audit.collect.licenses import STRICTNESS, is_stricter
from audit.collect.local import IMPLAUSIBLE_PREFIX, UNSAFE_PREFIX
from audit.config import AuditOptions
from audit.findings import FINDINGS, concern_rank, finding
from audit.format import plural
from audit.model import CardFacts, DatasetFacts, Finding, SectionFact, Severity, Verdict

S = Severity

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
    out = card_document_findings(card, options)
    out += license_findings(card)
    out += training_data_findings(card)
    out += security_findings(card)
    out += hub_findings(card, options, now)
    out.append(size_finding(card, options))
    return out


def no_card_finding(card: CardFacts) -> Finding:
    """`docs.no_card`, for a folder or repo without README.md or an endpoint with no Hub card."""
    if card.source == "endpoint":
        return finding(
            "docs.no_card",
            subject=card.subject,
            detail="The model is served by an OpenAI-compatible endpoint and no Hub model card was found for it.",
            evidence=card.problems[:1],
        )
    return finding("docs.no_card", subject=card.subject, evidence=(f"{card.source}: no README.md",))


def card_document_findings(card: CardFacts, options: AuditOptions) -> list[Finding]:
    """The card as a document: present, readable, with valid metadata, whole, with every section."""
    subj = card.subject
    if not card.has_card:
        return [no_card_finding(card)]
    if not card.readable:
        return [finding("docs.unreadable", subject=subj, evidence=card.problems[:3])]
    out = []
    if not card.has_metadata:
        out.append(
            finding("docs.no_metadata", subject=subj, evidence=("card: no '---' front matter at the top",))
        )
    if not card.metadata_ok:
        out.append(finding("docs.metadata_invalid", subject=subj, evidence=card.metadata_problems[:10]))
    if card.card_truncated:
        out.append(
            finding(
                "docs.card_truncated",
                subject=subj,
                detail=f"The card is {card.card_bytes:,} bytes; only the first {options.max_card_bytes:,} "
                "bytes were analysed.",
                evidence=(f"card size {card.card_bytes:,} bytes",),
            )
        )
    if card.sections_limited:  # a language the section patterns do not cover: unknown, not missing
        unchecked = [sec.label for sec in card.sections if not sec.present]
        if unchecked:
            out.append(
                finding(
                    "docs.language_unsupported",
                    subject=subj,
                    detail=f"The card is written in a language detected as '{card.language_detected}', which the "
                    f"section matching does not cover; {len(unchecked)} recommended sections could not be checked "
                    "and are not reported missing.",
                    evidence=tuple(f"not checked: {label}" for label in unchecked),
                )
            )
        return out
    out += [section_finding(sec, subj) for sec in card.sections if not sec.present]
    return out


def section_finding(sec: SectionFact, subject: str) -> Finding:
    """`docs.section_missing.<key>`: a recommended section absent or holding only a placeholder."""
    if sec.placeholder:
        detail = f"The card does not document '{sec.label}' (placeholder only)."
        quoted = f": {sec.placeholder_text!r}" if sec.placeholder_text else ""
        where = f"heading '{sec.heading}' at line {sec.line} holds only a placeholder{quoted}"
    else:
        detail, where = f"The card does not document '{sec.label}'.", "no matching heading"
    return finding(f"docs.section_missing.{sec.key}", subject=subject, detail=detail, evidence=(where,))


def training_data_findings(card: CardFacts) -> list[Finding]:
    """`data.undisclosed`: no training datasets in the metadata (medium when the card describes them in prose)."""
    if not (card.has_card and card.readable) or card.datasets:
        return []
    prose = next((s for s in card.sections if s.key == "training_data" and s.present), None)
    if prose is None:
        return [
            finding(
                "data.undisclosed",
                subject=card.subject,
                detail="The card declares no training datasets, in its metadata or in a training-data section, "
                "so their licences and content cannot be checked.",
                evidence=("metadata: no 'datasets' field", "card: no training-data section"),
            )
        ]
    return [
        finding(
            "data.undisclosed",
            subject=card.subject,
            severity=S.medium,
            detail="The card's metadata declares no training datasets; the card describes the data only in "
            "prose, so their licences and content cannot be checked automatically.",
            evidence=(
                "metadata: no 'datasets' field",
                f"training-data section '{prose.heading}' at line {prose.line}",
            ),
        )
    ]


def security_findings(card: CardFacts) -> list[Finding]:
    """Pickle-only weights and code that runs on load."""
    out = []
    pickles, safe = _weights(card.files)
    if pickles and not safe:
        out.append(finding("weights.pickle_only", subject=card.subject, evidence=pickles[:10]))
    remote = remote_code_evidence(card)
    if remote:
        out.append(finding("code.remote_code", subject=card.subject, evidence=remote[:10]))
    unsafe = [p.removeprefix(UNSAFE_PREFIX) for p in card.problems if p.startswith(UNSAFE_PREFIX)]
    if unsafe:
        out.append(finding("files.unsafe_entry", subject=card.subject, evidence=unsafe[:20]))
    return out


def hub_findings(card: CardFacts, options: AuditOptions, now: dt.datetime) -> list[Finding]:
    """What the Hub's metadata says: gated access, metadata not collected, no update in years."""
    out = []
    subj = card.subject
    if card.hub is not None and card.hub.gated:
        out.append(
            finding(
                "access.gated",
                subject=subj,
                detail=f"The Hub gates this repository ({card.hub.gated} approval): every user or pipeline "
                "needs approved access and a token.",
                evidence=(f"model_info.gated = {card.hub.gated}",),
            )
        )
    if card.hub_error and card.source == "hub":
        out.append(
            finding(
                "provenance.hub_unavailable", subject=subj, detail=card.hub_error, evidence=("model_info",)
            )
        )
    stale = stale_finding(card, options, now)
    if stale is not None:
        out.append(stale)
    return out


def stale_finding(card: CardFacts, options: AuditOptions, now: dt.datetime) -> Finding | None:
    """`provenance.stale`: no change on the Hub (or in the catalog) for `stale_days` days."""
    if card.hub is None or not card.hub.last_modified:
        return None
    try:
        last = dt.datetime.fromisoformat(card.hub.last_modified)
    except ValueError:
        return None
    if last.tzinfo is None:
        last = last.replace(tzinfo=dt.timezone.utc)
    age = (now - last).days
    if age < options.stale_days:
        return None
    if card.source == "azureml":  # the catalog version's creation time stands for the last change
        where, field = "in the Azure ML registry (this version's creation)", "catalog systemData.createdAt"
    else:
        where, field = "on the Hub", "model_info.last_modified"
    return finding(
        "provenance.stale",
        subject=card.subject,
        detail=f"Last change {where} {age} days ago ({last.date().isoformat()}): it may be unmaintained.",
        evidence=(f"{field} = {card.hub.last_modified}",),
    )


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
        implausible = [p for p in card.problems if p.startswith(IMPLAUSIBLE_PREFIX)]
        return finding("size.unknown", subject=card.subject, evidence=implausible[:1])
    n = card.parameters
    gb16 = n * 2 / 1e9
    thr = _fmt_params(int(options.llm_threshold))
    if card.size_class == "large":
        detail = (
            f"Large language model: {_fmt_params(n)} parameters (at or above the {thr} threshold), about "
            f"{gb16:.0f} GB of weights in 16-bit, so serving needs one or more large GPUs or quantisation, and "
            "fine-tuning needs parameter-efficient methods (LoRA/QLoRA) or a multi-GPU cluster."
        )
    else:
        detail = (
            f"Small language model: {_fmt_params(n)} parameters (below the {thr} threshold), about "
            f"{gb16:.2f} GB of weights in 16-bit, so it can be served on a single GPU or CPU and fully "
            "fine-tuned at modest cost; expect less general capability than large models."
        )
    return finding(
        "size.class",
        subject=card.subject,
        detail=detail,
        evidence=(f"parameters: {n:,} ({card.parameters_source})",),
    )


_LICENSE_DETAIL = {
    "noncommercial": "Licence {lic} allows non-commercial use only.",
    "copyleft": "Licence {lic} requires derivatives (and possibly services) to be shared under the same terms.",
    "restricted_use": "Licence {lic} (OpenRAIL, Llama/Gemma-style community or no-derivatives licence) "
    "restricts uses or users.",
    "other": "Licence '{lic}' is not a standard licence id; its terms are in custom text.",
}


def license_findings(card: CardFacts) -> list[Finding]:
    """Licence findings for one model card."""
    lic = ", ".join(card.licenses) or "none"
    ev: tuple[str, ...] = (f"metadata license: {lic}",)
    c = card.license_class
    if c == "missing":
        detail = (
            "The card's metadata declares no licence (or 'unknown'): by default, no use is granted."
            if card.has_card and card.readable
            else "Without a readable card no licence is declared: by default, no use is granted."
        )
        return [finding("license.missing", subject=card.subject, detail=detail, evidence=ev)]
    if c not in _LICENSE_DETAIL:
        return []
    if c == "other":
        ev += tuple(
            f"{key}: {value}"
            for key, value in (("license_name", card.license_name), ("license_link", card.license_link))
            if value
        )
    return [
        finding(f"license.{c}", subject=card.subject, detail=_LICENSE_DETAIL[c].format(lic=lic), evidence=ev)
    ]


def conflict_findings(
    card: CardFacts, bases: Iterable[CardFacts], datasets: Iterable[DatasetFacts]
) -> list[Finding]:
    """`license.conflict`: data or a base model under a stricter licence than the model's own."""
    out: list[Finding] = []
    mine = card.license_class
    if mine not in STRICTNESS:
        return out
    own = ", ".join(card.licenses)
    for ds in datasets:
        if ds.available and is_stricter(ds.license_class, mine):
            out.append(
                finding(
                    "license.conflict",
                    subject=card.subject,
                    severity=S.high if ds.license_class in ("noncommercial", "restricted_use") else S.medium,
                    detail=f"Training data licence is stricter than the model's: the model is released under "
                    f"{own} ({mine}) but declares training dataset {ds.id} under {', '.join(ds.licenses)} "
                    f"({ds.license_class}).",
                    evidence=(f"dataset {ds.id} license: {', '.join(ds.licenses)}", f"model license: {own}"),
                )
            )
    for base in bases:
        if base.has_card and is_stricter(base.license_class, mine):
            out.append(
                finding(
                    "license.conflict",
                    subject=card.subject,
                    severity=S.high,
                    detail=f"Base model licence is stricter than the derivative's: the model is released under "
                    f"{own} ({mine}) but its base model {base.subject} is under {', '.join(base.licenses)} "
                    f"({base.license_class}); the base licence's terms still bind the derivative.",
                    evidence=(f"base_model {base.subject} license: {', '.join(base.licenses)}",),
                )
            )
    return out


def dataset_findings(datasets: list[DatasetFacts]) -> list[Finding]:
    """Findings over the declared training datasets, one per id with every dataset as evidence."""
    groups: dict[str, list[str]] = {}
    for ds in datasets:
        for fid, line in _dataset_issues(ds):
            groups.setdefault(fid, []).append(line)
    out = []
    for fid in _DATASET_IDS:
        ev = groups.get(fid)
        if not ev:
            continue
        sev = None
        if fid == "dataset.personal_info" and not any("is present" in e for e in ev):
            sev = S.low
        detail = f"{FINDINGS[fid].detail} ({len(ev)} dataset{'s' if len(ev) != 1 else ''})"
        out.append(finding(fid, subject="datasets", detail=detail, evidence=ev, severity=sev))
    return out


_DATASET_IDS = (
    "dataset.card_unavailable",
    "dataset.license_missing",
    "dataset.noncommercial",
    "dataset.personal_info",
    "dataset.bias_undocumented",
)


def _dataset_issues(ds: DatasetFacts) -> list[tuple[str, str]]:
    """(finding id, evidence line) for each thing wrong with one dataset."""
    if not ds.available:
        return [("dataset.card_unavailable", f"{ds.id}: {ds.error}")]
    out = []
    if ds.license_class == "missing":
        out.append(
            ("dataset.license_missing", f"{ds.id}: license {', '.join(ds.licenses) or 'not declared'}")
        )
    if ds.license_class == "noncommercial":
        out.append(("dataset.noncommercial", f"{ds.id}: license {', '.join(ds.licenses)}"))
    if ds.personal_info == "present":
        out.append(("dataset.personal_info", f"{ds.id}: card says personal information is present"))
    elif ds.personal_info == "undocumented":
        out.append(("dataset.personal_info", f"{ds.id}: card says nothing about personal information"))
    if not ds.bias_documented:
        out.append(("dataset.bias_undocumented", f"{ds.id}: no discussion of biases"))
    return out


def base_model_findings(bases: Iterable[CardFacts]) -> list[Finding]:
    """Findings about base models that could not be collected."""
    return [
        finding(
            "lineage.base_unavailable",
            subject=b.subject,
            detail=f"The card of the base model {b.subject} could not be collected, so its licence could not "
            "be compared.",
            evidence=b.problems[:3],
        )
        for b in bases
        if not b.has_card
    ]


def analyse(
    collected: Collected, options: AuditOptions, now: dt.datetime | None = None
) -> tuple[Finding, ...]:
    """All findings for one collected model, sorted by severity (highest first), then id."""
    now = now or dt.datetime.now(dt.timezone.utc)
    findings = card_findings(collected.card, options, now)
    findings += conflict_findings(collected.card, collected.base_models, collected.datasets)
    findings += dataset_findings(list(collected.datasets))
    findings += base_model_findings(collected.base_models)
    if collected.card.catalog is not None:  # an Azure AI Foundry catalog entry (audit/collect/azure.py)
        from audit.collect.azure import catalog_findings

        findings += catalog_findings(collected.card)
    return tuple(sorted(findings, key=lambda f: (-f.severity.rank, f.id)))


def verdict(findings: Iterable[Finding]) -> Verdict:
    """Counts by severity, an overall rating and the findings that set it (policies refine this later)."""
    fs = list(findings)
    counts = {s.value: sum(1 for f in fs if f.severity == s) for s in Severity}
    top = max((f.severity for f in fs), key=lambda s: s.rank, default=None)
    if top is not None and top.rank >= S.high.rank:
        floor = S.high
        rating, summary = (
            "high risk",
            f"{plural(counts['critical'] + counts['high'], 'high or critical finding')} "
            f"{'needs' if counts['critical'] + counts['high'] == 1 else 'need'} resolution before adoption.",
        )
    elif top is not None and top.rank >= S.medium.rank:
        floor = S.medium
        rating, summary = (
            "review",
            f"{plural(counts['medium'], 'medium finding')} {'needs' if counts['medium'] == 1 else 'need'} "
            "a reviewer's judgement.",
        )
    else:
        floor = None
        rating, summary = "low risk", "No finding above low severity."
    setting = sorted((f for f in fs if floor is not None and f.severity.rank >= floor.rank), key=concern_rank)
    return Verdict(
        rating=rating,  # type: ignore[arg-type]
        highest_severity=top,
        counts=counts,
        summary=summary,
        reasons=tuple(reason_line(f) for f in setting),
    )


def reason_line(f: Finding, limit: int = 200) -> str:
    """One line for the executive summary: severity, id, title and the first piece of evidence."""
    line = f"{f.severity.value}: {f.title} [{f.id}]"
    if f.evidence:
        line += f" ({f.evidence[0]})"
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
