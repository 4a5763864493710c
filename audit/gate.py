"""Gate stage: a policy (YAML, validated) applied to a report gives a verdict per rule and overall.

Rule kinds: findings at or above a severity (with per-id overrides and waivers that expire),
metric thresholds on the value or on the upper end of its interval, group gaps that are both
large and significant, and drift since a baseline (licence change, significant regressions,
new findings). A metric whose 95% interval straddles a rule's bound is `inconclusive`, never a
pass: the sample is too small to decide. A suite whose metrics are invalid (the model's head was
newly initialised) fails every rule on it. `model-audit gate` exits 0 on pass or warn and 1 on
fail or inconclusive.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audit.errors import UsageError
from audit.format import fmt_ci, fmt_num, fmt_p
from audit.model import AuditReport, GateResult, RuleOutcome, Severity, WaiverStatus

VerdictName = Literal["pass", "warn", "fail"]
OutcomeName = Literal["pass", "warn", "fail", "inconclusive"]
_ORDER = {"pass": 0, "warn": 1, "inconclusive": 2, "fail": 3}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FindingOverride(_Strict):
    id: str
    verdict: VerdictName


class FindingRules(_Strict):
    """Findings at or above `fail_at` fail the gate, at or above `warn_at` warn."""

    fail_at: Severity | None = Severity.high
    warn_at: Severity | None = Severity.medium
    overrides: list[FindingOverride] = Field(default_factory=list)


class Waiver(_Strict):
    id: str = Field(description="finding id (an exact id, or a prefix ending in '*')")
    justification: str = Field(min_length=3)
    owner: str = Field(min_length=1)
    expires: dt.date


class MetricRule(_Strict):
    """A threshold on a metric's value (or the upper/lower end of its interval)."""

    name: str = ""
    suite: str
    metric: str
    group: str | None = None
    label: str | None = None
    max: float | None = None
    min: float | None = None
    check: Literal["value", "ci_high", "ci_low"] = Field("value", description="what the bounds apply to")
    verdict: VerdictName = "fail"


class GapRule(_Strict):
    """A group gap that is both large and significant."""

    name: str = ""
    suite: str
    metric: str = "axis_gap"
    min_gap: float = 0.05
    alpha: float = 0.05
    verdict: VerdictName = "fail"


class DriftRules(_Strict):
    license_changed: VerdictName | None = "fail"
    metric_regressed: VerdictName | None = "fail"
    new_findings_at: Severity | None = Severity.high
    new_findings_verdict: VerdictName = "fail"


class Policy(_Strict):
    """A policy file."""

    version: Literal[1] = 1
    name: str = "policy"
    description: str = ""
    findings: FindingRules = Field(default_factory=FindingRules)
    waivers: list[Waiver] = Field(default_factory=list)
    metrics: list[MetricRule] = Field(default_factory=list)
    gaps: list[GapRule] = Field(default_factory=list)
    drift: DriftRules = Field(default_factory=DriftRules)


def load_policy(path: Path | str) -> tuple[Policy, str]:
    """Read and validate a policy file (or `default` for the shipped one). Returns it and its sha256."""
    if str(path) == "default":
        from audit.resources import policies_dir

        path = policies_dir() / "default.yaml"
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read policy {p}: {exc.strerror}", "give a policy YAML file, or `default`"
        ) from exc
    from audit.collect.cardparse import CardYAMLError, load_yaml_bounded

    try:  # bounded: depth, aliases and expanded size (a 100,000-deep file is refused at once)
        data = load_yaml_bounded(raw.decode("utf-8-sig")) or {}
    except (CardYAMLError, UnicodeDecodeError) as exc:
        raise UsageError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})", "fix the policy file") from exc
    try:
        return Policy.model_validate(data), hashlib.sha256(raw).hexdigest()
    except ValidationError as exc:
        errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise UsageError(f"{p}: invalid policy: {errs}", "see policies/default.yaml for the format") from exc


def _waived(fid: str, waivers: list[Waiver], today: dt.date) -> tuple[Waiver | None, Waiver | None]:
    """(active waiver, expired waiver) matching a finding id."""
    active = expired = None
    for w in waivers:
        if w.id == fid or (w.id.endswith("*") and fid.startswith(w.id[:-1])):
            if w.expires >= today:
                active = active or w
            else:
                expired = expired or w
    return active, expired


