"""The findings catalogue: every finding id, its default severity and why, as data.

`FINDINGS[id]` holds the category, the default and allowed severities, the title, the rationale
for the default severity, the recommendation and the documentation text of one id. It is read
from `audit/catalogue/findings.yaml`, shipped inside the package. `finding(id, ...)` is the only
way the audit builds a `Finding`, so every finding carries its entry's title and recommendation.
`docs/findings.md` is generated from the catalogue: `python -m audit.findings > docs/findings.md`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from audit.model import Finding, Severity

__all__ = [
    "FINDINGS",
    "Catalogue",
    "CatalogueEntry",
    "catalogue",
    "catalogue_problems",
    "concern_rank",
    "finding",
    "render_markdown",
]

CATALOGUE_PATH = Path(__file__).resolve().parent / "catalogue" / "findings.yaml"
_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogueEntry(_Strict):
    """One finding id: what it means, how severe by default and why, and what to do."""

    id: str
    category: str
    severity: Severity
    severities: tuple[Severity, ...] = ()
    title: str = Field(min_length=1)
    detail: str | None = None
    rationale: str = Field(min_length=1)
    recommendation: str = Field(min_length=1)
    raised_when: str = Field(min_length=1)
    # Governance-framework mappings (NIST AI RMF, EU AI Act, ISO/IEC 42001), filled in separately.
    frameworks: tuple[Any, ...] = ()

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"finding id {value!r} is not dotted lower_snake_case (e.g. 'license.missing')")
        return value

    @model_validator(mode="after")
    def _severity_allowed(self) -> CatalogueEntry:
        if self.severities and self.severity not in self.severities:
            raise ValueError(f"{self.id}: default severity {self.severity.value} is not in its allowed set")
        return self

    @property
    def allowed(self) -> tuple[Severity, ...]:
        """The severities a finding of this id may carry (the default alone unless a set is listed)."""
        return self.severities or (self.severity,)


class DocSection(_Strict):
    """A section of docs/findings.md: the categories it lists, with prose before and after the table."""

    title: str
    categories: tuple[str, ...]
    intro: str = ""
    outro: str = ""


class Catalogue(_Strict):
    """The whole catalogue file: documentation prose, sections (in order of concern) and entries."""

    intro: str
    order_of_concern: str
    sections: tuple[DocSection, ...]
    findings: tuple[CatalogueEntry, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Catalogue:
        seen: set[str] = set()
        for e in self.findings:
            if e.id in seen:
                raise ValueError(f"finding id {e.id} is listed twice")
            seen.add(e.id)
        cats = [c for s in self.sections for c in s.categories]
        if len(cats) != len(set(cats)):
            raise ValueError("a category is listed in more than one section")
        for e in self.findings:
            if e.category not in cats:
                raise ValueError(f"{e.id}: category {e.category!r} belongs to no section ({', '.join(cats)})")
        return self

    @property
    def by_id(self) -> dict[str, CatalogueEntry]:
        return {e.id: e for e in self.findings}

    @property
    def categories(self) -> tuple[str, ...]:
        """Categories in order of concern (the order of the sections)."""
        return tuple(c for s in self.sections for c in s.categories)


def load_catalogue(path: Path) -> Catalogue:
    """Read and validate a catalogue file (yaml.safe_load, extra keys rejected)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Catalogue.model_validate(data)


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """The shipped catalogue, loaded once."""
    return load_catalogue(CATALOGUE_PATH)


class _Findings(Mapping[str, CatalogueEntry]):
    """`FINDINGS[id]`: the catalogue entries by id, loaded on first use."""

    def __getitem__(self, key: str) -> CatalogueEntry:
        entries = catalogue().by_id
        if key not in entries:
            near = difflib.get_close_matches(key, entries, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise KeyError(f"unknown finding id {key!r}{hint} (add it to {CATALOGUE_PATH.name})")
        return entries[key]

    def __iter__(self) -> Any:
        return iter(catalogue().by_id)

    def __len__(self) -> int:
        return len(catalogue().findings)


FINDINGS: Mapping[str, CatalogueEntry] = _Findings()


def finding(
    id: str,  # noqa: A002 - the catalogue's word for it
    *,
    subject: str,
    detail: str | None = None,
    evidence: Iterable[str] = (),
    severity: Severity | str | None = None,
) -> Finding:
    """Build a `Finding` from its catalogue entry: title, category and recommendation from the catalogue.

    `severity` defaults to the entry's default and must be one of its allowed severities; `detail`
    defaults to the entry's detail. An unknown id, a severity outside the allowed set, or no detail
    for an id that has no default raise `KeyError` / `ValueError` (a bug in the caller).
    """
    entry = FINDINGS[id]
    sev = entry.severity if severity is None else Severity(severity)
    if sev not in entry.allowed:
        allowed = ", ".join(s.value for s in entry.allowed)
        raise ValueError(f"finding {id}: severity {sev.value} is not allowed (allowed: {allowed})")
    text = detail if detail is not None else entry.detail
    if text is None:
        raise ValueError(f"finding {id} has no default detail in the catalogue: pass detail=")
    return Finding(
        id=entry.id,
        severity=sev,
        category=entry.category,
        title=entry.title,
        detail=text,
        evidence=tuple(evidence),
        recommendation=entry.recommendation,
        subject=subject,
    )


def catalogue_problems(f: Finding) -> list[str]:
    """Why a finding does not match the catalogue (empty when it does): its id, category, title, recommendation.

    Severity is not compared: profiles and policies may re-weigh it after `finding` checked it.
    """
    entry = catalogue().by_id.get(f.id)
    if entry is None:
        return [f"{f.id}: not a catalogue id"]
    return [
        f"{f.id}: {name} {getattr(f, name)!r} is not the catalogue's {getattr(entry, name)!r}"
        for name in ("category", "title", "recommendation")
        if getattr(f, name) != getattr(entry, name)
    ]


def concern_rank(f: Finding) -> tuple[int, int, str]:
    """Sort key: highest severity first, then the order of concern of its category, then id."""
    cats = catalogue().categories
    cat = cats.index(f.category) if f.category in cats else len(cats)
    return (-f.severity.rank, cat, f.id)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _severity_cell(entry: CatalogueEntry) -> str:
    others = [s.value for s in entry.allowed if s != entry.severity]
    return f"{entry.severity.value} (or {' / '.join(others)})" if others else entry.severity.value


def render_markdown(cat: Catalogue | None = None) -> str:
    """docs/findings.md: the catalogue as tables, one section per group of categories, in order of concern."""
    cat = cat or catalogue()
    out = [
        "# Finding ids",
        "",
        cat.intro.strip(),
        "",
        "## Order of concern",
        "",
        cat.order_of_concern.strip(),
        "",
    ]
    for sec in cat.sections:
        entries = [e for e in cat.findings if e.category in sec.categories]
        if not entries:
            continue
        out += [f"## {sec.title}", ""]
        if sec.intro:
            out += [sec.intro.strip(), ""]
        out += ["| id | severity | title | raised when | why this severity |", "|---|---|---|---|---|"]
        out += [
            f"| `{e.id}` | {_severity_cell(e)} | {_cell(e.title)} | {_cell(e.raised_when)} | {_cell(e.rationale)} |"
            for e in entries
        ]
        out.append("")
        if sec.outro:
            out += [sec.outro.strip(), ""]
    out += ["## Recommendations", "", "| id | recommendation |", "|---|---|"]
    out += [f"| `{e.id}` | {_cell(e.recommendation)} |" for e in cat.findings]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(render_markdown())
