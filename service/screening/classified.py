"""One pass over a patient's facts: what each record is and whether it counts at ``as_of``.

The safety rules and the eligibility answer read the same records; classifying each record once
(with the matcher's per-concept memo) keeps ruleset v2's extra rules from costing a second pass.
REFERENCE, Which records count: nothing dated after the evaluation time counts; refuted and
entered-in-error Conditions never count; Observations count when final, amended, corrected or
preliminary.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from service.screening.drugs import AntidepressantHit, DrugMatch
from service.screening.matching import ConditionHit, Matcher
from service.screening.model import ConditionFact, MedicationFact, ObservationFact, PatientFacts

__all__ = ["Classified", "classify"]


@dataclass(frozen=True, slots=True)
class ConditionRecord:
    fact: ConditionFact
    hits: tuple[ConditionHit, ...]
    depression: bool
    suicidality: bool


@dataclass(frozen=True, slots=True)
class MedicationRecord:
    fact: MedicationFact
    match: DrugMatch
    rescue: bool
    antidepressants: tuple[AntidepressantHit, ...]
    oral: bool
    """Nothing in its texts says it is not taken by mouth (transdermal, injection, ...)."""


@dataclass(slots=True)
class Classified:
    as_of: datetime
    conditions: list[ConditionRecord] = field(default_factory=list)
    """Conditions that count at all (verification and dates), each classified."""
    medications: list[MedicationRecord] = field(default_factory=list)
    """Medication records not dated after ``as_of``, each classified."""
    observations: list[ObservationFact] = field(default_factory=list)
    """Observations not dated after ``as_of`` (any status: the BP scan reports unusable ones)."""
    by_loinc: dict[str, list[ObservationFact]] = field(default_factory=dict)
    """Counted observations (status and date) by LOINC code, for the codes the rules look up
    (``Matcher.indexed_loinc``; blood pressure is scanned from ``observations``)."""
    depression: list[ConditionFact] = field(default_factory=list)
    suicidality: list[ConditionFact] = field(default_factory=list)
    antidepressants: list[MedicationRecord] = field(default_factory=list)
    """The medication records that are antidepressants (eligibility reads only these)."""
    not_offered: tuple[str, ...] = ()
    """Record types the FHIR server does not offer (eligibility says its evidence lacks them)."""


def classify(facts: PatientFacts, as_of: datetime, matcher: Matcher) -> Classified:
    statuses = matcher.terminology.statuses
    excluded = set(statuses.condition_verification_excluded)
    counted = set(statuses.observation)
    indexed = matcher.indexed_loinc
    out = Classified(as_of, not_offered=facts.not_offered)
    for c in facts.conditions:
        if c.verification_status in excluded or (c.known_from is not None
                                                 and c.known_from > as_of):
            continue
        record = ConditionRecord(c, *matcher.classify_condition(c.concept, c.notes))
        out.conditions.append(record)
        if record.depression:
            out.depression.append(c)
        if record.suicidality:
            out.suicidality.append(c)
    drugs = matcher.drugs
    for m in facts.medications:
        if m.known_from is not None and m.known_from > as_of:
            continue
        med = MedicationRecord(m, *drugs.classify(m.concept, m.as_needed, m.context))
        out.medications.append(med)
        if med.antidepressants:
            out.antidepressants.append(med)
    by_loinc: dict[str, list[ObservationFact]] = defaultdict(list)
    for o in facts.observations:
        if o.known_from is not None and o.known_from > as_of:
            continue
        out.observations.append(o)
        if o.status in counted and not indexed.isdisjoint(o.concept.loinc):
            for code in o.concept.loinc & indexed:
                by_loinc[code].append(o)
    out.by_loinc = dict(by_loinc)
    return out
