"""The launch's encounter on everything the app writes: each resource type names it, nothing
names one when there is none, and HAPI keeps it (read back after the writes)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from service.fhir.client import FhirClient
from service.fhir.transaction import TxEntry
from service.render.integration import IntegrationInput, build_integration_write
from service.render.phq9 import Phq9Input, build_phq9_write
from service.render.session import build_session_write
from service.render.session_input import SessionInput
from service.render.writeback import build_screening_write
from service.workflow import write_course, write_screening, write_session
from tests.render.test_session import session_body
from tests.render.test_writeback import REFS, result

NOW = datetime(2026, 6, 16, 12, 0, tzinfo=UTC)
T = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def _integration(pid: str = "p1", follows: str = "Observation/42") -> IntegrationInput:
    return IntegrationInput(integration_id="i1", patient_id=pid, start=T, minutes=50,
                            modality="individual", clinician="Dr Chen", follows=follows)


def _phq9(pid: str = "p1") -> Phq9Input:
    return Phq9Input(response_id="r1", patient_id=pid, answered_at=T, answers=[1] * 9)


def _written(encounter: str | None) -> list[TxEntry]:
    session = SessionInput.model_validate(session_body(product="esketamine"))
    return [*build_session_write(session, now=NOW, encounter=encounter).entries,
            *build_integration_write(_integration(), now=NOW, encounter=encounter),
            *build_phq9_write(_phq9(), now=NOW, encounter=encounter),
            *build_screening_write(result("p1", REFS), now=NOW, encounter=encounter).entries]


def _json(entry: TxEntry) -> dict[str, Any]:
    return entry.resource.model_dump(mode="json", exclude_none=True)


def test_every_written_resource_but_the_record_keeping_ones_names_the_encounter() -> None:
    entries = _written("enc-1")
    named = [e for e in entries if e.resource_type not in ("Provenance", "DetectedIssue")]
    # DetectedIssue and Provenance have no encounter element in R4.
    assert {e.resource_type for e in named} == {"Observation", "Task", "Procedure",
                                                "QuestionnaireResponse"}
    assert all(_json(e)["encounter"] == {"reference": "Encounter/enc-1"} for e in named)
    assert len(named) == len([e for e in entries if e.resource_type == "Observation"]) + 3


def test_without_an_encounter_nothing_is_written_for_it() -> None:
    assert all("encounter" not in _json(e) for e in _written(None))


@pytest.mark.parametrize("encounter", ["", None])
def test_an_empty_encounter_is_no_encounter(encounter: str | None) -> None:
    write = build_screening_write(result("p1", REFS), now=NOW, encounter=encounter)
    assert "encounter" not in _json(write.observation)


@pytest.mark.integration
async def test_hapi_keeps_the_encounter_on_what_the_course_writes(fhir_base_url: str) -> None:
    tag = uuid.uuid4().hex[:10]
    pid, enc = f"enc-p-{tag}", f"enc-{tag}"
    async with FhirClient(fhir_base_url) as fhir:
        await fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": f"{fhir_base_url}/Patient/{pid}",
             "resource": {"resourceType": "Patient", "id": pid},
             "request": {"method": "PUT", "url": f"Patient/{pid}"}},
            {"fullUrl": f"{fhir_base_url}/Encounter/{enc}",
             "resource": {"resourceType": "Encounter", "id": enc, "status": "in-progress",
                          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                    "code": "AMB"},
                          "subject": {"reference": f"Patient/{pid}"}},
             "request": {"method": "PUT", "url": f"Encounter/{enc}"}}]}, retry=False)
        session = SessionInput.model_validate(session_body(
            patient_id=pid, practitioner_id=None, product="esketamine"))
        done = await write_session(fhir, session, encounter=enc)
        await write_course(fhir, _phq9(pid), encounter=enc)
        await write_course(fhir, _integration(pid, follows=done.result.locations[0]),
                           encounter=enc)
        # Evidence must exist on HAPI: the session's Observation stands in for every record.
        evidence = done.result.locations[0]
        await write_screening(fhir, result(pid, dict.fromkeys(REFS, evidence)), encounter=enc)
        found: dict[str, int] = {}
        for kind in ("Observation", "Task", "Procedure", "QuestionnaireResponse"):
            matches = await fhir.search_json(kind, [("encounter", f"Encounter/{enc}")])
            assert all(m["encounter"] == {"reference": f"Encounter/{enc}"} for m in matches)
            found[kind] = len(matches)
        observations = len([e for e in build_session_write(session, now=NOW).entries
                            if e.resource_type == "Observation"])
        # The session's Observations, the PHQ-9 total and the screening result.
        assert found == {"Observation": observations + 2, "Task": 1, "Procedure": 1,
                         "QuestionnaireResponse": 1}
