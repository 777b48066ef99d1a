"""The screening stage as one call: normalise, then evaluate. Pure: no I/O, no clock.

``screen(raw, as_of, ruleset="v2", products="both")``: an unknown ruleset or product raises
:class:`~service.screening.ruleset.ChoiceError` (an ``InputError`` and a ``ValueError``) whose
message names the allowed values.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from service.screening.matching import Matcher, matcher_for
from service.screening.model import RawPatientData, ScreeningResult
from service.screening.normalise import normalise
from service.screening.policy import PRODUCT_CHOICES, BloodPressurePolicy, products_asked
from service.screening.rules import evaluate
from service.screening.ruleset import (
    DEFAULT_RULESET,
    RULESETS,
    ChoiceError,
    check_choice,
    observation_search_codes,
)

__all__ = [
    "DEFAULT_RULESET",
    "PRODUCT_CHOICES",
    "RULESETS",
    "BloodPressurePolicy",
    "ChoiceError",
    "observation_search_codes",
    "screen",
]


def screen(raw: RawPatientData, as_of: datetime, *, matcher: Matcher | None = None,
           policy: BloodPressurePolicy | None = None, ruleset: str | None = None,
           products: str | Iterable[str] | None = None) -> ScreeningResult:
    """Screen one patient's records at ``as_of`` with ``ruleset`` for ``products``."""
    if matcher is None:
        matcher = matcher_for(check_choice(ruleset or DEFAULT_RULESET, tuple(RULESETS),
                                           "ruleset"))
    asked = products_asked(products)
    facts = normalise(raw, matcher.terminology)
    return evaluate(facts, as_of, matcher, policy, asked)
