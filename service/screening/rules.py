"""The ketamine-suitability screen: normalised facts in, findings and a verdict out.

Pure and deterministic for a given evaluation time: no I/O, no clock. Every finding carries the
rule id, the source the rule cites and the records it rests on. The verdict order and which
records count follow the clinical reference (ruleset v1) section by section.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.screening.blood_pressure import scan_blood_pressure
from service.screening.matching import Matcher
from service.screening.model import (
    Finding,
    FindingKind,
    ObservationFact,
    PatientFacts,
    ScreeningResult,
    Verdict,
)
from service.screening.ruleset import SimpleRule

__all__ = ["BloodPressurePolicy", "evaluate"]

Record = tuple[str, str, datetime | None]

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


@dataclass(frozen=True, slots=True)
class BloodPressurePolicy:
    """Window and thresholds; the reference makes them configurable (defaults from the map)."""

    window_days: int
    systolic_uncontrolled: float
    diastolic_uncontrolled: float
    systolic_elevated: float
    diastolic_elevated: float


def raised_by(finding: Finding) -> Verdict:
    if finding.kind == "interaction" and finding.severity == "minor":
        return Verdict.SUITABLE
    return _RAISES[finding.kind]


def _finding(rule: SimpleRule, records: Iterable[Record], summary: str | None = None,
             detail: str | None = None) -> Finding:
    recs = tuple(dict.fromkeys(records))
    labels = sorted({label for _, label, _ in recs if label})
    return Finding(
        kind=rule.kind,
        rule=rule.id,
        severity=_SEVERITY[rule.kind],
        summary=summary or (f"{rule.title}: {'; '.join(labels)}" if labels else rule.title),
        evidence=tuple(ref for ref, _, _ in recs),
        source=rule.source,
        detail=detail or rule.detail,
        records=recs,
    )


class _Screen:
    def __init__(self, facts: PatientFacts, as_of: datetime, matcher: Matcher,
                 policy: BloodPressurePolicy | None) -> None:
        self.facts = facts
        self.as_of = as_of
        self.m = matcher
        self.rules = matcher.ruleset
        self.statuses = matcher.terminology.statuses
        bp = self.rules.blood_pressure
        self.policy = policy or BloodPressurePolicy(
            bp.window_days, bp.uncontrolled.systolic_above, bp.uncontrolled.diastolic_above,
            bp.elevated.systolic_above, bp.elevated.diastolic_above,
        )
        self.findings: list[Finding] = []

    def run(self) -> list[Finding]:
        self.conditions_and_pregnancy()
        self.allergies()
        self.medications()
        self.blood_pressure()
        self.age()
        self.weight()
        self.unreadable()
        return self.findings

    def conditions_and_pregnancy(self) -> None:
        hits: dict[str, list[Record]] = defaultdict(list)
        excluded = set(self.statuses.condition_verification_excluded)
        state_ok = set(self.statuses.condition_state_clinical)
        for cond in self.facts.conditions:
            if cond.verification_status in excluded:
                continue
            for rule in self.m.condition_rules(cond.concept):
                if rule.scope == "state" and cond.clinical_status not in (None, *state_ok):
                    continue
                hits[rule.id].append((cond.ref, cond.concept.label, cond.recorded))
        pregnancy = self.pregnancy_status()
        if pregnancy is not None:
            hits[self.rules.pregnancy_status.rule].append(pregnancy)
        for rule in self.rules.conditions:
            if rule.id in hits:
                self.findings.append(_finding(rule, hits[rule.id]))

    def counted_observations(self, codes: Iterable[str]) -> list[ObservationFact]:
        wanted = frozenset(codes)
        counted = set(self.statuses.observation)
        return [
            o for o in self.facts.observations
            if o.status in counted
            and not o.concept.loinc.isdisjoint(wanted)
            and (o.effective is None or o.effective <= self.as_of)
        ]

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

    def allergies(self) -> None:
        rule = self.rules.allergy
        verification = set(self.statuses.allergy_verification_excluded)
        clinical = set(self.statuses.allergy_clinical_excluded)
        records = [
            (a.ref, a.concept.label, a.recorded) for a in self.facts.allergies
            if a.verification_status not in verification and a.clinical_status not in clinical
            and self.m.is_ketamine(a.concept)
        ]
        if records:
            self.findings.append(_finding(rule, records))

    def medications(self) -> None:
        by_class: dict[str, list[Record]] = defaultdict(list)
        unreadable: list[Record] = []
        for med in self.facts.medications:
            allowed = (self.statuses.medication_statement
                       if med.ref.startswith("MedicationStatement/")
                       else self.statuses.medication_request)
            if med.status not in allowed:
                continue
            if med.period_end is not None and med.period_end < self.as_of:
                continue
            if med.unresolved and not med.concept.texts:
                unreadable.append((med.ref, f"medication {med.medication_ref} not found", None))
                continue
            for cls in self.m.interaction_classes(med.concept):
                by_class[cls.id].append((med.ref, med.concept.label, med.recorded))
        for cls in self.rules.interactions:
            if cls.id not in by_class:
                continue
            recs = tuple(dict.fromkeys(by_class[cls.id]))
            names = "; ".join(sorted({label for _, label, _ in recs}))
            self.findings.append(Finding(
                kind="interaction", rule=cls.id, severity=cls.severity,
                summary=f"{cls.name} ({cls.severity}): {names}. {cls.effect}",
                evidence=tuple(ref for ref, _, _ in recs), source=cls.source,
                detail=cls.management, records=recs,
            ))
        if unreadable:
            self.findings.append(_finding(self.rules.unreadable, unreadable))

    def blood_pressure(self) -> None:
        bp = self.rules.blood_pressure
        start = self.as_of - timedelta(days=self.policy.window_days)
        scan = scan_blood_pressure(
            self.facts.observations, self.rules, frozenset(self.statuses.observation),
            start, self.as_of,
        )
        if scan.unusable:
            self.findings.append(_finding(bp.unusable, [
                (ref, why, None) for ref, why in sorted(scan.unusable.items())
            ]))
        reading = scan.latest()
        if reading is None:
            self.findings.append(_finding(
                bp.missing, [],
                summary=f"{bp.missing.title} (last {self.policy.window_days} days)",
            ))
            return
        sys_v, dia_v = reading.systolic, reading.diastolic
        shown = f"{_num(sys_v)}/{_num(dia_v)} mmHg on {reading.at.date().isoformat()}"
        records = [(ref, f"blood pressure {shown}", reading.at) for ref in reading.evidence]
        p = self.policy
        if _above(sys_v, p.systolic_uncontrolled) or _above(dia_v, p.diastolic_uncontrolled):
            rule: SimpleRule = bp.uncontrolled
            limit = f"{_num(p.systolic_uncontrolled)}/{_num(p.diastolic_uncontrolled)}"
        elif _above(sys_v, p.systolic_elevated) or _above(dia_v, p.diastolic_elevated):
            rule = bp.elevated
            limit = f"{_num(p.systolic_elevated)}/{_num(p.diastolic_elevated)}"
        else:
            return
        self.findings.append(_finding(
            rule, records, summary=f"{rule.title}: latest {shown} (above {limit})"
        ))

    def age(self) -> None:
        rule = self.rules.age
        patient_ref = self.facts.patient
        birth = self.facts.birth_date
        if birth is None:
            self.findings.append(_finding(rule.unknown, []))
            return
        today = self.as_of.date()
        years = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
        if years < rule.under_years:
            self.findings.append(_finding(
                rule, [(patient_ref, f"age {years}", None)],
                summary=f"{rule.title}: {years} years",
            ))

    def weight(self) -> None:
        if not self.counted_observations(self.rules.observations.body_weight):
            self.findings.append(_finding(self.rules.weight, []))

    def unreadable(self) -> None:
        problems = self.facts.problems
        if problems:
            self.findings.append(_finding(
                self.rules.unreadable, [(p.reference, p.problem, None) for p in problems],
                summary=f"{self.rules.unreadable.title}: {len(problems)} record(s) not read",
            ))


def _above(value: float | None, limit: float) -> bool:
    return value is not None and value > limit


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return str(int(value)) if value == int(value) else f"{value:g}"


def _order(finding: Finding) -> tuple[int, int, str, tuple[str, ...]]:
    return (-raised_by(finding), -_SEVERITY_RANK.get(finding.severity, 0), finding.rule,
            finding.evidence)


def evaluate(facts: PatientFacts, as_of: datetime, matcher: Matcher,
             policy: BloodPressurePolicy | None = None) -> ScreeningResult:
    """Screen one patient at ``as_of`` (aware datetime): findings most severe first."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    findings = sorted(_Screen(facts, as_of, matcher, policy).run(), key=_order)
    verdict = max((raised_by(f) for f in findings), default=Verdict.SUITABLE)
    return ScreeningResult(facts.patient, as_of, matcher.ruleset.version, verdict,
                           tuple(findings))
