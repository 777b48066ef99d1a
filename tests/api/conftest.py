"""Fixtures for the REST API tests: a token issuer (the auth tests' SMART test server, whose
``/api/jwks`` signs API tokens), settings, and the app in-process over ASGI."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from service.config import Settings
from service.main import create_app
from tests.auth.smart_server import SmartTestServer

os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

APP_ORIGIN = "http://testserver"
UNREACHABLE_FHIR = "http://127.0.0.1:9/fhir"
"""Nothing listens on the discard port: connections are refused at once."""
BOTH_SCOPES = "ketamine.screen ketamine.write"


@pytest.fixture(scope="session")
def token_server() -> Iterator[SmartTestServer]:
    server = SmartTestServer().start()
    yield server
    server.stop()


def build_settings(server: SmartTestServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "base_url": APP_ORIGIN,
        "allowed_issuers": [UNREACHABLE_FHIR],
        "api_issuer": f"{server.base_url}/api",
        "api_audience": "ketamine-api",
        "api_jwks_url": f"{server.base_url}/api/jwks",
        "cds_allowed_issuers": [server.base_url],
        "cds_jwks_urls": {server.base_url: f"{server.base_url}/jwks"},
        "fhir_max_retries": 0,
        "fhir_timeout_seconds": 5,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def make_settings(token_server: SmartTestServer) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return build_settings(token_server, **overrides)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=APP_ORIGIN, timeout=60) as client:
        yield client


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The service in-process; its outbound calls are real."""
    async for client in _client(settings):
        yield client


@pytest.fixture
def auth(token_server: SmartTestServer) -> Callable[..., dict[str, str]]:
    """``auth()`` -> headers with a fresh API token (scope ketamine.screen unless told)."""

    def headers(scope: str = "ketamine.screen", **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_server.mint_api_token(scope=scope, **claims)}"}

    return headers


def assert_problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:ketamine-screen:problem:")
    assert body["title"] and body["detail"]
    assert body["request_id"] == resp.headers["x-request-id"]
    return body


async def seed(base_url: str, resources: list[dict[str, Any]]) -> None:
    """PUT resources with their own ids in one transaction (loading twice changes nothing)."""
    ordered = sorted(resources, key=lambda r: r["resourceType"] not in ("Patient", "Medication",
                                                                       "Practitioner"))
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}", "resource": r,
         "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in ordered]}
    async with httpx.AsyncClient(timeout=120) as http:
        resp = await http.post(base_url, json=bundle,
                               headers={"Content-Type": "application/fhir+json"})
    assert resp.status_code == 200, resp.text[:2000]
