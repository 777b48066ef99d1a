"""CDS calls whose prefetch is incomplete: the rest is read from the real HAPI sandbox."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from service.config import Settings
from tests.api.conftest import _client, assert_problem, seed
from tests.cds.conftest import (
    ESKETAMINE,
    draft_order,
    hook_request,
    recent_patient,
    trd_documented,
)

pytestmark = pytest.mark.integration
URL = "/cds-services/ketamine-order-sign"


@pytest.fixture
def cds_settings(make_settings: Callable[..., Settings], fhir_base_url: str) -> Settings:
    return make_settings(allowed_issuers=[fhir_base_url], fhir_timeout_seconds=30)


@pytest.fixture
async def cds_api(cds_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(cds_settings):
        yield client


def _authorization() -> dict[str, Any]:
    return {"access_token": "opaque-test-token", "token_type": "Bearer", "expires_in": 300,
            "scope": "patient/*.rs", "subject": "ketamine-screen"}


async def test_fetches_what_prefetch_lacks(cds_api: httpx.AsyncClient, cds_auth: Any,
                                           cds_settings: Settings, fhir_base_url: str) -> None:
    patient = recent_patient(f"cds-{uuid.uuid4().hex[:10]}")
    condition = patient.condition("I71.4", "Abdominal aortic aneurysm")
    lorazepam = patient.medication(text="lorazepam 1 mg tablet", form="referenced")
    await seed(fhir_base_url, [patient.patient(), *patient.resources])
    body = hook_request(patient.pid, [draft_order(patient.pid, ESKETAMINE)],
                        {"patient": patient.patient(), "allergies": None},
                        fhirServer=fhir_base_url, fhirAuthorization=_authorization())
    resp = await cds_api.post(URL, json=body, headers=cds_auth())
    assert resp.status_code == 200, resp.text
    cards = resp.json()["cards"]
    # The last card is eligibility's information (no depression on record; issue 11).
    assert [c["indicator"] for c in cards] == ["critical", "warning", "info"], cards
    assert cards[2]["source"]["topic"]["code"] == "eligibility"
    assert condition in cards[0]["detail"]
    assert lorazepam in cards[1]["detail"]  # its Medication was read by reference


async def test_server_not_allowed_is_412(cds_api: httpx.AsyncClient, cds_auth: Any) -> None:
    patient = recent_patient("cds-elsewhere")
    body = hook_request(patient.pid, [draft_order(patient.pid, ESKETAMINE)], {},
                        fhirServer="https://ehr.elsewhere.example/fhir",
                        fhirAuthorization=_authorization())
    resp = await cds_api.post(URL, json=body, headers=cds_auth())
    assert "not one of the FHIR servers" in assert_problem(resp, 412)["detail"]


async def test_past_medications_and_dispenses_are_read_for_eligibility(
        cds_api: httpx.AsyncClient, cds_auth: Any, fhir_base_url: str) -> None:
    patient = recent_patient(f"cds-{uuid.uuid4().hex[:10]}")
    patient.condition("I71.4", "Abdominal aortic aneurysm")
    trd_documented(patient)  # a completed statement and two dispenses: TRD documented
    await seed(fhir_base_url, [patient.patient(), *patient.resources])
    body = hook_request(patient.pid, [draft_order(patient.pid, ESKETAMINE)],
                        {"patient": patient.patient()},
                        fhirServer=fhir_base_url, fhirAuthorization=_authorization())
    resp = await cds_api.post(URL, json=body, headers=cds_auth())
    assert resp.status_code == 200, resp.text
    cards = resp.json()["cards"]
    # The server gave the completed statement and the dispenses: no eligibility card.
    assert [(c["indicator"], c["links"][0]["appContext"]) for c in cards] == [
        ("critical", "ci-aneurysm")]
