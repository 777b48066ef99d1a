"""SMART EHR and standalone launch against the authlib test server (no FHIR upstream needed)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from service.api.services import services_of
from service.config import Settings
from service.main import create_app
from tests.auth.conftest import APP_ORIGIN, CLIENT_ID
from tests.auth.flow import authorize, callback, query
from tests.auth.smart_server import SmartTestServer

V2_SCOPES = {"patient/Patient.r", "patient/Condition.s", "patient/MedicationStatement.s",
             "patient/MedicationRequest.s", "patient/AllergyIntolerance.s",
             "patient/Observation.cs", "patient/Medication.rs", "patient/DetectedIssue.c",
             "patient/Provenance.c"}


_SERVER_LOGGERS = ("authlib.oauth2.rfc6749.grants", "authlib.oidc")


def _store(client: httpx.AsyncClient):  # type: ignore[no-untyped-def]
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    return services_of(transport.app).store  # type: ignore[arg-type]


async def test_ehr_launch_end_to_end(app_client: httpx.AsyncClient,
                                     browser_http: httpx.AsyncClient,
                                     smart_server: SmartTestServer,
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    launch = smart_server.new_launch("patient-ehr-1")
    cb, sent = await authorize(app_client, browser_http, "/launch",
                               {"iss": smart_server.fhir_base, "launch": launch})
    # The authorization request SMART asks for.
    assert sent["response_type"] == "code"
    assert sent["client_id"] == CLIENT_ID
    assert sent["redirect_uri"] == f"{APP_ORIGIN}/callback"
    assert sent["launch"] == launch
    assert sent["aud"] == smart_server.fhir_base
    assert sent["code_challenge_method"] == "S256"
    assert len(sent["code_challenge"]) == 43
    assert len(sent["state"]) >= 32 and sent["nonce"]
    scopes = set(sent["scope"].split())
    assert {"launch", "openid", "fhirUser"} | V2_SCOPES <= scopes
    assert "launch/patient" not in scopes
    # PKCE verifier is never in the front channel.
    assert "code_verifier" not in sent

    done = await callback(app_client, cb)
    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith("/app?ctx=")
    token_request = smart_server.state.token_requests[-1]
    assert token_request["grant_type"] == "authorization_code"
    assert len(token_request["code_verifier"]) >= 43
    assert "client_secret" not in token_request  # client_secret_basic: in the header only

    page = await app_client.get(done.headers["location"], headers={"Accept": "text/html"})
    # Authenticated: the page renders for the launch's patient (502 only because this test server
    # has no FHIR upstream; the HAPI-backed version is in test_integration.py).
    assert page.status_code == 502
    assert "patient-ehr-1" in page.text
    assert "frame-ancestors 'self' https://ehr.example.org" in page.headers[
        "content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    # The FHIR read went through the proxy with our bearer token.
    assert any(ok for _, _, ok in smart_server.state.fhir_requests)
    # No token reached the browser or a log line.
    tokens = list(smart_server.state.access_tokens) + list(smart_server.state.refresh_tokens)
    seen = page.text + str(page.headers) + str(done.headers)
    assert not [t for t in tokens if t in seen]
    # The test server's own authlib grant code logs what it issues at DEBUG; everything else
    # (our service, authlib's client side, httpx) must not.
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith(_SERVER_LOGGERS)]
    assert not [t for t in tokens for line in ours if t in line]


async def test_session_cookie_attributes(make_settings: Callable[..., Settings],
                                         smart_server: SmartTestServer) -> None:
    app = create_app(make_settings(cookie_secure=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="https://testserver") as client:
        resp = await client.get("/launch", params={"iss": smart_server.fhir_base,
                                                   "launch": smart_server.new_launch()})
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith("__Host-ketamine-sid=")
    for attribute in ("HttpOnly", "Secure", "SameSite=none", "Partitioned", "Path=/"):
        assert attribute.lower() in cookie.lower()
    assert "domain" not in cookie.lower()


async def test_standalone_launch(app_client: httpx.AsyncClient, browser_http: httpx.AsyncClient,
                                 smart_server: SmartTestServer) -> None:
    cb, sent = await authorize(app_client, browser_http, "/launch/standalone",
                               {"iss": smart_server.fhir_base + "/"})
    scopes = sent["scope"].split()
    assert "launch/patient" in scopes and "launch" not in scopes
    assert "launch" not in sent
    done = await callback(app_client, cb)
    assert done.status_code == 303
    page = await app_client.get(done.headers["location"], headers={"Accept": "text/html"})
    assert page.status_code == 502 and smart_server.state.patient in page.text


async def test_v1_scopes_when_server_is_v1_only(app_client: httpx.AsyncClient,
                                                smart_server: SmartTestServer) -> None:
    smart_server.state.scopes_v1_only = True
    try:
        resp = await app_client.get("/launch", params={"iss": smart_server.fhir_base,
                                                       "launch": smart_server.new_launch()})
    finally:
        smart_server.state.scopes_v1_only = False
    scopes = set(query(resp.headers["location"])["scope"].split())
    assert {"patient/Condition.read", "patient/Observation.read", "patient/Observation.write",
            "patient/DetectedIssue.write", "patient/Provenance.write"} <= scopes
    assert not [s for s in scopes if s.endswith((".rs", ".c"))]


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
async def test_private_key_jwt_launch(alg: str, make_settings: Callable[..., Settings],
                                      key_files: dict[str, Path], browser_http: httpx.AsyncClient,
                                      smart_server: SmartTestServer) -> None:
    settings = make_settings(client_secret=None, private_key_file=key_files[alg],
                             private_key_alg=alg)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings)),
                                 base_url=APP_ORIGIN) as app:
        cb, _ = await authorize(app, browser_http, "/launch",
                                {"iss": smart_server.fhir_base,
                                 "launch": smart_server.new_launch()})
        done = await callback(app, cb)
        assert done.status_code == 303, done.text
    form = smart_server.state.token_requests[-1]
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    # The server verified the signature; here only the header and claims are inspected.
    header, claims = _unverified(form["client_assertion"])
    assert header["alg"] == alg and header["kid"]
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == f"{smart_server.base_url}/token"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["jti"]


def _unverified(token: str) -> tuple[dict[str, object], dict[str, object]]:
    import base64
    import json

    head, body, _ = token.split(".")
    pad = lambda part: base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))  # noqa: E731
    return json.loads(pad(head)), json.loads(pad(body))
