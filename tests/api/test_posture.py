"""Production posture (issue 16): no CDN-loaded docs, the schema off in production, a CSP with
default-src and explicit script and style sources, HSTS behind https, demo mode and unkeyed
session state refused in production, a Redis outage answered 503 with Retry-After, and every
error response (a 500 included) with the request id and the security headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from service import errors
from service.config import Settings
from service.config_report import production_problems
from service.errors import ConfigError
from service.main import create_app
from tests.api.conftest import APP_ORIGIN, assert_problem
from tests.cds.conftest import cds_auth  # noqa: F401 - a fixture

SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy",
                    "cache-control")
KEY = Fernet.generate_key().decode()


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                             base_url=APP_ORIGIN)


def _production(**changes: Any) -> Settings:
    """Settings production takes (https everywhere, real secrets, a session key), changed."""
    values: dict[str, Any] = {
        "environment": "production", "base_url": "https://ketamine.clinic.example",
        "redirect_uri": "https://ketamine.clinic.example/callback",
        "allowed_issuers": ["https://ehr.clinic.example/fhir"],
        "client_secret": "a-real-secret-of-some-length",
        "log_pseudonym_key": "3b9f0c1e6a7d4e2f8a5b0c9d1e2f3a4b", "session_keys": [KEY],
        "canonical_base": "https://screening.clinic-zurich.ch/fhir", **changes}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_no_docs_pages_they_load_scripts_from_a_cdn(settings: Settings, path: str) -> None:
    async with _client(create_app(settings)) as client:
        assert (await client.get(path)).status_code == 404


async def test_the_schema_is_not_served_in_production(
        make_settings: Callable[..., Settings]) -> None:
    async with _client(create_app(_production())) as client:
        assert (await client.get("/openapi.json")).status_code == 404
    async with _client(create_app(make_settings())) as client:
        assert (await client.get("/openapi.json")).status_code == 200


async def test_the_csp_has_default_src_and_explicit_sources(settings: Settings) -> None:
    async with _client(create_app(settings)) as client:
        for resp in (await client.get("/app"), await client.get("/healthz")):
            csp = dict(part.strip().split(" ", 1) for part in
                       resp.headers["content-security-policy"].split(";"))
            assert csp["default-src"] == "'self'"
            assert csp["script-src"] == "'self'"
            assert csp["style-src"].startswith("'self'") and "unsafe" not in csp["style-src"]
            assert csp["object-src"] == "'none'" and "frame-ancestors" in csp


async def test_hsts_when_the_service_is_on_https(make_settings: Callable[..., Settings]) -> None:
    async with _client(create_app(make_settings(base_url="https://ketamine.example"))) as c:
        assert (await c.get("/healthz")).headers["strict-transport-security"] == \
            "max-age=31536000"
    async with _client(create_app(make_settings())) as c:
        assert "strict-transport-security" not in (await c.get("/healthz")).headers


@pytest.mark.parametrize(("changes", "problem"), [
    ({"demo": True}, "KETAMINE_DEMO is on"),
    ({"session_keys": []}, "KETAMINE_SESSION_KEYS is unset"),
], ids=["demo", "no-session-key"])
def test_production_refuses(changes: dict[str, Any], problem: str) -> None:
    """Issue 16: demo mode (an unauthenticated launcher over demo patients) started in
    production; tokens at rest need a key every replica shares."""
    assert production_problems(_production()) == []
    settings = _production(**changes)
    problems = production_problems(settings)
    assert len(problems) == 1 and problems[0].startswith(problem)
    with pytest.raises(ConfigError, match=problem):
        create_app(settings)


def test_a_session_key_must_be_a_fernet_key(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ValueError, match="Fernet key"):
        make_settings(session_keys=["not-a-key"])


async def test_a_redis_outage_is_503_with_retry_after(
        make_settings: Callable[..., Settings],
        cds_auth: Any) -> None:  # noqa: F811 - the imported fixture
    """Issue 16: Redis down gave 500."""
    app = create_app(make_settings(redis_url="redis://127.0.0.1:1/0", cookie_secure=False))
    async with _client(app) as client:
        client.cookies.set("ketamine-sid", "A" * 43)
        page = await client.get("/app", params={"ctx": "c"})
        cds = await client.post("/cds-services/ketamine-order-sign", json={
            "hook": "order-sign", "hookInstance": "h", "context": {
                "patientId": "p", "draftOrders": {"resourceType": "Bundle"}}},
            headers=cds_auth())
        html = await client.get("/app", params={"ctx": "c"}, headers={"Accept": "text/html"})
    for resp in (page, cds):
        body = assert_problem(resp, 503)
        assert body["type"].endswith(":store-unavailable")
        assert resp.headers["retry-after"] == str(errors.RETRY_AFTER_SECONDS)
    assert html.status_code == 503 and "try again" in html.text
    assert html.headers["retry-after"] == str(errors.RETRY_AFTER_SECONDS)


async def test_a_500_carries_the_request_id_and_the_security_headers(
        settings: Settings) -> None:
    """Issue 16: 500 responses lacked the request id and the security headers."""
    app = create_app(settings)

    async def fails() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/api/v1/fails", fails)
    async with _client(app) as client:
        resp = await client.get("/api/v1/fails", headers={"X-Request-ID": "req-12345678"})
    body = assert_problem(resp, 500)
    assert body["request_id"] == "req-12345678" and "a bug" not in resp.text
    for header in SECURITY_HEADERS:
        assert header in resp.headers, header


async def test_every_refusal_carries_them_too(settings: Settings) -> None:
    async with _client(create_app(settings)) as client:
        answers = [await client.get("/api/v1/whoami"),
                   await client.post("/api/v1/screenings", content=b"x" * 100_000,
                                     headers={"Content-Type": "application/json"}),
                   await client.get("/no-such-page"),
                   await client.get("/api/v1/whoami", params={"access_token": "t"})]
    assert [r.status_code for r in answers] == [401, 413, 404, 400]
    for resp in answers:
        assert resp.headers["x-request-id"]
        for header in SECURITY_HEADERS:
            assert header in resp.headers, (resp.status_code, header)
