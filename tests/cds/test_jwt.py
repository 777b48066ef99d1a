"""The CDS client's JWT (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients): every check fails
closed with a 401 problem, and only a JWT that passes them all gets cards."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey

from tests.api.conftest import assert_problem
from tests.auth.smart_server import SmartTestServer
from tests.cds.conftest import (
    ESKETAMINE,
    draft_order,
    hook_request,
    mint_cds_jwt,
    prefetch_for,
    recent_patient,
)

SERVICE = "ketamine-order-sign"
URL = f"/cds-services/{SERVICE}"


def _body() -> dict[str, Any]:
    patient = recent_patient("cds-jwt")
    patient.condition("I71.4", "Abdominal aortic aneurysm")
    return hook_request(patient.pid, [draft_order(patient.pid, ESKETAMINE)],
                        prefetch_for(patient))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_good_jwt_gets_cards(api: httpx.AsyncClient, token_server: SmartTestServer) -> None:
    resp = await api.post(URL, json=_body(), headers=_bearer(mint_cds_jwt(token_server, SERVICE)))
    assert resp.status_code == 200, resp.text
    # The aneurysm's card, then eligibility's information card (no depression on record).
    assert [c["indicator"] for c in resp.json()["cards"]] == ["critical", "info"]


async def test_jku_may_be_left_out(api: httpx.AsyncClient,
                                    token_server: SmartTestServer) -> None:
    """The issuer's JWK Set URL is configured; a JWT need not repeat it (CDS Hooks: optional)."""
    token = mint_cds_jwt(token_server, SERVICE, header={"jku": None})
    assert (await api.post(URL, json=_body(), headers=_bearer(token))).status_code == 200


async def test_audience_may_be_a_list(api: httpx.AsyncClient,
                                      token_server: SmartTestServer) -> None:
    token = mint_cds_jwt(token_server, SERVICE, aud=[f"http://testserver{URL}"])
    assert (await api.post(URL, json=_body(), headers=_bearer(token))).status_code == 200


def _unsigned_hs256(server: SmartTestServer) -> str:
    header = {"alg": "HS256", "typ": "JWT", "kid": server.id_token_key.kid,
              "jku": f"{server.base_url}/jwks"}
    claims = {"iss": server.base_url, "aud": f"http://testserver{URL}", "jti": "x",
              "iat": int(time.time()), "exp": int(time.time()) + 300}

    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64(header)}.{b64(claims)}.c2ln"


BAD: dict[str, Any] = {
    "wrong-aud": ({"aud": "http://testserver/cds-services/ketamine-order-select"}, "'aud'"),
    "service-base-aud": ({"aud": "http://testserver/cds-services"}, "'aud'"),
    "unknown-issuer": ({"iss": "https://evil.example"}, "issuer"),
    "expired": ({"exp": int(time.time()) - 600, "iat": int(time.time()) - 900}, "expired"),
    "no-jti": ({"jti": None}, "'jti'"),
    "no-iat": ({"iat": None}, "'iat'"),
    "jku-elsewhere": ({"header": {"jku": "http://127.0.0.1:9/jwks"}}, "jku"),
    "jku-with-userinfo": ({"header": {"jku": "http://user@127.0.0.1/jwks"}}, "jku"),
    "no-kid": ({"header": {"kid": None}}, "kid"),
}


@pytest.mark.parametrize("case", sorted(BAD))
async def test_bad_jwt_is_401(case: str, api: httpx.AsyncClient,
                              token_server: SmartTestServer) -> None:
    kwargs, hint = BAD[case]
    token = mint_cds_jwt(token_server, SERVICE, **kwargs)
    body = assert_problem(await api.post(URL, json=_body(), headers=_bearer(token)), 401)
    assert hint in body["detail"], body


async def test_key_not_in_the_jwk_set_is_401(api: httpx.AsyncClient,
                                             token_server: SmartTestServer) -> None:
    stranger = RSAKey.generate_key(2048, auto_kid=True)
    token = mint_cds_jwt(token_server, SERVICE, key=stranger)
    body = assert_problem(await api.post(URL, json=_body(), headers=_bearer(token)), 401)
    assert "signature" in body["detail"]


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer forged"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
    ids=["none", "garbage", "basic"])
async def test_missing_or_garbage_is_401(api: httpx.AsyncClient,
                                         headers: dict[str, str]) -> None:
    resp = await api.post(URL, json=_body(), headers=headers)
    assert_problem(resp, 401)
    assert resp.headers["www-authenticate"].startswith("Bearer")


async def test_symmetric_algorithm_is_401(api: httpx.AsyncClient,
                                          token_server: SmartTestServer) -> None:
    resp = await api.post(URL, json=_body(), headers=_bearer(_unsigned_hs256(token_server)))
    assert "asymmetric" in assert_problem(resp, 401)["detail"]


async def test_replayed_jti_is_401(api: httpx.AsyncClient,
                                   token_server: SmartTestServer) -> None:
    token = mint_cds_jwt(token_server, SERVICE)
    assert (await api.post(URL, json=_body(), headers=_bearer(token))).status_code == 200
    resp = await api.post(URL, json=_body(), headers=_bearer(token))
    assert "replayed" in assert_problem(resp, 401)["detail"]


async def test_feedback_needs_a_jwt_for_its_own_url(api: httpx.AsyncClient,
                                                    token_server: SmartTestServer) -> None:
    body = {"feedback": [{"card": "c", "outcome": "overridden",
                          "outcomeTimestamp": "2026-11-27T00:00:00Z"}]}
    ok = mint_cds_jwt(token_server, SERVICE, aud=f"http://testserver{URL}/feedback")
    assert (await api.post(f"{URL}/feedback", json=body, headers=_bearer(ok))).status_code == 200
    other = mint_cds_jwt(token_server, SERVICE,
                         aud="http://testserver/cds-services/ketamine-order-select")
    assert_problem(await api.post(f"{URL}/feedback", json=body, headers=_bearer(other)), 401)
    assert_problem(await api.post(f"{URL}/feedback", json=body), 401)
