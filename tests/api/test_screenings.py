"""POST /api/v1/screenings: scopes, allowed servers, and every FHIR failure as a problem.

FHIR faults are injected with respx; the real reads and writes are in test_sandbox.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import respx

from service.config import Settings
from tests.api.conftest import BOTH_SCOPES, _client, assert_problem

URL = "/api/v1/screenings"
EHR = "https://ehr.example/fhir"
Auth = Callable[..., dict[str, str]]


@pytest.fixture
async def ehr_api(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(make_settings(allowed_issuers=[EHR, "https://other.example"])):
        yield client


async def test_scopes(api: httpx.AsyncClient, auth: Auth) -> None:
    assert_problem(await api.post(URL, json={"patient": "1"}), 401)
    assert_problem(await api.post(URL, json={"patient": "1"},
                                  headers=auth(scope="ketamine.write")), 403)
    resp = await api.post(URL, json={"patient": "1", "write_back": True}, headers=auth())
    body = assert_problem(resp, 403)
    assert "ketamine.write" in body["detail"]
    assert 'scope="ketamine.write"' in resp.headers["www-authenticate"]


@pytest.mark.parametrize("body", [
    {}, {"patient": ""}, {"patient": "a b"}, {"patient": "1", "as_of": "yesterday"},
    {"patient": "1", "write_back": "maybe"}, {"patient": "1", "extra": 1},
    {"patient": "1", "fhir_base": "x" * 3000}])
async def test_invalid_bodies_are_422(api: httpx.AsyncClient, auth: Auth,
                                      body: dict[str, Any]) -> None:
    problem = assert_problem(await api.post(URL, json=body, headers=auth()), 422)
    assert problem["errors"] and problem["errors"][0]["loc"][0] == "body"


async def test_fhir_base_must_be_allowed(ehr_api: httpx.AsyncClient, auth: Auth) -> None:
    resp = await ehr_api.post(URL, json={"patient": "1", "fhir_base": "https://evil.example"},
                              headers=auth())
    assert "fhir_base" in assert_problem(resp, 422)["detail"]


async def test_unreachable_server_is_503(api: httpx.AsyncClient, auth: Auth) -> None:
    resp = await api.post(URL, json={"patient": "1"}, headers=auth())
    assert "unreachable" in assert_problem(resp, 503)["detail"]


def _outcome(text: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "security", "diagnostics": text}]}


FAULTS: dict[str, tuple[Any, int, str]] = {
    "not-found": (httpx.Response(404, json=_outcome("gone")), 404, "Patient/p1"),
    "refused": (httpx.Response(401, json=_outcome("token expired at EHR")), 502,
                "token expired at EHR"),
    "timeout": (httpx.ReadTimeout("slow"), 504, "in time"),
    "unavailable": (httpx.Response(503), 503, "503"),
    "not-json": (httpx.Response(200, text="<html>"), 502, ""),
}


@pytest.mark.parametrize("case", sorted(FAULTS))
async def test_fhir_faults_become_problems(ehr_api: httpx.AsyncClient, auth: Auth,
                                           case: str) -> None:
    answer, status, hint = FAULTS[case]
    with respx.mock(assert_all_called=False) as mock:
        mock.route(host="127.0.0.1").pass_through()  # the API token's JWKS
        mock.get(f"{EHR}/metadata").respond(404)
        route = mock.get(url__regex=rf"^{EHR}/[A-Z]")
        if isinstance(answer, Exception):
            route.side_effect = answer
        else:
            route.return_value = answer
        resp = await ehr_api.post(URL, json={"patient": "p1", "fhir_base": EHR + "/"},
                                  headers=auth(scope=BOTH_SCOPES))
    body = assert_problem(resp, status)
    assert hint in body["detail"]
    assert "Authorization" not in body["detail"]
