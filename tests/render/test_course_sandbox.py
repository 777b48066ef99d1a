"""The treatment course's writes against HAPI: each is one transaction, sending it twice adds
nothing, and writing the session again never reopens its submitted REMS form."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from service.fhir.client import FhirClient
from service.render.integration import IntegrationInput
from service.render.phq9 import Phq9Input
from service.render.rems_form import SubmissionInput
from service.render.session_input import SessionInput
from service.workflow import read_course, write_course, write_session
from tests.render.test_session import session_body

pytestmark = pytest.mark.integration


async def test_course_writes_are_idempotent(fhir_base_url: str) -> None:
    tag = uuid.uuid4().hex[:10]
    pid, dr = f"course-{tag}", f"dr-{tag}"
    async with FhirClient(fhir_base_url) as fhir:
        await fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": f"{fhir_base_url}/{kind}/{rid}", "resource": {"resourceType": kind,
                                                                     "id": rid},
             "request": {"method": "PUT", "url": f"{kind}/{rid}"}}
            for kind, rid in (("Patient", pid), ("Practitioner", dr))]}, retry=False)
        session = SessionInput.model_validate(session_body(patient_id=pid, practitioner_id=dr))
        await write_session(fhir, session)
        course = await read_course(fhir, pid)
        assert [s.session_id for s in course.sessions] == ["S-0001"]
        assert [(t.session_id, t.status) for t in course.tasks] == [("S-0001", "requested")]
        task = course.tasks[0]

        submission = SubmissionInput(submitted_on=date(2026, 6, 16), submitted_by="Sam")
        first = await write_course(fhir, submission, task=task.resource,
                                   practitioner=f"Practitioner/{dr}")
        again = await write_course(fhir, submission, task=task.resource,
                                   practitioner=f"Practitioner/{dr}")
        assert first.locations[0] == again.locations[0] == task.ref
        assert again.created == 0 and first.created >= 1  # the Provenance
        await write_session(fhir, session)  # the session sent again: its Task stays done

        follows = course.sessions[0].ref or ""
        integration = IntegrationInput(
            integration_id="i-1", patient_id=pid, start=datetime(2026, 6, 17, 15, tzinfo=UTC),
            minutes=50, modality="individual", clinician="Dr Chen", follows=follows)
        phq9 = Phq9Input(response_id="q-1", patient_id=pid,
                         answered_at=datetime(2026, 6, 17, 9, tzinfo=UTC), answers=[1] * 9)
        for item in (integration, phq9):
            written = await write_course(fhir, item, practitioner=f"Practitioner/{dr}")
            repeat = await write_course(fhir, item, practitioner=f"Practitioner/{dr}")
            assert written.locations == repeat.locations and repeat.created == 0

        course = await read_course(fhir, pid)
        assert [(t.status, t.submitted_on, t.submitted_by) for t in course.tasks] == [
            ("completed", "2026-06-16", "Sam")]
        assert [(i.follows, i.minutes, i.modality) for i in course.integrations] == [
            (follows, 50, "individual")]
        assert course.phq9 == [(datetime(2026, 6, 17, 9, tzinfo=UTC), 9.0)]
        counts = {kind: await fhir.count(kind, [("patient", f"Patient/{pid}")])
                  for kind in ("Task", "Procedure", "QuestionnaireResponse")}
        assert counts == {"Task": 1, "Procedure": 1, "QuestionnaireResponse": 1}
        versions = await fhir.search_json("Task", [("patient", f"Patient/{pid}")])
        assert versions[0]["meta"]["versionId"] == "2"  # created, then completed once
