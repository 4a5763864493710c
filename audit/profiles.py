"""Use-context profiles: the same finding weighs differently by what the model will be used for.

A profile (`profiles/research.yaml`, `internal.yaml`, `customer-facing.yaml`, or a user's YAML file)
says whether the use is commercial, may set stricter or looser probe thresholds, and re-weighs
findings by id (or id prefix) and category. Severities and thresholds resolve in one order:

1. the catalogue's defaults (`audit/catalogue/findings.yaml`, thresholds in `audit/aggregate.py`);
2. the profile (this module);
3. the policy (`audit/gate.py`), which turns the weighed findings and the metrics into a verdict.

`apply_profile(report, profile)` is the only entry point: it undoes the profile the report was
weighed under (if any), applies the new one, and recomputes the verdict, the training-compute
estimate and the governance-framework coverage. Applying the same profile twice changes nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from audit.errors import UsageError
from audit.model import (
    AuditReport,
    Finding,
    GenerationProtocol,
    ProbeResult,
    ProfileApplied,
    Severity,
    SeverityChange,
)
from audit.probe_findings import Thresholds, threshold_findings

__all__ = [
    "BUILTIN_PROFILES",
    "DEFAULT_PROFILE",
    "Profile",
    "ProfileError",
    "ProfileRule",
    "Thresholds",
    "apply_profile",
    "load_profile",
    "parse_profile",
    "probe_data_licenses",
]

DEFAULT_PROFILE = "internal"
BUILTIN_PROFILES = ("research", "internal", "customer-facing")
MAX_PROFILE_BYTES = 256 * 1024
# Probe findings whose thresholds a profile may change: recomputed from the report's metrics.
THRESHOLD_IDS = ("probe.toxicity.high", "probe.bias.group_gap")


class ProfileError(UsageError):
    """A profile file is invalid or unknown (the message names the file and line)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProfileRule(_Strict):
    """Re-weigh the findings of one id (or id prefix ending in '*') or one category."""

    id: str | None = Field(None, description="a finding id, or a prefix ending in '*'")
    category: str | None = None
    severity: Severity | None = Field(None, description="set this severity")
    at_least: Severity | None = Field(None, description="raise to this severity when lower")
    at_most: Severity | None = Field(None, description="lower to this severity when higher")
    rationale: str = Field(min_length=10, description="why, for this use")

    @model_validator(mode="after")
    def _one_each(self) -> ProfileRule:
        if (self.id is None) == (self.category is None):
            raise ValueError("a rule names exactly one of `id` or `category`")
        actions = [a for a in (self.severity, self.at_least, self.at_most) if a is not None]
        if len(actions) != 1:
            raise ValueError("a rule has exactly one of `severity`, `at_least` or `at_most`")
        return self

    def matches(self, f: Finding) -> bool:
        if self.category is not None:
            return f.category == self.category
        assert self.id is not None
        return f.id == self.id or (self.id.endswith("*") and f.id.startswith(self.id[:-1]))

    def weigh(self, sev: Severity) -> Severity:
        if self.severity is not None:
            return self.severity
        if self.at_least is not None and sev.rank < self.at_least.rank:
            return self.at_least
        if self.at_most is not None and sev.rank > self.at_most.rank:
            return self.at_most
        return sev

    @property
    def label(self) -> str:
        what = f"id {self.id}" if self.id is not None else f"category {self.category}"
        if self.severity is not None:
            how = f"severity {self.severity.value}"
        elif self.at_least is not None:
            how = f"at least {self.at_least.value}"
        else:
            assert self.at_most is not None
            how = f"at most {self.at_most.value}"
        return f"{what}: {how}"


class Profile(_Strict):
    """A use-context profile file."""

    version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    description: str = Field(min_length=10)
    commercial: bool = Field(description="the use is commercial: non-commercial terms forbid it")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    rules: list[ProfileRule] = Field(default_factory=list)

    def threshold_overrides(self) -> dict[str, float]:
        """The thresholds that differ from the documented defaults."""
        default = Thresholds()
        return {k: v for k, v in self.thresholds.model_dump().items() if v != getattr(default, k)}


