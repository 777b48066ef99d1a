"""The ketamine/esketamine safety screen: normalised facts in, findings per product and verdicts.

Pure and deterministic for a given evaluation time: no I/O, no clock. Every finding carries the
rule id, the source the rule cites, the records it rests on and the products it concerns. The
verdict order, which records count and the per-product verdicts follow the clinical reference
(ruleset v2: Two products, one screen; Verdict; Which records count) section by section.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from service.screening.blood_pressure import scan_blood_pressure
from service.screening.classified import Classified, classify
from service.screening.eligibility import assess
from service.screening.interactions import Record, interaction_findings
from service.screening.matching import Matcher
from service.screening.model import (
    ConditionFact,
    Finding,
    FindingKind,
    ObservationFact,
    PatientFacts,
    ReadProblem,
    ScreeningResult,
    Verdict,
)
from service.screening.policy import BloodPressurePolicy, fill, num, thresholds
from service.screening.schema import PRODUCTS, Product, SimpleRule

__all__ = ["BloodPressurePolicy", "evaluate", "raised_by"]

NOT_OFFERED = ("not offered by this FHIR server (its CapabilityStatement does not list it), so "
               "none of these records were read")

_RAISES: dict[FindingKind, Verdict] = {
    "contraindication": Verdict.CONTRAINDICATED,
    "precaution": Verdict.NEEDS_REVIEW,
    "interaction": Verdict.NEEDS_REVIEW,
    "missing-data": Verdict.INSUFFICIENT_DATA,
    "info": Verdict.SUITABLE,
}
_SEVERITY = {"contraindication": "high", "precaution": "moderate", "missing-data": "low",
             "info": "info"}
_SEVERITY_RANK = {"high": 4, "major": 3, "moderate": 2, "minor": 1, "low": 1, "info": 0}


def raised_by(finding: Finding) -> Verdict:
    if finding.kind == "interaction" and finding.severity == "minor":
        return Verdict.SUITABLE
    return _RAISES[finding.kind]


class _Screen:
    def __init__(self, facts: PatientFacts, as_of: datetime, matcher: Matcher,
                 policy: BloodPressurePolicy, classified: Classified) -> None:
        self.facts = facts
        self.c = classified
        self.as_of = as_of
        self.m = matcher
        self.rules = matcher.ruleset
        self.statuses = matcher.terminology.statuses
        self.policy = policy
        self.findings: list[Finding] = []

    def finding(self, rule: SimpleRule, records: Iterable[Record], summary: str | None = None,
                severity: str | None = None) -> Finding:
        recs = tuple(dict.fromkeys(records))
        labels = sorted({label for _, label, _ in recs if label})
        title = fill(rule.title, self.policy, self.rules)
        found = Finding(
            kind=rule.kind, rule=rule.id, severity=severity or _SEVERITY[rule.kind],
            summary=summary or (f"{title}: {'; '.join(labels)}" if labels else title),
            evidence=tuple(ref for ref, _, _ in recs), source=rule.source,
            detail=fill(rule.detail, self.policy, self.rules), records=recs,
            products=tuple(rule.products),
        )
        self.findings.append(found)
        return found

    def run(self) -> list[Finding]:
        self.conditions()
        self.allergies()
        self.findings += interaction_findings(self.c, self.m, self.findings)
        self.blood_pressure()
        self.age()
        self.observations_required()
        self.unreadable()
        return self.findings

    # Conditions -------------------------------------------------------------------------

    def _in_time(self, known_from: datetime | None) -> bool:
        """REFERENCE: nothing whose onset or recorded date lies after the evaluation time."""
        return known_from is None or known_from <= self.as_of

    def active_then(self, cond: ConditionFact) -> bool:
        """A State record at the evaluation time: abatement decides when it is dated."""
        if cond.abated_at is not None:
            return cond.abated_at > self.as_of
        return cond.clinical_status in (None, *self.statuses.condition_state_clinical)

    def conditions(self) -> None:
        hits: dict[str, list[Record]] = defaultdict(list)
        recent: set[str] = set()
        stale: dict[str, list[Record]] = defaultdict(list)
        as_of = self.as_of
        for classified in self.c.conditions:
            if not classified.hits:
                continue
            cond = classified.fact
            record = (cond.ref, cond.concept.label, cond.recorded)
            for hit in classified.hits:
                rule = hit.rule
                if rule.scope == "state" and not self.active_then(cond):
                    continue
                if rule.stale is not None and not cond.abated and cond.onset is not None and (
                        cond.onset < as_of - rule.stale.window):
                    stale[rule.stale.id].append(record)
                    continue
                hits[rule.id].append(record)
                since = cond.onset or cond.recorded
                if rule.recent is not None and hit.recent_code and since is not None and (
                        since >= as_of - rule.recent.window):
                    recent.add(rule.id)
        pregnancy = self.pregnancy_status()
        if pregnancy is not None:
            hits[self.rules.pregnancy_status.rule].append(pregnancy)
        for rule in self.rules.conditions:
            if rule.id in hits:
                self.finding(rule, hits[rule.id], severity="high" if rule.id in recent else None)
            if rule.stale is not None and rule.stale.id in stale:
                self.finding(rule.stale, stale[rule.stale.id])

    def counted_observations(self, codes: Iterable[str],
                             since: datetime | None = None) -> list[ObservationFact]:
        found = {o.ref: o for code in codes for o in self.c.by_loinc.get(code, ())}
        return [o for o in found.values()
                if since is None or (o.effective is not None and o.effective >= since)]

    def pregnancy_status(self) -> Record | None:
        """REFERENCE: 82810-3 answered LA15173-0 or 77386006; the latest answer decides."""
        answers = self.counted_observations(self.rules.observations.pregnancy_status)
        if not answers:
            return None
        floor = datetime.min.replace(tzinfo=self.as_of.tzinfo)
        latest = max(answers, key=lambda o: (o.effective or floor, o.ref))
        pregnant = {(a.system, a.code) for a in self.rules.pregnancy_status.pregnant_answers}
        if latest.answer is not None and latest.answer.codes & pregnant:
            return (latest.ref, f"pregnancy status: {latest.answer.label}", latest.effective)
        return None

    # Allergies, blood pressure, age, observations ---------------------------------------

    def allergies(self) -> None:
        verification = set(self.statuses.allergy_verification_excluded)
        clinical = set(self.statuses.allergy_clinical_excluded)
        records = [
            (a.ref, a.concept.label, a.recorded) for a in self.facts.allergies
            if a.verification_status not in verification and a.clinical_status not in clinical
            and self._in_time(a.known_from) and self.m.is_ketamine(a.concept)
        ]
        if records:
            self.finding(self.rules.allergy, records)

    def blood_pressure(self) -> None:
        bp = self.rules.blood_pressure
        start = self.as_of - timedelta(days=self.policy.window_days)
        scan = scan_blood_pressure(self.c.observations, self.rules,
                                   frozenset(self.statuses.observation), start, self.as_of)
        if scan.unusable:
            self.finding(bp.unusable,
                         [(ref, why, None) for ref, why in sorted(scan.unusable.items())])
        reading = scan.latest()
        if reading is None:
            self.finding(bp.missing, [],
                         summary=f"{bp.missing.title} (last {self.policy.window_days} days)")
            return
        sys_v, dia_v = reading.systolic, reading.diastolic
        shown = f"{num(sys_v)}/{num(dia_v)} mmHg on {reading.at.date().isoformat()}"
        records = [(ref, f"blood pressure {shown}", reading.at) for ref in reading.evidence]
        p = self.policy
        if _above(sys_v, p.systolic_uncontrolled) or _above(dia_v, p.diastolic_uncontrolled):
            rule: SimpleRule = bp.uncontrolled
            limit = f"{num(p.systolic_uncontrolled)}/{num(p.diastolic_uncontrolled)}"
        elif _above(sys_v, p.systolic_elevated) or _above(dia_v, p.diastolic_elevated):
            rule = bp.elevated
            limit = f"{num(p.systolic_elevated)}/{num(p.diastolic_elevated)}"
        else:
            return
        self.finding(rule, records, summary=f"{rule.title}: latest {shown} (above {limit} mmHg)")

    def age(self) -> None:
        rule = self.rules.age
        birth = self.facts.birth_date
        if birth is None:
            self.finding(rule.unknown, [])
            return
        today = self.as_of.date()
        years = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
        record = [(self.facts.patient, f"age {years}", None)]
        if years < rule.under_years:
            self.finding(rule, record, summary=f"{rule.title}: {years} years")
        for band in self.rules.age_bands:
            if years >= band.min_years and (band.max_years is None or years <= band.max_years):
                self.finding(band, record, summary=f"{band.title}: {years} years")

    def observations_required(self) -> None:
        if not self.counted_observations(self.rules.observations.body_weight):
            self.finding(self.rules.weight, [])
        for rule in self.rules.observation_required:
            since = (self.as_of - timedelta(days=rule.window_days)
                     if rule.window_days is not None else None)
            if not self.counted_observations(rule.codes, since):
                self.finding(rule, [])

    def not_offered(self) -> list[ReadProblem]:
        """Types the server does not offer: a note where an offered type carries the same data,
        missing data where none does; under a ruleset without ``not_offered`` (v1), unreadable
        records, as before."""
        types = self.facts.not_offered
        rules = self.rules.not_offered
        if not types:
            return []
        if rules is None:
            return [ReadProblem(rtype, NOT_OFFERED) for rtype in types]
        partial = [t for t in types
                   if any(other not in types for other in rules.covered_by.get(t, ()))]
        missing = [t for t in types if t not in partial]
        for rule, found in ((rules.partial, partial), (rules.missing, missing)):
            if found:
                self.finding(rule, [(t, NOT_OFFERED, None) for t in found],
                             summary=f"{rule.title}: {', '.join(found)}")
        return []

    def unreadable(self) -> None:
        problems = [*self.facts.problems, *self.not_offered()]
        if problems:
            rule = self.rules.unreadable
            self.finding(rule, [(p.reference, p.problem, None) for p in problems],
                         summary=f"{rule.title}: {len(problems)} record(s) not read")


def _above(value: float | None, limit: float) -> bool:
    return value is not None and value > limit


def _order(finding: Finding) -> tuple[int, int, str, tuple[str, ...]]:
    return (-raised_by(finding), -_SEVERITY_RANK.get(finding.severity, 0), finding.rule,
            finding.evidence)


def _merge_unreadable(findings: list[Finding], rule_id: str) -> list[Finding]:
    """Unreadable records from the fetch stage and from medication references: one finding."""
    parts = [f for f in findings if f.rule == rule_id]
    if len(parts) < 2:
        return findings
    records = tuple(dict.fromkeys(r for f in parts for r in f.records))
    merged = Finding(kind=parts[0].kind, rule=rule_id, severity=parts[0].severity,
                     summary=parts[-1].summary, evidence=tuple(r for r, _, _ in records),
                     source=parts[0].source, detail=parts[0].detail, records=records,
                     products=parts[0].products)
    return [f for f in findings if f.rule != rule_id] + [merged]


def evaluate(facts: PatientFacts, as_of: datetime, matcher: Matcher,
             policy: BloodPressurePolicy | None = None,
             products: tuple[Product, ...] = PRODUCTS) -> ScreeningResult:
    """Screen one patient at ``as_of`` (aware datetime) for ``products``: most severe first."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    ruleset = matcher.ruleset
    policy = policy or BloodPressurePolicy.of(ruleset)
    classified = classify(facts, as_of, matcher)
    found = _merge_unreadable(_Screen(facts, as_of, matcher, policy, classified).run(),
                              ruleset.unreadable.id)
    asked = [
        _for_products(f, tuple(p for p in f.products if p in products)) for f in found
        if any(p in products for p in f.products)
    ]
    findings = tuple(sorted(asked, key=_order))
    verdicts: dict[str, Verdict] = {p: max((raised_by(f) for f in findings if p in f.products),
                       default=Verdict.SUITABLE) for p in products}
    eligibility = (assess(classified, matcher, policy)
                   if ruleset.eligibility is not None else None)
    return ScreeningResult(facts.patient, as_of, ruleset.version, max(verdicts.values()),
                           findings, products, verdicts, thresholds(policy, ruleset), eligibility)


def _for_products(finding: Finding, products: tuple[Product, ...]) -> Finding:
    if products == finding.products:
        return finding
    return Finding(kind=finding.kind, rule=finding.rule, severity=finding.severity,
                   summary=finding.summary, evidence=finding.evidence, source=finding.source,
                   detail=finding.detail, records=finding.records, products=products)
