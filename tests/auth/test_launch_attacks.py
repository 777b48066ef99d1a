"""Attacks on the launch flow, each with the answer the service must give."""

from __future__ import annotations

import time

import httpx

from service.api.services import AppServices, services_of
from service.auth.session import session_key
from tests.auth.flow import authorize, callback, query
from tests.auth.smart_server import SmartTestServer


def _app_state(client: httpx.AsyncClient) -> AppServices:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    return services_of(transport.app)  # type: ignore[arg-type]


async def test_foreign_issuer_is_refused_without_fetching(app_client: httpx.AsyncClient,
                                                          smart_server: SmartTestServer) -> None:
    before = len(smart_server.state.fhir_requests)
    resp = await app_client.get("/launch", params={"iss": "https://evil.example/fhir",
                                                   "launch": "x"})
    assert resp.status_code == 400
    assert "not one this app is configured to trust" in resp.text
    assert len(smart_server.state.fhir_requests) == before
    missing = await app_client.get("/launch/standalone")
    assert missing.status_code == 400


async def test_ehr_launch_without_launch_parameter(app_client: httpx.AsyncClient,
                                                   smart_server: SmartTestServer) -> None:
    resp = await app_client.get("/launch", params={"iss": smart_server.fhir_base})
    assert resp.status_code == 400
    assert "'launch'" in resp.text


async def test_replayed_state_is_refused(app_client: httpx.AsyncClient,
                                         browser_http: httpx.AsyncClient,
                                         smart_server: SmartTestServer) -> None:
    cb, _ = await authorize(app_client, browser_http, "/launch",
                            {"iss": smart_server.fhir_base, "launch": smart_server.new_launch()})
    assert (await callback(app_client, cb)).status_code == 303
    replay = await callback(app_client, cb)
    assert replay.status_code == 400
    assert "already used" in replay.text


async def test_state_from_another_browser_is_refused(app_client: httpx.AsyncClient,
                                                     browser_http: httpx.AsyncClient,
                                                     smart_server: SmartTestServer) -> None:
    cb, _ = await authorize(app_client, browser_http, "/launch",
                            {"iss": smart_server.fhir_base, "launch": smart_server.new_launch()})
    app_client.cookies.clear()  # the callback arrives in a browser that did not start the launch
    resp = await callback(app_client, cb)
    assert resp.status_code == 400
    assert "another browser session" in resp.text


async def test_unknown_state_is_refused(app_client: httpx.AsyncClient) -> None:
    resp = await app_client.get("/callback", params={"state": "forged", "code": "abc"})
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/problem+json")


async def test_expired_state_is_refused(app_client: httpx.AsyncClient,
                                        browser_http: httpx.AsyncClient,
                                        smart_server: SmartTestServer) -> None:
    cb, sent = await authorize(app_client, browser_http, "/launch",
                               {"iss": smart_server.fhir_base,
                                "launch": smart_server.new_launch()})
    store = _app_state(app_client).store
    key = f"launch:{sent['state']}"
    pending = await store.get(key)
    await store.put(key, pending, 0)  # what ten minutes of waiting does
    resp = await callback(app_client, cb)
    assert resp.status_code == 400


async def test_wrong_pkce_verifier_fails_the_exchange(app_client: httpx.AsyncClient,
                                                      browser_http: httpx.AsyncClient,
                                                      smart_server: SmartTestServer) -> None:
    cb, sent = await authorize(app_client, browser_http, "/launch",
                               {"iss": smart_server.fhir_base,
                                "launch": smart_server.new_launch()})
    store = _app_state(app_client).store
    key = f"launch:{sent['state']}"
    pending = await store.get(key)
    pending["verifier"] = "x" * 64  # e.g. a code stolen from another launch
    await store.put(key, pending, 60)
    resp = await callback(app_client, cb, )
    assert resp.status_code == 400
    assert "invalid_grant" in resp.text
    assert smart_server.state.token_requests[-1]["code_verifier"] == "x" * 64


async def test_authorization_denied_by_the_ehr(app_client: httpx.AsyncClient) -> None:
    resp = await app_client.get("/callback", params={"error": "access_denied", "state": "s"},
                                headers={"Accept": "text/html"})
    assert resp.status_code == 400
    assert "access_denied" in resp.text
    assert "frame-ancestors" in resp.headers["content-security-policy"]


async def test_each_launch_has_fresh_state_and_verifier(app_client: httpx.AsyncClient,
                                                        smart_server: SmartTestServer) -> None:
    seen: set[str] = set()
    for _ in range(3):
        resp = await app_client.get("/launch", params={"iss": smart_server.fhir_base,
                                                       "launch": smart_server.new_launch()})
        params = query(resp.headers["location"])
        seen |= {params["state"], params["code_challenge"], params["nonce"]}
    assert len(seen) == 9


