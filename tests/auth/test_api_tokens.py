"""Bearer JWTs on the REST API: each bad token gets 401 (or 403 for scope) as problem+json."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from service.config import Settings
from service.main import create_app
from tests.auth.smart_server import SmartTestServer

WHOAMI = "/api/v1/whoami"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_problem(resp: httpx.Response, status: int, error: str | None) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    challenge = resp.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    if error:
        assert f'error="{error}"' in challenge
    else:
        assert "error=" not in challenge


async def test_valid_token(app_client: httpx.AsyncClient, smart_server: SmartTestServer) -> None:
    token = smart_server.mint_api_token(sub="svc-1", client_id="batch",
                                        scope="ketamine.screen ketamine.write")
    resp = await app_client.get(WHOAMI, headers=_bearer(token))
    assert resp.status_code == 200
    assert resp.json() == {"subject": "svc-1", "client_id": "batch",
                           "scopes": ["ketamine.screen", "ketamine.write"]}


async def test_no_token(app_client: httpx.AsyncClient) -> None:
    _assert_problem(await app_client.get(WHOAMI), 401, None)


@pytest.mark.parametrize("case", ["expired", "not-yet-valid", "wrong-audience", "wrong-issuer",
                                  "unknown-key", "hmac-with-public-key", "garbage", "basic"])
async def test_bad_tokens_are_401(case: str, app_client: httpx.AsyncClient,
                                  smart_server: SmartTestServer) -> None:
    mint = smart_server.mint_api_token
    headers = {
        "expired": lambda: _bearer(mint(expires_in=-120)),
        "not-yet-valid": lambda: _bearer(mint(nbf=int(time.time()) + 600)),
        "wrong-audience": lambda: _bearer(mint(aud="some-other-api")),
        "wrong-issuer": lambda: _bearer(mint(iss="https://evil.example")),
        "unknown-key": lambda: _bearer(mint(key=RSAKey.generate_key(2048, auto_kid=True))),
        "hmac-with-public-key": lambda: _bearer(_hmac_token(smart_server)),
        "garbage": lambda: _bearer("not.a.jwt"),
        "basic": lambda: {"Authorization": "Basic dXNlcjpwYXNz"},
    }[case]()
    _assert_problem(await app_client.get(WHOAMI, headers=headers), 401, "invalid_token")


def _hmac_token(server: SmartTestServer) -> str:
    """Algorithm confusion: HS256 keyed with the issuer's public key."""
    public_pem = server.api_key.as_pem(private=False)
    claims = jwt.decode(server.mint_api_token(), server.api_key).claims
    header = {"alg": "HS256", "typ": "JWT", "kid": server.api_key.kid}
    # Built by hand: joserfc itself refuses to use a public key as an HMAC secret.
    signing_input = f"{_b64(json.dumps(header))}.{_b64(json.dumps(claims))}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


async def test_missing_scope_is_403(app_client: httpx.AsyncClient,
                                    smart_server: SmartTestServer) -> None:
    token = smart_server.mint_api_token(scope="ketamine.write")
    resp = await app_client.get(WHOAMI, headers=_bearer(token))
    _assert_problem(resp, 403, "insufficient_scope")
    assert 'scope="ketamine.screen"' in resp.headers["www-authenticate"]


async def test_scp_list_claim(app_client: httpx.AsyncClient,
                              smart_server: SmartTestServer) -> None:
    token = smart_server.mint_api_token(scope=None, scp=["ketamine.screen"])
    assert (await app_client.get(WHOAMI, headers=_bearer(token))).status_code == 200


async def test_token_in_query_is_refused_and_not_echoed(app_client: httpx.AsyncClient,
                                                        smart_server: SmartTestServer) -> None:
    token = smart_server.mint_api_token()
    resp = await app_client.get(WHOAMI, params={"access_token": token})
    assert resp.status_code == 400
    assert token not in resp.text


async def test_unconfigured_api_refuses_everything(make_settings: Callable[..., Settings],
                                                   smart_server: SmartTestServer) -> None:
    app = create_app(make_settings(api_jwks_url=None))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        resp = await client.get(WHOAMI, headers=_bearer(smart_server.mint_api_token()))
    _assert_problem(resp, 401, "invalid_token")


async def test_key_rotation_refetches_jwks_once(app_client: httpx.AsyncClient,
                                                smart_server: SmartTestServer) -> None:
    assert (await app_client.get(WHOAMI, headers=_bearer(
        smart_server.mint_api_token()))).status_code == 200
    old = smart_server.api_key
    smart_server.api_key = RSAKey.generate_key(2048, auto_kid=True)
    try:
        resp = await app_client.get(WHOAMI, headers=_bearer(smart_server.mint_api_token()))
    finally:
        smart_server.api_key = old
    assert resp.status_code == 200
