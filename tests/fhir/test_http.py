"""Error messages built from OperationOutcomes: the reason, briefly, and nothing else."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.errors import FhirRejected
from service.fhir.client import FhirClient
from service.fhir.http import MAX_ISSUE_CHARS, MAX_QUOTED_ISSUES, check_response, outcome_text


def answer(status: int, issues: list[dict[str, Any]]) -> httpx.Response:
    return httpx.Response(status, json={"resourceType": "OperationOutcome", "issue": issues})


def issue(severity: str, text: str, **more: Any) -> dict[str, Any]:
    return {"severity": severity, "code": "processing", "diagnostics": text, **more}


def test_a_few_issues_are_quoted_whole_with_their_location() -> None:
    response = answer(422, [
        issue("error", "Observation.status: minimum required = 1",
              expression=["Bundle.entry[1].resource"]),
        issue("warning", "Best practice: add a narrative"),
        {"severity": "fatal", "code": "invalid", "details": {"text": "bad reference"},
         "location": ["Bundle.entry[2]"]},
    ])
    assert outcome_text(response) == ("Observation.status: minimum required = 1 "
                                       "(Bundle.entry[1].resource); bad reference "
                                       "(Bundle.entry[2])")


def test_hundreds_of_issues_give_a_bounded_message() -> None:
    long_text = "Profile http://hl7.org/fhir/StructureDefinition/Observation, Element " + "x" * 900
    issues = [issue("information", "validation took 9 s")]
    issues += [issue("error", f"{n}: {long_text}", expression=[f"Bundle.entry[{n}].resource"])
               for n in range(300)]
    issues += [issue("warning", "Best practice warning " * 20) for _ in range(200)]
    text = outcome_text(answer(422, issues))
    parts = text.removesuffix(" (and 297 more)").split("; ")
    assert text.endswith(" (and 297 more)")
    assert [p.split(":")[0] for p in parts] == ["0", "1", "2"]
    assert all(len(p) <= MAX_ISSUE_CHARS for p in parts)
    assert len(text) < MAX_QUOTED_ISSUES * (MAX_ISSUE_CHARS + 2) + 20
    assert "Best practice" not in text and "validation took" not in text

    with pytest.raises(FhirRejected) as info:
        check_response(answer(422, issues), what="transaction")
    assert len(str(info.value)) < 800
    assert str(info.value).startswith("FHIR server rejected transaction (422): 0: Profile")


def test_warnings_are_quoted_only_without_errors_and_bounded_too() -> None:
    text = outcome_text(answer(400, [issue("warning", f"w{n}") for n in range(5)]))
    assert text == "w0; w1; w2 (and 2 more)"


def test_only_diagnostics_and_locations_are_quoted() -> None:
    # Anything else in an issue (codings, extensions) may echo what was sent: left out.
    response = answer(422, [issue(
        "error", "Invalid value", expression=["Patient.name[0].family"],
        details={"text": "ignored when diagnostics exist",
                 "coding": [{"code": "Zzyzx-Secret"}]},
        extension=[{"url": "x", "valueString": "Zzyzx-Secret"}])])
    assert outcome_text(response) == "Invalid value (Patient.name[0].family)"


def test_outcomes_without_text() -> None:
    assert outcome_text(httpx.Response(502, content=b"<html>")) == \
        "HTTP 502 without an OperationOutcome"
    assert outcome_text(answer(400, [{"severity": "error", "code": "invalid"}])) == \
        "HTTP 400 with an empty OperationOutcome"
    assert outcome_text(answer(400, [issue("error", "x", details="not an object",
                                           expression="not a list")])) == "x"


@pytest.mark.integration
async def test_a_large_rejected_transaction_from_hapi_is_bounded(fhir_base_url: str) -> None:
    """Fifty Observations without status or code: HAPI lists an error for each."""
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
         "resource": {"resourceType": "Observation", "subject": {"reference": "Patient/nobody"}},
         "request": {"method": "POST", "url": "Observation"}} for n in range(50)]}
    async with FhirClient(fhir_base_url) as fhir:
        with pytest.raises(FhirRejected) as info:
            await fhir.transaction(bundle, retry=False)
    message = str(info.value)
    assert info.value.status == 422  # HAPI: validation errors in a transaction
    assert len(message) < 800
    assert " more)" in message