def parse_profile(text: str, source: str = "<profile>") -> Profile:
    """Validate profile YAML (safe, bounded loading; unknown keys rejected); errors name the line."""
    from audit.yamlconfig import load_validated

    return load_validated(
        text, source, "profile", Profile.model_validate, ProfileError, "see docs/profiles.md for the format"
    )


def profiles_dir() -> Path:
    """The shipped profiles (profiles/*.yaml; inside the wheel under audit/_data/profiles)."""
    from audit.resources import _find

    return _find("profiles")


def load_profile(ref: str | Path) -> tuple[Profile, str, str]:
    """A built-in profile by name or a YAML file: (profile, source, sha256 of the file)."""
    name = str(ref)
    if name in BUILTIN_PROFILES:
        path, source = profiles_dir() / f"{name}.yaml", "built-in"
    else:
        path, source = Path(name), name
        if not path.is_file():
            near = difflib.get_close_matches(name, BUILTIN_PROFILES, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise ProfileError(
                f"unknown profile {name!r}: not a built-in profile and not a file",
                f"{hint}use {', '.join(BUILTIN_PROFILES)} or a profile YAML file (docs/profiles.md)",
            )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror}", "check the path") from exc
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileError(f"{path}: larger than {MAX_PROFILE_BYTES} bytes", "a profile is a short YAML file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text", "save the profile as UTF-8") from exc
    return parse_profile(text, str(path)), source, hashlib.sha256(raw).hexdigest()


# ---------------------------------------------------------------- probe data licences

_NC = re.compile(r"\bCC[- ]BY[- ]NC(?:[- ](?:SA|ND))?(?:[- ]\d\.\d)?|\bnon[- ]?commercial\b", re.IGNORECASE)


def probe_data_licenses(probe: ProbeResult) -> list[tuple[str, str]]:
    """The (data set, licence) pairs under non-commercial terms that a probe suite ran on."""
    lic = probe.prompt_source.get("license") if isinstance(probe.prompt_source, dict) else None
    if not isinstance(lic, str) or probe.skipped:
        return []
    out = []
    for part in re.split(r"[;\n]", lic):
        m = _NC.search(part)
        if m is None:
            continue
        name = re.sub(r"\([^)]*\)", "", part[: m.start()]).strip(" :,-") or probe.suite
        out.append((name, m.group(0).strip()))
    return out


# ---------------------------------------------------------------- probe thresholds


def _threshold_findings(probe: ProbeResult, t: Thresholds, profile: str) -> list[Finding]:
    """probe.toxicity.high and probe.bias.group_gap recomputed from a suite's metrics at the profile's bars."""
    k = probe.protocol.samples_per_prompt if isinstance(probe.protocol, GenerationProtocol) else None
    return threshold_findings(probe.suite, probe.metrics, probe.scorers, k, t, profile)


def _has_threshold_metrics(probe: ProbeResult) -> bool:
    # An invalid suite's metrics describe random weights, not the model: never re-raise findings from them.
    return (
        not probe.skipped
        and not probe.invalid
        and any(m.name in ("toxicity_probability", "group_mean_toxicity", "axis_gap") for m in probe.metrics)
    )


# ---------------------------------------------------------------- apply


def _key(f: Finding) -> tuple[str, str, str]:
    return (f.id, f.subject, f.detail)


def unweighed_findings(report: AuditReport) -> tuple[Finding, ...]:
    """The findings as the catalogue's defaults gave them: the recorded profile undone."""
    applied = report.profile
    if applied is None:
        return report.findings
    back = {(c.finding_id, c.subject, c.detail, c.new): c.old for c in applied.changes}
    reverted = [
        replace(f, severity=back[(f.id, f.subject, f.detail, f.severity)])
        if (f.id, f.subject, f.detail, f.severity) in back
        else f
        for f in report.findings
    ]
    pending = [_key(f) for f in applied.added]
    kept = []
    for f in reverted:
        if _key(f) in pending:
            pending.remove(_key(f))
            continue
        kept.append(f)
    return tuple(kept) + applied.removed


