"""Governance frameworks: which NIST AI RMF 1.0, EU AI Act and ISO/IEC 42001 items an audit gives evidence for.

The items (exact identifiers and titles, with the published document each comes from) and the
mapping from finding ids, probe metrics and card facts to items are data:
`audit/catalogue/frameworks.yaml`. `framework_coverage(report)` turns a report into one
`FrameworkCoverage` per framework: every item, answered (with the evidence) or left to a reviewer.
`frameworks_markdown(report)` is the report.md section; `templates/_frameworks.html.j2` the HTML/PDF one.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from audit.model import AuditReport, FrameworkCoverage, FrameworkItemEvidence

__all__ = [
    "FRAMEWORKS_PATH",
    "FrameworkMap",
    "framework_coverage",
    "framework_map",
    "frameworks_markdown",
    "item_ids",
    "load_framework_map",
    "mapping_problems",
]

FRAMEWORKS_PATH = Path(__file__).resolve().parent / "catalogue" / "frameworks.yaml"
REVIEWER_NOTE = "no evidence from this audit: a reviewer must answer it"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Item(_Strict):
    """One framework item: its identifier and title exactly as published."""

    id: str = Field(min_length=1)
    title: str = Field(min_length=3)


class Framework(_Strict):
    """A framework: identifier, title, the document it is quoted from, and its items."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    title: str
    citation: str = Field(min_length=20)
    items: tuple[Item, ...] = Field(min_length=1)


class NoItem(_Strict):
    """An explicit 'evidence for no item', with the reason."""

    none: str = Field(min_length=10)


Targets = tuple[str, ...] | NoItem


class FrameworkMap(_Strict):
    """The whole file: frameworks with their items, and the mappings to `framework:item` references."""

    frameworks: tuple[Framework, ...]
    findings: dict[str, Targets]
    metrics: dict[str, tuple[str, ...]]
    facts: dict[str, tuple[str, ...]]

    @field_validator("frameworks")
    @classmethod
    def _unique(cls, value: tuple[Framework, ...]) -> tuple[Framework, ...]:
        ids = [f.id for f in value]
        if len(ids) != len(set(ids)):
            raise ValueError("a framework id is listed twice")
        for fw in value:
            items = [i.id for i in fw.items]
            if len(items) != len(set(items)):
                raise ValueError(f"{fw.id}: an item id is listed twice")
        return value

    @model_validator(mode="after")
    def _references_exist(self) -> FrameworkMap:
        known = self.references()
        for where, refs in self._all_refs():
            for ref in refs:
                if ref not in known:
                    raise ValueError(f"{where}: {ref!r} is not a listed framework item (framework:item)")
        return self

    def _all_refs(self) -> Iterable[tuple[str, tuple[str, ...]]]:
        for fid, t in self.findings.items():
            if not isinstance(t, NoItem):
                yield f"findings.{fid}", t
        for name, refs in self.metrics.items():
            yield f"metrics.{name}", refs
        for name, refs in self.facts.items():
            yield f"facts.{name}", refs

    def references(self) -> set[str]:
        """Every valid `framework:item` reference."""
        return {f"{fw.id}:{i.id}" for fw in self.frameworks for i in fw.items}

    def metric_targets(self, name: str) -> tuple[str, ...]:
        """Items a metric is evidence for (exact name first, then a prefix ending in '*')."""
        if name in self.metrics:
            return self.metrics[name]
        for key, refs in self.metrics.items():
            if key.endswith("*") and name.startswith(key[:-1]):
                return refs
        return ()


def load_framework_map(path: Path = FRAMEWORKS_PATH) -> FrameworkMap:
    """Read and validate a frameworks file (yaml.safe_load, unknown keys rejected)."""
    return FrameworkMap.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def framework_map() -> FrameworkMap:
    """The shipped mapping, loaded once."""
    return load_framework_map()


def item_ids() -> set[str]:
    """Every valid `framework:item` identifier of the shipped list."""
    return framework_map().references()


def mapping_problems(finding_ids: Iterable[str], metric_names: Iterable[str]) -> list[str]:
    """Finding ids and metric names that have no mapping (neither items nor an explicit `none`)."""
    fm = framework_map()
    out = [f"finding {fid} is not mapped" for fid in finding_ids if fid not in fm.findings]
    out += [f"metric {m} is not mapped" for m in metric_names if not fm.metric_targets(m)]
    return out