async def test_token_in_url_is_refused(app_client: httpx.AsyncClient) -> None:
    resp = await app_client.get("/api/v1/whoami", params={"access_token": "abc"})
    assert resp.status_code == 400
    assert resp.headers["content-type"] == "application/problem+json"
    assert 'error="invalid_request"' in resp.headers["www-authenticate"]


async def test_app_without_session_is_refused(app_client: httpx.AsyncClient) -> None:
    resp = await app_client.get("/app", params={"ctx": "guessed"})
    assert resp.status_code == 401
    page = await app_client.get("/app", headers={"Accept": "text/html"})
    assert page.status_code == 401 and "launch the app again" in page.text.lower()


async def test_refresh_before_expiry(app_client: httpx.AsyncClient,
                                     browser_http: httpx.AsyncClient,
                                     smart_server: SmartTestServer) -> None:
    cb, _ = await authorize(app_client, browser_http, "/launch",
                            {"iss": smart_server.fhir_base,
                             "launch": smart_server.new_launch("patient-refresh")})
    done = await callback(app_client, cb)
    handle = query(done.headers["location"])["ctx"]
    key = session_key(app_client.cookies["ketamine-sid"], handle)
    store = _app_state(app_client).store
    stored = await store.get(key)
    old_token = stored["access_token"]
    stored.update(issued_at=time.time() - 280, expires_at=time.time() + 20)  # 20 s of 300 left
    await store.put(key, stored, 600)

    page = await app_client.get(done.headers["location"], headers={"Accept": "text/html"})
    assert page.status_code == 502 and "patient-refresh" in page.text  # 502: no FHIR
    grants = [r["grant_type"] for r in smart_server.state.token_requests[-2:]]
    assert grants == ["authorization_code", "refresh_token"]
    refreshed = await store.get(key)
    assert refreshed["access_token"] != old_token
    assert refreshed["patient"] == "patient-refresh"  # context survives the refresh
    assert smart_server.valid_access_token(f"Bearer {refreshed['access_token']}")


async def test_expired_session_without_refresh_token(app_client: httpx.AsyncClient,
                                                     browser_http: httpx.AsyncClient,
                                                     smart_server: SmartTestServer) -> None:
    cb, _ = await authorize(app_client, browser_http, "/launch",
                            {"iss": smart_server.fhir_base, "launch": smart_server.new_launch()})
    done = await callback(app_client, cb)
    key = session_key(app_client.cookies["ketamine-sid"], query(done.headers["location"])["ctx"])
    store = _app_state(app_client).store
    stored = await store.get(key)
    stored.update(expires_at=time.time() - 1, refresh_token=None)
    await store.put(key, stored, 600)
    resp = await app_client.get(done.headers["location"])
    assert resp.status_code == 401


async def test_a_token_response_patient_that_is_no_id_is_a_launch_error(
        app_client: httpx.AsyncClient, browser_http: httpx.AsyncClient,
        smart_server: SmartTestServer) -> None:
    """Issue 16: ``patient: "../../admin/secret?x="`` sent the clinician's token outside the FHIR
    base. It is a clear launch error, and nothing is requested with it."""
    cb, _ = await authorize(app_client, browser_http, "/launch",
                            {"iss": smart_server.fhir_base,
                             "launch": smart_server.new_launch("../../admin/secret?x=")})
    before = len(smart_server.state.paths)
    resp = await callback(app_client, cb)
    assert resp.status_code == 400
    assert "patient that is not a FHIR id" in resp.text
    assert smart_server.state.paths[before:] == ["/token", "/jwks"]  # the exchange, the id_token
    assert not any("admin" in path for path in smart_server.state.paths)


async def test_a_launch_without_the_id_token_asked_for_is_refused(
        app_client: httpx.AsyncClient, browser_http: httpx.AsyncClient,
        smart_server: SmartTestServer) -> None:
    """Issue 16: a launch completed without an id_token although openid fhirUser was asked."""
    cb, sent = await authorize(app_client, browser_http, "/launch",
                               {"iss": smart_server.fhir_base,
                                "launch": smart_server.new_launch()})
    assert "openid" in sent["scope"].split()
    smart_server.state.issue_id_token = False
    try:
        resp = await callback(app_client, cb)
    finally:
        smart_server.state.issue_id_token = True
    assert resp.status_code == 400
    assert "no id_token" in resp.text
