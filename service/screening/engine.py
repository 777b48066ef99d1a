"""The screening stage as one call: normalise, then evaluate. Pure: no I/O, no clock."""

from __future__ import annotations

from datetime import datetime

from service.screening.matching import Matcher, default_matcher
from service.screening.model import RawPatientData, ScreeningResult
from service.screening.normalise import normalise
from service.screening.rules import BloodPressurePolicy, evaluate

__all__ = ["BloodPressurePolicy", "screen"]


def screen(raw: RawPatientData, as_of: datetime, *, matcher: Matcher | None = None,
           policy: BloodPressurePolicy | None = None) -> ScreeningResult:
    matcher = matcher or default_matcher()
    facts = normalise(raw, matcher.terminology)
    return evaluate(facts, as_of, matcher, policy)
