"""Whether a CDS hook's draft orders concern ketamine or esketamine at all.

A CDS service answers ``{"cards": []}`` unless they do (https://cds-hooks.hl7.org/2.0/#cds-service-response).
The orders arrive as records (service.fhir.prefetch.draft_orders) and are matched like any
medication record: by RxNorm, ATC or name, with the allergy rule's lists (the engine's matcher).
"""

from __future__ import annotations

from service.screening.matching import Matcher, default_matcher
from service.screening.model import RawPatientData
from service.screening.normalise import normalise

__all__ = ["holds_ketamine"]


def holds_ketamine(orders: RawPatientData, matcher: Matcher | None = None) -> bool:
    """True when a draft MedicationRequest among ``orders`` is ketamine or esketamine."""
    matcher = matcher or default_matcher()
    facts = normalise(orders, matcher.terminology)
    return any(matcher.is_ketamine(m.concept) for m in facts.medications)