def evaluate(
    report: AuditReport, policy: Policy, policy_name: str, policy_sha: str, today: dt.date | None = None
) -> GateResult:
    """Apply a policy to a report."""
    today = today or dt.date.today()
    outcomes: list[RuleOutcome] = []
    used: set[str] = set()
    overrides = {o.id: o.verdict for o in policy.findings.overrides}
    fr = policy.findings
    for f in report.findings:
        active, expired = _waived(f.id, policy.waivers, today)
        if f.id in overrides:
            verdict: VerdictName = overrides[f.id]
        elif fr.fail_at is not None and f.severity.rank >= fr.fail_at.rank:
            verdict = "fail"
        elif fr.warn_at is not None and f.severity.rank >= fr.warn_at.rank:
            verdict = "warn"
        else:
            verdict = "pass"
        msg = f"{f.severity.value} finding {f.id}: {f.title}"
        ev = tuple(f.evidence[:5])
        if active is not None and verdict != "pass":
            used.add(active.id)
            msg += f" (waived by {active.owner} until {active.expires}: {active.justification})"
            verdict = "pass"
        elif expired is not None and verdict != "pass":
            used.add(expired.id)
            msg += f" (waiver by {expired.owner} expired on {expired.expires}: no longer waived)"
        outcomes.append(RuleOutcome(f"finding:{f.id}", "finding", verdict, msg, ev))
    for i, rule in enumerate(policy.metrics):
        outcomes.append(_metric_rule(report, rule, rule.name or f"metric-{i + 1}"))
    for i, g in enumerate(policy.gaps):
        outcomes.append(_gap_rule(report, g, g.name or f"gap-{i + 1}"))
    if report.drift is not None:
        outcomes.extend(_drift_rules(report, policy.drift))
    waivers = []
    for w in policy.waivers:
        status: Literal["active", "expired", "unused"] = (
            "expired" if w.expires < today else ("active" if w.id in used else "unused")
        )
        waivers.append(WaiverStatus(w.id, w.owner, w.justification, w.expires.isoformat(), status))
    overall: OutcomeName = max((o.verdict for o in outcomes), key=lambda v: _ORDER[v], default="pass")
    profile = report.profile.name if report.profile is not None else ""
    return GateResult(policy_name, policy_sha, overall, tuple(outcomes), tuple(waivers), profile)


def _metric_rule(report: AuditReport, rule: MetricRule, name: str) -> RuleOutcome:
    probe = next((p for p in report.probes if p.suite == rule.suite and not p.skipped), None)
    matches = (
        []
        if probe is None
        else [
            m
            for m in probe.metrics
            if m.name == rule.metric
            and (rule.group is None or m.group == rule.group)
            and (rule.label is None or m.label == rule.label)
        ]
    )
    if not matches:
        return RuleOutcome(
            f"metric:{name}",
            "metric",
            "warn",
            f"no metric {rule.suite}/{rule.metric} in this report: the rule could not be checked",
        )
    bound = " and ".join(
        x
        for x in (
            f"<= {rule.max}" if rule.max is not None else "",
            f">= {rule.min}" if rule.min is not None else "",
        )
        if x
    )
    assert probe is not None
    if probe.invalid:
        return RuleOutcome(
            f"metric:{name}",
            "metric",
            "fail",
            f"{rule.suite}/{rule.metric}: the suite's metrics are invalid ({probe.invalid})",
        )
    fails, unsure = [], []
    for m in matches:
        who = m.group or m.label or m.name
        v = {"value": m.value, "ci_high": m.ci_high, "ci_low": m.ci_low}[rule.check]
        if v is None:
            fails.append(f"{who}: {rule.check} not available")
            continue
        if rule.max is not None and v > rule.max:
            fails.append(f"{who}: {rule.check} {fmt_num(v, 4)} > max {rule.max}")
        if rule.min is not None and v < rule.min:
            fails.append(f"{who}: {rule.check} {fmt_num(v, 4)} < min {rule.min}")
        if m.ci_low is None or m.ci_high is None:
            if rule.check == "value":
                unsure.append(f"{who}: value {fmt_num(v, 4)} has no interval to decide it against the bound")
            continue
        if rule.max is not None and m.ci_low <= rule.max < m.ci_high and v <= rule.max:
            unsure.append(f"{who}: 95% CI {fmt_ci(m.ci_low, m.ci_high, 4)} straddles max {rule.max}")
        if rule.min is not None and m.ci_low < rule.min <= m.ci_high and v >= rule.min:
            unsure.append(f"{who}: 95% CI {fmt_ci(m.ci_low, m.ci_high, 4)} straddles min {rule.min}")
    if fails:
        return RuleOutcome(
            f"metric:{name}",
            "metric",
            rule.verdict,
            f"{rule.suite}/{rule.metric} ({rule.check}) must be {bound}",
            tuple(fails[:10]),
        )
    if unsure:
        return RuleOutcome(
            f"metric:{name}",
            "metric",
            "inconclusive",
            f"{rule.suite}/{rule.metric} ({rule.check}) {bound} cannot be decided: the interval is too "
            "wide for this threshold (run more prompts or samples)",
            tuple(unsure[:10]),
        )
    return RuleOutcome(
        f"metric:{name}",
        "metric",
        "pass",
        f"{rule.suite}/{rule.metric} ({rule.check}) {bound} for {len(matches)} values",
    )


