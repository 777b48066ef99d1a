"""Which error a failed TaskGroup reports."""

from __future__ import annotations

import re

from service import errors
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


def _classes(root: type[errors.ServiceError]) -> list[type[errors.ServiceError]]:
    return [root, *(c for sub in root.__subclasses__() for c in _classes(sub))]


def test_the_drawing_at_the_top_shows_every_class_with_its_answer() -> None:
    lines = (errors.__doc__ or "").splitlines()
    for cls in _classes(errors.ServiceError):
        if cls.__module__ != "service.errors":
            continue
        line = next((text for text in lines if re.search(rf"\b{cls.__name__}\b", text)), None)
        assert line is not None, f"{cls.__name__} is missing from the drawing"
        err = cls("x")
        assert str(err.http_status) in line and err.problem_type in line, cls.__name__


def test_the_patient_who_is_missing_is_an_attribute_not_a_message() -> None:
    missing = FhirNotFound("not found: Patient/p (404)", status=404, patient="p")
    assert missing.patient == "p" and missing.http_status == 404
    assert FhirNotFound("not found: Medication/m (404)", status=404).patient is None


def test_a_rejection_is_the_callers_to_fix_only_for_their_data() -> None:
    assert errors.FhirRejected("x", status=422).http_status == 422
    assert errors.FhirRejected("x", status=400).http_status == 422
    assert errors.FhirRejected("x", status=409).http_status == 502
