"""A session that lasts the visit (issue 14): the launch asks for a refresh token, and the app
renews the access token when it is about to expire, or when the EHR answers 401 because it already
has. "Hours later" is the EHR expiring its tokens and the stored session saying when it was issued:
no test sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from service.api.services import services_of
from service.auth.session import session_key
from service.config import Settings
from service.main import create_app
from tests.auth.conftest import APP_ORIGIN
from tests.auth.flow import authorize, callback, query
from tests.auth.smart_server import SmartTestServer

TWO_AND_A_HALF_HOURS = 2.5 * 3600


async def _launch(client: httpx.AsyncClient, browser: httpx.AsyncClient,
                  server: SmartTestServer, patient: str) -> tuple[str, str, dict[str, str]]:
    """A completed EHR launch: the page URL, the session's store key, the authorize query."""
    cb, asked = await authorize(client, browser, "/launch",
                                {"iss": server.fhir_base, "launch": server.new_launch(patient)})
    done = await callback(client, cb)
    assert done.status_code == 303, done.text
    key = session_key(client.cookies["ketamine-sid"], query(done.headers["location"])["ctx"])
    return done.headers["location"], key, asked


def _store(client: httpx.AsyncClient) -> object:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    return services_of(transport.app).store  # type: ignore[arg-type]


async def _issued_hours_ago(client: httpx.AsyncClient, key: str) -> dict[str, object]:
    store = _store(client)
    stored = await store.get(key)  # type: ignore[attr-defined]
    issued = time.time() - TWO_AND_A_HALF_HOURS
    stored.update(issued_at=issued, expires_at=issued + 300)
    await store.put(key, stored, 8 * 3600)  # type: ignore[attr-defined]
    return dict(stored)


async def test_the_launch_asks_for_online_access_and_gets_a_refresh_token(
        app_client: httpx.AsyncClient, browser_http: httpx.AsyncClient,
        smart_server: SmartTestServer) -> None:
    _, key, asked = await _launch(app_client, browser_http, smart_server, "visit-online")
    scopes = asked["scope"].split()
    assert "online_access" in scopes and "offline_access" not in scopes
    stored = await _store(app_client).get(key)  # type: ignore[attr-defined]
    assert stored["refresh_token"]


async def test_offline_access_when_the_clinic_configures_it(
        make_settings: Callable[..., Settings], browser_http: httpx.AsyncClient,
        smart_server: SmartTestServer) -> None:
    app = create_app(make_settings(offline_access=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=APP_ORIGIN) as client:
        _, _, asked = await _launch(client, browser_http, smart_server, "visit-offline")
    scopes = asked["scope"].split()
    assert "offline_access" in scopes and "online_access" not in scopes


async def test_two_and_a_half_hours_after_launch_the_token_is_renewed(
        app_client: httpx.AsyncClient, browser_http: httpx.AsyncClient,
        smart_server: SmartTestServer) -> None:
    page_url, key, _ = await _launch(app_client, browser_http, smart_server, "visit-later")
    old = await _issued_hours_ago(app_client, key)
    smart_server.expire_access_tokens()
    assert smart_server.valid_access_token(f"Bearer {old['access_token']}") is None
    page = await app_client.get(page_url, headers={"Accept": "text/html"})
    # 502: this test EHR has no FHIR data behind it; the point is the patient read was tried
    assert page.status_code == 502 and "visit-later" in page.text
    assert smart_server.state.token_requests[-1]["grant_type"] == "refresh_token"
    renewed = await _store(app_client).get(key)  # type: ignore[attr-defined]
    assert renewed["access_token"] != old["access_token"]
    assert smart_server.valid_access_token(f"Bearer {renewed['access_token']}") is not None
    assert renewed["patient"] == "visit-later"


async def test_a_401_from_the_ehr_renews_the_token_and_retries(
        app_client: httpx.AsyncClient, browser_http: httpx.AsyncClient,
        smart_server: SmartTestServer) -> None:
    """The EHR ended the token before the expiry it announced: the request is retried once."""
    page_url, key, _ = await _launch(app_client, browser_http, smart_server, "visit-revoked")
    old = await _store(app_client).get(key)  # type: ignore[attr-defined]
    smart_server.expire_access_tokens()
    mark = len(smart_server.state.fhir_requests)
    page = await app_client.get(page_url, headers={"Accept": "text/html"})
    assert page.status_code == 502
    tried = [ok for _, path, ok in smart_server.state.fhir_requests[mark:]
             if path == "Patient/visit-revoked"]
    assert tried == [False, True]  # refused with the old token, accepted with the new one
    renewed = await _store(app_client).get(key)  # type: ignore[attr-defined]
    assert renewed["access_token"] != old["access_token"]


async def test_a_refused_refresh_says_to_launch_again(
        app_client: httpx.AsyncClient, browser_http: httpx.AsyncClient,
        smart_server: SmartTestServer) -> None:
    page_url, key, _ = await _launch(app_client, browser_http, smart_server, "visit-refused")
    await _issued_hours_ago(app_client, key)
    smart_server.expire_access_tokens()
    smart_server.state.refuse_refresh = True
    try:
        page = await app_client.get(page_url, headers={"Accept": "text/html"})
    finally:
        smart_server.state.refuse_refresh = False
    assert page.status_code == 401
    assert "refused to refresh the token (invalid_grant)" in page.text
    assert "launch" in page.text.lower()
