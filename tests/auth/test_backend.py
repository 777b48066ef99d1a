"""SMART Backend Services: client_credentials + private_key_jwt, cached token, httpx.Auth."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from service.auth.backend import BackendServicesAuth
from service.config import Settings
from service.errors import LaunchError, TokenError
from tests.auth.smart_server import SmartTestServer


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
async def test_token_is_fetched_once_and_sent(alg: str, make_settings: Callable[..., Settings],
                                              key_files: dict[str, Path],
                                              smart_server: SmartTestServer) -> None:
    settings = make_settings(client_secret=None, private_key_file=key_files[alg],
                             private_key_alg=alg)
    auth = await BackendServicesAuth.for_issuer(settings, smart_server.fhir_base)
    before = len(smart_server.state.fhir_requests)
    async with httpx.AsyncClient(base_url=smart_server.fhir_base, auth=auth) as http:
        await http.get("/Patient/anything")
        await http.get("/Observation", params={"patient": "anything"})
    assert auth.fetch_count == 1
    form = smart_server.state.token_requests[-1]
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"].endswith("jwt-bearer")
    scopes = form["scope"].split()
    assert "system/Patient.rs" in scopes and all(s.startswith("system/") for s in scopes)
    assert all(ok for _, _, ok in smart_server.state.fhir_requests[before:])


async def test_token_renewed_near_expiry(make_settings: Callable[..., Settings],
                                         key_files: dict[str, Path],
                                         smart_server: SmartTestServer) -> None:
    settings = make_settings(client_secret=None, private_key_file=key_files["RS384"])
    auth = await BackendServicesAuth.for_issuer(settings, smart_server.fhir_base)
    smart_server.state.access_token_ttl = 30  # shorter than the 60 s renewal margin
    try:
        first = await auth.access_token()
        second = await auth.access_token()
    finally:
        smart_server.state.access_token_ttl = 300
    assert first != second and auth.fetch_count == 2


async def test_secret_only_client_is_refused_by_a_jwt_only_server(
        make_settings: Callable[..., Settings], smart_server: SmartTestServer) -> None:
    auth = await BackendServicesAuth.for_issuer(make_settings(), smart_server.fhir_base)
    with pytest.raises(TokenError, match="invalid_client"):
        await auth.access_token()


async def test_untrusted_issuer(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(LaunchError):
        await BackendServicesAuth.for_issuer(make_settings(), "https://evil.example/fhir")