def _ordered(findings: list[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: (-f.severity.rank, f.id)))


def apply_profile(
    report: AuditReport,
    profile: str | Path | Profile = DEFAULT_PROFILE,
    *,
    source: str = "",
    sha256: str = "",
) -> AuditReport:
    """Weigh a report's findings under a profile; recompute the verdict, compute estimate and frameworks.

    Any profile the report was already weighed under is undone first, so applying a profile is
    idempotent and `gate --profile X` re-weighs a finished audit exactly.
    """
    from audit.analyze import verdict
    from audit.compute import estimate_training_compute
    from audit.findings import finding
    from audit.frameworks import framework_coverage

    if isinstance(profile, Profile):
        prof, src, sha = profile, source or "given", sha256
    else:
        prof, src, sha = load_profile(profile)
    base = list(unweighed_findings(report))
    removed: list[Finding] = []
    added: list[Finding] = []
    overrides = prof.threshold_overrides()
    if overrides:
        for probe in report.probes:
            if not _has_threshold_metrics(probe):
                continue
            drop = [f for f in base if f.id in THRESHOLD_IDS and f.subject == probe.suite]
            removed.extend(drop)
            base = [f for f in base if f not in drop]
            added.extend(_threshold_findings(probe, prof.thresholds, prof.name))
    if prof.commercial:
        for probe in report.probes:
            for data_set, lic in probe_data_licenses(probe):
                added.append(
                    finding(
                        "probe.data_license",
                        subject=probe.suite,
                        detail=f"Suite {probe.suite} ran on {data_set}, licensed {lic}, under the "
                        f"{prof.name} profile, a commercial use.",
                        evidence=(f"{probe.suite}: {data_set}: {lic}",),
                    )
                )
    weighed: list[Finding] = []
    changes: list[SeverityChange] = []
    for f in base + added:
        sev, why = f.severity, []
        for rule in prof.rules:
            if rule.matches(f):
                new = rule.weigh(sev)
                if new != sev:
                    why.append(rule.label)
                sev = new
        if sev != f.severity:
            changes.append(
                SeverityChange(
                    f.id, f.subject, f.severity, sev, f"profile {prof.name}: " + "; ".join(why), f.detail
                )
            )
            f = replace(f, severity=sev)
        weighed.append(f)
    applied = ProfileApplied(
        name=prof.name,
        source=src,
        sha256=sha,
        description=" ".join(prof.description.split()),
        commercial=prof.commercial,
        thresholds=overrides,
        changes=tuple(changes),
        added=tuple(added),
        removed=tuple(removed),
    )
    findings = _ordered(weighed)
    report = replace(report, findings=findings, verdict=verdict(findings), profile=applied)
    report = replace(report, compute=estimate_training_compute(report.card))
    return replace(report, frameworks=framework_coverage(report))


def profile_ref(report: AuditReport) -> str:
    """The profile a report was weighed under, as `apply_profile` takes it (the default when none was)."""
    applied = report.profile
    if applied is None:
        return DEFAULT_PROFILE
    return applied.name if applied.source == "built-in" else applied.source


def profile_line(report: AuditReport) -> str:
    """One line for next to the rating: the profile and what it changed."""
    applied = report.profile
    if applied is None:
        return "no use-context profile recorded (the catalogue's default severities)"
    parts = [f"{applied.name} ({'commercial' if applied.commercial else 'non-commercial'} use)"]
    if applied.changes:
        parts.append(f"{len(applied.changes)} severities re-weighed")
    if applied.added:
        parts.append(f"{len(applied.added)} findings added")
    if applied.thresholds:
        parts.append("probe thresholds: " + ", ".join(f"{k} {v}" for k, v in applied.thresholds.items()))
    return "; ".join(parts)
