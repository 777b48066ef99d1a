"""Ids that go into URLs (issue 16): the FHIR id grammar and never ``.`` or ``..``; a bad one is a
4xx and never a request. The FHIR server is the SMART test server's proxy, which logs every
request it receives (``state.fhir_requests``, and ``state.paths`` for any path at all)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from service.config import Settings
from service.errors import InputError
from service.fhir.client import FhirClient
from tests.api.conftest import UNREACHABLE_FHIR, _client, assert_problem
from tests.auth.smart_server import SmartTestServer
from tests.cds.conftest import (  # noqa: F401 - cds_auth is a fixture
    ESKETAMINE,
    cds_auth,
    draft_order,
    hook_request,
    prefetch_for,
    recent_patient,
)

Auth = Callable[..., dict[str, str]]
DOTS = [".", "..", "Patient/.", "Patient/.."]


def _fhir_requests(server: SmartTestServer, since: int) -> list[str]:
    """What reached the test server after ``since``, its key sets left out."""
    return [path for path in server.state.paths[since:] if not path.endswith("/jwks")]


@pytest.fixture
async def proxied(make_settings: Callable[..., Settings],
                  token_server: SmartTestServer) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the test server's FHIR proxy as its (only) FHIR server."""
    async for client in _client(make_settings(allowed_issuers=[token_server.fhir_base])):
        yield client


@pytest.mark.parametrize("patient", DOTS)
async def test_dot_patients_are_422_and_nothing_is_sent(proxied: httpx.AsyncClient, auth: Auth,
                                                        token_server: SmartTestServer,
                                                        patient: str) -> None:
    """Issue 16: ``{"patient": "."}`` searched every patient on the FHIR server."""
    before = len(token_server.state.paths)
    resp = await proxied.post("/api/v1/screenings", json={"patient": patient}, headers=auth())
    assert assert_problem(resp, 422)["errors"][0]["loc"] == ["body", "patient"]
    assert _fhir_requests(token_server, before) == []


@pytest.mark.parametrize("rid", [".", "..", "../../admin", "x?_format=xml&", "a/b", "", "a" * 65])
async def test_the_client_sends_no_request_for_a_bad_id(settings: Settings, rid: str) -> None:
    async with FhirClient(UNREACHABLE_FHIR, settings=settings) as client:
        with pytest.raises(InputError, match="FHIR id"):
            await client.read("Patient", rid)
        with pytest.raises(InputError, match="FHIR id"):
            await client.read_patient_data(rid, as_of=datetime.now(UTC), bp_window_days=30)
        assert client.requests_sent == 0


def _statement_with(reference: str, pid: str) -> dict[str, Any]:
    return {"resourceType": "MedicationStatement", "id": "ms-ref", "status": "active",
            "subject": {"reference": f"Patient/{pid}"},
            "medicationReference": {"reference": reference}}


@pytest.mark.parametrize("reference", ["Medication/.", "Medication/..",
                                       "Medication/x?_format=xml&"])
async def test_a_cds_medication_reference_that_is_no_id_is_never_fetched(
        proxied: httpx.AsyncClient, cds_auth: Any,  # noqa: F811 - the imported fixture
        token_server: SmartTestServer,
        reference: str) -> None:
    """Issue 16: a CDS reference ``Medication/.`` listed every Medication with the caller's
    token; ``Medication/x?_format=xml&`` injected a query. The record is screened without it."""
    patient = recent_patient("cds-ref")
    prefetch = prefetch_for(patient)
    prefetch["medicationStatements"]["entry"].append(
        {"resource": _statement_with(reference, patient.pid), "search": {"mode": "match"}})
    body = hook_request(patient.pid, [draft_order(patient.pid, ESKETAMINE)], prefetch,
                        fhirServer=token_server.fhir_base,
                        fhirAuthorization={"access_token": "caller-token",
                                           "token_type": "Bearer"})
    before = len(token_server.state.paths)
    resp = await proxied.post("/cds-services/ketamine-order-sign", json=body, headers=cds_auth())
    assert resp.status_code == 200, resp.text
    assert _fhir_requests(token_server, before) == []