def _fact_evidence(report: AuditReport) -> dict[str, list[str]]:
    """What each card fact the audit checked says, keyed as in the `facts` mapping."""
    card = report.card
    ev: dict[str, list[str]] = {}
    if card.has_card or card.licenses:
        ev["license"] = [
            f"licence: {', '.join(card.licenses) or 'none declared'} ({card.license_class.replace('_', ' ')})"
        ]
    if card.has_card:
        shown = ", ".join(card.datasets[:5]) + (" …" if len(card.datasets) > 5 else "")
        ev["datasets"] = [
            f"training datasets declared: {len(card.datasets)}" + (f" ({shown})" if shown else "")
        ]
        for s in card.sections:
            if s.present:
                where = f" (line {s.line})" if s.line else ""
                ev[f"section.{s.key}"] = [f"card section present: {s.label}{where}"]
    if card.base_models:
        ev["base_models"] = [f"base model declared: {', '.join(card.base_models[:3])}"]
    if card.files:
        safe = any(f.endswith(".safetensors") for f in card.files)
        ev["weights"] = [f"{len(card.files)} files checked; safetensors weights: {'yes' if safe else 'no'}"]
    if card.parameters is not None:
        ev["parameters"] = [f"parameters: {card.parameters:,} ({card.parameters_source or 'unknown source'})"]
    if report.compute is not None and report.compute.flop is not None:
        ev["compute"] = [report.compute.statement]
    if report.gate is not None:
        ev["gate"] = [f"policy {report.gate.policy}: {report.gate.verdict}"]
    if report.drift is not None:
        ev["drift"] = [f"compared with baseline {report.drift.baseline}"]
    return ev


def framework_coverage(report: AuditReport) -> tuple[FrameworkCoverage, ...]:
    """Every item of every framework: answered with this audit's evidence, or left to a reviewer."""
    fm = framework_map()
    evidence: dict[str, list[str]] = {}

    def add(refs: Iterable[str], text: str) -> None:
        for ref in refs:
            bucket = evidence.setdefault(ref, [])
            if text not in bucket:
                bucket.append(text)

    for f in report.findings:
        targets = fm.findings.get(f.id)
        if targets is not None and not isinstance(targets, NoItem):
            add(targets, f"finding {f.id} ({f.severity.value})")
    for p in report.probes:
        if p.skipped or p.invalid:  # invalid metrics (random weights) are evidence of nothing
            continue
        for m in p.metrics:
            add(fm.metric_targets(m.name), f"metric {p.suite}/{m.name}")
    for key, texts in _fact_evidence(report).items():
        for text in texts:
            add(fm.facts.get(key, ()), text)
    out = []
    for fw in fm.frameworks:
        items = []
        for item in fw.items:
            ev = evidence.get(f"{fw.id}:{item.id}", [])
            items.append(
                FrameworkItemEvidence(
                    item=item.id,
                    title=" ".join(item.title.split()),
                    answered=bool(ev),
                    evidence=tuple(ev[:12]),
                    note="" if ev else REVIEWER_NOTE,
                )
            )
        out.append(
            FrameworkCoverage(
                framework=fw.id, title=fw.title, citation=" ".join(fw.citation.split()), items=tuple(items)
            )
        )
    return tuple(out)


def frameworks_markdown(report: AuditReport) -> list[str]:
    """The "Governance frameworks" section of report.md (every card-derived value escaped)."""
    from audit.render.markdown import md_code, md_escape

    lines = ["### Governance frameworks", ""]
    if report.compute is not None:
        lines += [f"**Training compute.** {md_escape(report.compute.statement, 600)}", ""]
    coverage = report.frameworks or framework_coverage(report)
    for fw in coverage:
        answered = [i for i in fw.items if i.answered]
        open_items = [i for i in fw.items if not i.answered]
        lines += [f"**{md_escape(fw.title)}** ({md_escape(fw.citation, 400)})", ""]
        if answered:
            lines.append(f"Evidence from this audit ({len(answered)} of {len(fw.items)} items):")
            lines.append("")
            for i in answered:
                ev = "; ".join(i.evidence[:4]) + (" …" if len(i.evidence) > 4 else "")
                lines.append(f"- {md_code(i.item)} {md_escape(i.title, 120)}: {md_escape(ev, 400)}")
            lines.append("")
        if open_items:
            lines.append("A reviewer must answer: " + ", ".join(md_code(i.item) for i in open_items) + ".")
            lines.append("")
    return lines
