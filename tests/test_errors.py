"""Which error a failed TaskGroup reports."""

from __future__ import annotations

from service.errors import FhirNotFound, FhirUnavailable, reported_error


def test_a_deliberate_error_is_reported_before_a_stray_one() -> None:
    group = BaseExceptionGroup("x", [KeyError("k"), ExceptionGroup("y", [FhirUnavailable("503")])])
    assert isinstance(reported_error(group), FhirUnavailable)


def test_the_preferred_error_wins_wherever_it_sits() -> None:
    missing = FhirNotFound("patient not found: Patient/p")
    group = BaseExceptionGroup("x", [FhirUnavailable("503"), ExceptionGroup("y", [missing])])
    assert reported_error(group, prefer=lambda e: isinstance(e, FhirNotFound)) is missing
    assert isinstance(reported_error(group), FhirUnavailable)


def test_without_a_deliberate_error_the_first_leaf() -> None:
    first = KeyError("k")
    assert reported_error(BaseExceptionGroup("x", [first, ValueError("v")])) is first