def _gap_rule(report: AuditReport, rule: GapRule, name: str) -> RuleOutcome:
    probe = next((p for p in report.probes if p.suite == rule.suite and not p.skipped), None)
    gaps = [] if probe is None else [m for m in probe.metrics if m.name == rule.metric]
    if not gaps:
        return RuleOutcome(
            f"gap:{name}",
            "gap",
            "warn",
            f"no {rule.metric} in suite {rule.suite}: the rule could not be checked",
        )
    assert probe is not None
    if probe.invalid:
        return RuleOutcome(
            f"gap:{name}", "gap", "fail", f"{rule.suite}: the suite's metrics are invalid ({probe.invalid})"
        )
    bad = [
        f"{m.axis}: {m.group} gap {fmt_num(m.value)}, {fmt_p(m.p_adjusted, adjusted=True)}"
        for m in gaps
        if m.value is not None
        and m.p_adjusted is not None
        and abs(m.value) >= rule.min_gap
        and m.p_adjusted < rule.alpha
    ]
    if bad:
        return RuleOutcome(
            f"gap:{name}",
            "gap",
            rule.verdict,
            f"{rule.suite}: group gaps of at least {rule.min_gap} with Holm-adjusted p < {rule.alpha}",
            tuple(bad),
        )
    # Not shown to be large: still not a pass when the interval reaches the bound (or there is none).
    unsure = [
        f"{m.axis}: {m.group} gap {fmt_num(m.value)}, "
        + (
            f"95% CI {fmt_ci(m.ci_low, m.ci_high)} reaches {rule.min_gap}"
            if m.ci_low is not None and m.ci_high is not None
            else "no interval"
        )
        for m in gaps
        if m.value is not None
        and (m.ci_low is None or m.ci_high is None or max(abs(m.ci_low), abs(m.ci_high)) >= rule.min_gap)
    ]
    if unsure:
        return RuleOutcome(
            f"gap:{name}",
            "gap",
            "inconclusive",
            f"{rule.suite}: a gap of {rule.min_gap} or more cannot be ruled out (run more prompts or samples)",
            tuple(unsure[:10]),
        )
    return RuleOutcome(
        f"gap:{name}", "gap", "pass", f"{rule.suite}: no gap both >= {rule.min_gap} and significant"
    )


def _drift_rules(report: AuditReport, rules: DriftRules) -> list[RuleOutcome]:
    d = report.drift
    assert d is not None
    out = []
    if rules.license_changed is not None:
        out.append(
            RuleOutcome(
                "drift:license_changed",
                "drift",
                rules.license_changed if d.license_changed else "pass",
                "the licence changed since the baseline" if d.license_changed else "licence unchanged",
                tuple(c for c in d.metadata_changes if c.startswith("license")),
            )
        )
    if rules.metric_regressed is not None:
        worse = [
            f"{m.suite}/{m.metric} {m.group}: {fmt_num(m.old, 4)} -> {fmt_num(m.new, 4)} "
            f"({fmt_p(m.p_value, adjusted=False)}, {m.test})"
            for m in d.metrics
            if m.significant and m.worse and m.p_value is not None
        ]
        out.append(
            RuleOutcome(
                "drift:metric_regressed",
                "drift",
                rules.metric_regressed if worse else "pass",
                f"{len(worse)} metrics significantly worse than the baseline"
                if worse
                else "no significant regression",
                tuple(worse[:10]),
            )
        )
    if rules.new_findings_at is not None:
        at = rules.new_findings_at
        new = [f.id for f in report.findings if f.id in d.findings_new and f.severity.rank >= at.rank]
        out.append(
            RuleOutcome(
                "drift:new_findings",
                "drift",
                rules.new_findings_verdict if new else "pass",
                f"new findings at or above {at.value} since the baseline: {len(new)}",
                tuple(new[:10]),
            )
        )
    return out


def junit_xml(gate: GateResult, subject: str) -> bytes:
    """JUnit XML: one test case per rule; failures carry the message and evidence, warnings are system-out."""
    fails = sum(o.verdict in ("fail", "inconclusive") for o in gate.rules)
    suite = ET.Element(
        "testsuite",
        name=f"model-audit policy {gate.policy}",
        tests=str(len(gate.rules)),
        failures=str(fails),
        errors="0",
        skipped="0",
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="subject", value=subject)
    ET.SubElement(props, "property", name="profile", value=gate.profile or "none recorded")
    for o in gate.rules:
        case = ET.SubElement(suite, "testcase", classname=f"model-audit.{o.kind}", name=o.rule, time="0")
        body = o.message + ("\n" + "\n".join(o.evidence) if o.evidence else "")
        if o.verdict in ("fail", "inconclusive"):
            failure = ET.SubElement(
                case,
                "failure",
                message=o.message[:500],
                type="policy" if o.verdict == "fail" else "policy-inconclusive",
            )
            failure.text = body
        elif o.verdict == "warn":
            ET.SubElement(case, "system-out").text = "WARN: " + body
    root = ET.Element("testsuites", name="model-audit", tests=str(len(gate.rules)), failures=str(fails))
    root.append(suite)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data
