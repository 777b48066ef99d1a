"""The REST API against the real HAPI sandbox: screen, write back, document a session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from service.config import Settings
from service.fhir.client import FhirClient
from tests.api.conftest import BOTH_SCOPES, _client, assert_problem, seed
from tests.builders import AS_OF, PatientBuilder, iso
from tests.render.test_session import session_body

pytestmark = pytest.mark.integration
Auth = Callable[..., dict[str, str]]


@pytest.fixture
def sandbox_settings(make_settings: Callable[..., Settings], fhir_base_url: str) -> Settings:
    return make_settings(allowed_issuers=[fhir_base_url], fhir_max_retries=1,
                         fhir_timeout_seconds=30)


@pytest.fixture
async def sandbox_api(sandbox_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(sandbox_settings):
        yield client


async def _seed(settings: Settings, resources: list[dict[str, Any]]) -> None:
    await seed(settings.allowed_issuers[0], resources)


async def test_screen_write_back_and_repeat(sandbox_api: httpx.AsyncClient, auth: Auth,
                                            sandbox_settings: Settings) -> None:
    patient = PatientBuilder(f"api-{uuid.uuid4().hex[:10]}")
    condition = patient.condition("I71.4", "Abdominal aortic aneurysm")
    patient.medication(text="lorazepam 1 mg tablet", form="referenced")
    await _seed(sandbox_settings, [patient.patient(), *patient.resources])
    body = {"patient": patient.pid, "as_of": iso(AS_OF)}
    resp = await sandbox_api.post("/api/v1/screenings", json=body, headers=auth())
    assert resp.status_code == 200, resp.text
    screened = resp.json()
    assert screened["verdict"] == "contraindicated" and "written" not in screened
    assert [f["evidence"] for f in screened["findings"] if f["rule"] == "ci-aneurysm"] == \
        [[condition]]
    # The same records as a Bundle give the same answer.
    evaluated = await sandbox_api.post("/api/v1/screenings/$evaluate", json=patient.bundle(),
                                       params={"as_of": iso(AS_OF)}, headers=auth())
    assert evaluated.json() == screened

    body["write_back"] = True
    first = await sandbox_api.post("/api/v1/screenings", json=body,
                                   headers=auth(scope=BOTH_SCOPES))
    assert first.status_code == 200, first.text
    written = first.json()["written"]
    kinds = [ref.split("/")[0] for ref in written]
    assert {"Observation", "DetectedIssue", "Provenance"} <= set(kinds)
    assert "Device" not in kinds
    async with FhirClient(sandbox_settings.allowed_issuers[0], settings=sandbox_settings) as fhir:
        issues = [await fhir.read(*ref.split("/")) for ref in written
                  if ref.startswith("DetectedIssue/")]
    assert any(i["implicated"] == [{"reference": condition}] for i in issues)
    again = await sandbox_api.post("/api/v1/screenings", json=body,
                                   headers=auth(scope=BOTH_SCOPES))
    assert again.json()["written"] == written


async def test_unknown_patient_is_404(sandbox_api: httpx.AsyncClient, auth: Auth) -> None:
    resp = await sandbox_api.post("/api/v1/screenings", json={"patient": "no-such-patient-x1"},
                                  headers=auth())
    assert "Patient/no-such-patient-x1" in assert_problem(resp, 404)["detail"]


async def test_session_written_once(sandbox_api: httpx.AsyncClient, auth: Auth,
                                    sandbox_settings: Settings) -> None:
    tag = uuid.uuid4().hex[:10]
    pid, dr = f"api-sess-{tag}", f"api-dr-{tag}"
    await _seed(sandbox_settings, [{"resourceType": "Patient", "id": pid},
                                   {"resourceType": "Practitioner", "id": dr}])
    body = session_body(patient_id=pid, practitioner_id=dr, session_id=f"S-{tag}",
                        monitoring_minutes=100)
    assert_problem(await sandbox_api.post("/api/v1/sessions", json=body, headers=auth()), 403)
    first = await sandbox_api.post("/api/v1/sessions", json=body,
                                   headers=auth(scope="ketamine.write"))
    assert first.status_code == 200, first.text
    assert first.json()["created"] >= len(first.json()["written"]) - 1
    assert any("120 minutes" in w for w in first.json()["warnings"])
    second = await sandbox_api.post("/api/v1/sessions", json=body,
                                    headers=auth(scope="ketamine.write"))
    assert second.json()["written"] == first.json()["written"]
    assert second.json()["created"] == 0
