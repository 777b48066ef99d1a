"""Fixtures for the auth tests: the SMART test server, keys, settings and the app under test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey, KeySet, RSAKey

from service.config import Settings
from service.main import create_app
from tests.auth.smart_server import Client, SmartTestServer

# The test servers speak plain HTTP on 127.0.0.1; authlib's server side insists on TLS otherwise.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

CLIENT_ID = "ketamine-screen"
CLIENT_SECRET = "test-only-client-secret"
APP_ORIGIN = "http://testserver"


@pytest.fixture(scope="session")
def client_rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048)


@pytest.fixture(scope="session")
def client_ec_key() -> ECKey:
    return ECKey.generate_key("P-384")


@pytest.fixture(scope="session")
def key_files(tmp_path_factory: pytest.TempPathFactory, client_rsa_key: RSAKey,
              client_ec_key: ECKey) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    files = {"RS384": folder / "client-rs384.pem", "ES384": folder / "client-es384.pem"}
    files["RS384"].write_bytes(client_rsa_key.as_pem(private=True))
    files["ES384"].write_bytes(client_ec_key.as_pem(private=True))
    return files


def register_client(server: SmartTestServer, rsa: RSAKey, ec: ECKey,
                    redirect_uris: list[str]) -> None:
    public = KeySet([RSAKey.import_key(rsa.as_dict(private=False)),
                     ECKey.import_key(ec.as_dict(private=False))])
    server.register_client(Client(CLIENT_ID, redirect_uris, secret=CLIENT_SECRET, jwks=public))


@pytest.fixture(scope="session")
def smart_server(client_rsa_key: RSAKey, client_ec_key: ECKey) -> Iterator[SmartTestServer]:
    """The authorization server without a FHIR upstream (FHIR reads answer 404)."""
    server = SmartTestServer().start()
    register_client(server, client_rsa_key, client_ec_key, [f"{APP_ORIGIN}/callback"])
    yield server
    server.stop()


@pytest.fixture
def make_settings(smart_server: SmartTestServer) -> Callable[..., Settings]:
    def build(server: SmartTestServer | None = None, **overrides: Any) -> Settings:
        server = server or smart_server
        values: dict[str, Any] = {
            "environment": "test",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "allowed_issuers": [server.fhir_base],
            "redirect_uri": f"{APP_ORIGIN}/callback",
            "cookie_secure": False,
            "frame_ancestors": ["'self'", "https://ehr.example.org"],
            "api_issuer": f"{server.base_url}/api",
            "api_audience": "ketamine-api",
            "api_jwks_url": f"{server.base_url}/api/jwks",
            **overrides,
        }
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The service in-process (ASGI); its own outbound calls go to the real test server."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=APP_ORIGIN) as client:
        yield client


@pytest.fixture
async def browser_http() -> AsyncIterator[httpx.AsyncClient]:
    """Plays the browser's part at the authorization server (no cookies shared with the app)."""
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def patient_id() -> str:
    return f"auth-{uuid.uuid4().hex[:12]}"
