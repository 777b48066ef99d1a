"""Drug-interaction findings from the medication records that count at the evaluation time.

REFERENCE, Which records count: a MedicationStatement counts when its status is active, intended,
on-hold or unknown and its effective period has not ended; a MedicationRequest when it is active
or on-hold and its intent is not ``proposal`` or ``plan``; as-needed rescue devices never raise an
interaction. Dispenses are evidence of past exposure (eligibility), not of current use.
REFERENCE, Drug interactions: one finding per class, citing every record of that class.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from service.screening.classified import Classified
from service.screening.matching import Matcher
from service.screening.model import Finding, MedicationFact

__all__ = ["Record", "counts_now", "interaction_findings"]

Record = tuple[str, str, datetime | None]


def counts_now(med: MedicationFact, as_of: datetime, matcher: Matcher) -> bool:
    """A current medication at ``as_of`` (the safety screen's reading of the record)."""
    statuses = matcher.terminology.statuses
    if med.kind == "MedicationStatement":
        if med.status not in statuses.medication_statement:
            return False
    elif med.kind == "MedicationRequest":
        if (med.status not in statuses.medication_request
                or med.intent in statuses.medication_request_intent_excluded):
            return False
    else:
        return False
    if med.known_from is not None and med.known_from > as_of:
        return False
    return med.period_end is None or med.period_end >= as_of


def interaction_findings(classified: Classified, matcher: Matcher,
                         earlier: Sequence[Finding]) -> list[Finding]:
    """Interaction findings, and a missing-data finding for medications that cannot be read."""
    by_class: dict[str, list[Record]] = defaultdict(list)
    unreadable: list[Record] = []
    for record in classified.medications:
        med, match = record.fact, record.match
        if not counts_now(med, classified.as_of, matcher):
            continue
        if med.unresolved and not med.concept.texts:
            unreadable.append((med.ref, f"medication {med.medication_ref} not found", None))
            continue
        if record.rescue or not match.classes:
            continue
        label = med.concept.label
        if match.code_label is not None:
            label = f"{label} (its code is {match.code_label})"
        for cls in match.classes:
            by_class[cls.id].append((med.ref, label, med.recorded))
    found: list[Finding] = []
    fired = {f.rule: f for f in earlier}
    for cls in matcher.ruleset.interactions:
        if cls.id not in by_class:
            continue
        recs = tuple(dict.fromkeys(by_class[cls.id]))
        names = "; ".join(sorted({label for _, label, _ in recs}))
        summary = f"{cls.name} ({cls.severity}): {names}. {cls.effect}"
        detail = cls.management
        mentioned = fired.get(cls.mentions) if cls.mentions else None
        if mentioned is not None:
            note = (f"The patient has a {mentioned.summary.split(':')[0].lower()} on record "
                    f"({', '.join(mentioned.evidence)}).")
            summary = f"{summary} {note}"
            detail = f"{detail} {note}"
        found.append(Finding(
            kind="interaction", rule=cls.id, severity=cls.severity, summary=summary,
            evidence=tuple(ref for ref, _, _ in recs), source=cls.source, detail=detail,
            records=recs, products=tuple(cls.products),
        ))
    if unreadable:
        rule = matcher.ruleset.unreadable
        found.append(Finding(
            kind=rule.kind, rule=rule.id, severity="low", summary=rule.title,
            evidence=tuple(ref for ref, _, _ in unreadable), source=rule.source,
            detail=rule.detail, records=tuple(unreadable), products=tuple(rule.products),
        ))
    return found
