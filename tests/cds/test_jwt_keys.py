"""Where a CDS client's keys come from, and what a bad token may make us fetch (issue 16).

The CDS client is the SMART test server (``tests/cds/conftest.py``): every request it receives
is in ``state.paths``, so the outbound fetches a token causes are counted exactly.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt
from redis.asyncio import Redis

from service.api.services import services_of
from service.auth.api_tokens import LEEWAY_SECONDS
from service.auth.cds_client import CdsJwtVerifier
from service.config import Settings
from service.main import create_app
from tests.api.conftest import APP_ORIGIN, assert_problem
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
ATTACKS = 1500
"""As many calls as the attack in issue 16 (it caused 3,000 fetches and +16 MB)."""


def _body() -> dict[str, Any]:
    patient = recent_patient("cds-keys")
    return hook_request(patient.pid, [draft_order(patient.pid, ESKETAMINE)],
                        prefetch_for(patient))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _garbage_signature(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A JWT that looks right and is signed by nobody."""
    return ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()),
                     _b64(b"\x00" * 256)])


def _claims(server: SmartTestServer, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": server.base_url, "aud": f"{APP_ORIGIN}{URL}", "iat": now, "exp": now + 300,
            "jti": uuid.uuid4().hex, **extra}


@pytest.fixture
async def frozen_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its CDS verifier's refetch clock stopped: budgets do not refill mid-test."""
    app = create_app(settings)
    services = services_of(app)
    services.cds_jwt = CdsJwtVerifier(settings, services.store, clock=lambda: 1000.0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=APP_ORIGIN,
                                 timeout=60) as client:
        yield client


async def _fetches_for(api: httpx.AsyncClient, server: SmartTestServer,
                       tokens: list[str]) -> tuple[int, set[int]]:
    before = len(server.state.paths)
    statuses = set()
    for token in tokens:
        resp = await api.post(URL, json=_body(), headers={"Authorization": f"Bearer {token}"})
        statuses.add(resp.status_code)
    return len(server.state.paths) - before, statuses


async def test_unsigned_tokens_naming_any_jku_on_the_issuer_fetch_nothing(
        frozen_api: httpx.AsyncClient, token_server: SmartTestServer) -> None:
    """Issue 16: a garbage signature, the allowed iss and a jku path of the attacker's choice on
    the issuer's origin made the service fetch that path, one never-evicted cache per jku."""
    tokens = [_garbage_signature({"alg": "RS384", "typ": "JWT", "kid": "k",
                                  "jku": f"{token_server.base_url}/x/{i}/jwks"},
                                 _claims(token_server)) for i in range(ATTACKS)]
    fetches, statuses = await _fetches_for(frozen_api, token_server, tokens)
    assert (fetches, statuses) == (0, {401})


async def test_unknown_kids_refetch_within_the_budget(frozen_api: httpx.AsyncClient,
                                                      token_server: SmartTestServer) -> None:
    """The configured JWK Set: fetched once, refetched once for an unknown kid, then no more
    while the budget is spent (however many made-up kids arrive)."""
    tokens = [_garbage_signature({"alg": "RS384", "typ": "JWT", "kid": f"made-up-{i}"},
                                 _claims(token_server)) for i in range(ATTACKS)]
    fetches, statuses = await _fetches_for(frozen_api, token_server, tokens)
    assert (fetches, statuses) == (2, {401})
    assert token_server.state.paths[-2:] == ["/jwks", "/jwks"]


async def test_a_jku_beside_the_issuers_host_is_a_401_not_a_500(
        api: httpx.AsyncClient, token_server: SmartTestServer) -> None:
    """Issue 16: ``http://<issuer-host>.evil.example/jwks`` answered 500 without credentials."""
    before = len(token_server.state.paths)
    host_port = token_server.base_url.removeprefix("http://")
    token = mint_cds_jwt(token_server, SERVICE,
                         header={"jku": f"http://{host_port}.evil.example/jwks"})
    resp = await api.post(URL, json=_body(), headers={"Authorization": f"Bearer {token}"})
    assert "jku" in assert_problem(resp, 401)["detail"]
    assert len(token_server.state.paths) == before


@pytest.mark.parametrize(("lifetime", "ok"), [(300, True), (301, False), (365 * 86400, False)],
                         ids=["five-minutes", "a-second-more", "a-year"])
async def test_a_jwt_lives_five_minutes_at_most(api: httpx.AsyncClient,
                                                token_server: SmartTestServer,
                                                lifetime: int, ok: bool) -> None:
    """Issue 16: a one-year exp was accepted while its jti was remembered for an hour."""
    now = int(time.time())
    token = mint_cds_jwt(token_server, SERVICE, iat=now, exp=now + lifetime)
    before = len(token_server.state.paths)
    resp = await api.post(URL, json=_body(), headers={"Authorization": f"Bearer {token}"})
    if ok:
        assert resp.status_code == 200, resp.text
    else:
        assert "five minutes" in assert_problem(resp, 401)["detail"]
        assert len(token_server.state.paths) == before  # refused before any key is fetched


@pytest.mark.parametrize("case", ["hs256", "none", "no-kid", "stranger-issuer", "wrong-aud",
                                  "expired", "no-jti"])
async def test_unacceptable_headers_and_claims_fetch_nothing(
        api: httpx.AsyncClient, token_server: SmartTestServer, case: str) -> None:
    header: dict[str, Any] = {"alg": "RS384", "typ": "JWT", "kid": "k"}
    claims = _claims(token_server)
    now = int(time.time())
    changes: dict[str, Callable[[], None]] = {
        "hs256": lambda: header.update(alg="HS256"),
        "none": lambda: header.update(alg="none"),
        "no-kid": lambda: header.pop("kid"),
        "stranger-issuer": lambda: claims.update(iss="https://evil.example"),
        "wrong-aud": lambda: claims.update(aud=f"{APP_ORIGIN}/cds-services/other"),
        "expired": lambda: claims.update(iat=now - 900, exp=now - 600),
        "no-jti": lambda: claims.pop("jti"),
    }
    changes[case]()
    before = len(token_server.state.paths)
    resp = await api.post(URL, json=_body(), headers={
        "Authorization": f"Bearer {_garbage_signature(header, claims)}"})
    assert_problem(resp, 401)
    assert len(token_server.state.paths) == before


async def test_the_rest_api_key_is_not_a_cds_key(api: httpx.AsyncClient,
                                                  token_server: SmartTestServer) -> None:
    """Issue 16: a JWT signed with the REST API issuer's key (jku: the API's JWK Set on the same
    origin) was accepted as a CDS JWT."""
    token = mint_cds_jwt(token_server, SERVICE, key=token_server.api_key, alg="RS256",
                         header={"jku": f"{token_server.base_url}/api/jwks"})
    assert "jku" in assert_problem(await api.post(URL, json=_body(), headers={
        "Authorization": f"Bearer {token}"}), 401)["detail"]
    # ... nor without a jku: the issuer's configured JWK Set does not hold the API key.
    token = mint_cds_jwt(token_server, SERVICE, key=token_server.api_key, alg="RS256",
                         header={"jku": None})
    assert "key set" in assert_problem(await api.post(URL, json=_body(), headers={
        "Authorization": f"Bearer {token}"}), 401)["detail"]


async def test_the_cds_key_is_not_a_rest_api_key(api: httpx.AsyncClient,
                                                  token_server: SmartTestServer) -> None:
    now = int(time.time())
    key = token_server.id_token_key
    token = jwt.encode({"alg": "RS384", "kid": key.kid},
                       {"iss": f"{token_server.base_url}/api", "aud": "ketamine-api",
                        "sub": "svc-caller", "iat": now, "exp": now + 300,
                        "scope": "ketamine.screen"}, key, algorithms=["RS384"])
    resp = await api.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert_problem(resp, 401)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"cds_jwks_urls": {}}, "must give the JWK Set URL of every CDS issuer"),
    ({"cds_jwks_urls": {"{base}": "{base}/jwks", "https://a.example": "https://a.example/jwks"}},
     "not in KETAMINE_CDS"),
    ({"api_issuer": "{base}"}, "KETAMINE_API_ISSUER may not also be a CDS issuer"),
    ({"api_jwks_url": "{base}/jwks"}, "may not also be a CDS issuer's JWK Set"),
], ids=["no-url", "unknown-issuer", "shared-issuer", "shared-jwks"])
def test_settings_keep_the_two_kinds_of_keys_apart(make_settings: Callable[..., Settings],
                                                   token_server: SmartTestServer,
                                                   overrides: dict[str, Any],
                                                   message: str) -> None:
    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {fill(k): fill(v) for k, v in value.items()}
        return value.replace("{base}", token_server.base_url) if isinstance(value, str) else value

    values = {k: fill(v) for k, v in overrides.items()}
    with pytest.raises(ValueError, match=message):
        make_settings(**values)


async def test_an_issuer_whose_keys_fail_is_not_asked_again_at_once(
        make_settings: Callable[..., Settings], token_server: SmartTestServer) -> None:
    """Negative caching: a JWK Set that cannot be read is not fetched again for every call."""
    settings = make_settings(cds_jwks_urls={token_server.base_url:
                                            f"{token_server.base_url}/no-such-jwks"})
    app = create_app(settings)
    services = services_of(app)
    services.cds_jwt = CdsJwtVerifier(settings, services.store, clock=lambda: 1000.0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=APP_ORIGIN) as client:
        tokens = [mint_cds_jwt(token_server, SERVICE, header={"jku": None}) for _ in range(50)]
        fetches, statuses = await _fetches_for(client, token_server, tokens)
    assert (fetches, statuses) == (1, {401})


async def test_a_jti_is_remembered_in_redis_until_its_token_expires(
        make_settings: Callable[..., Settings], token_server: SmartTestServer,
        redis_url: str) -> None:
    """The jti's time to live in the shared store runs to the token's exp plus the leeway."""
    app = create_app(make_settings(redis_url=redis_url))
    raw = Redis.from_url(redis_url)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=APP_ORIGIN) as client:
            now = int(time.time())
            token = mint_cds_jwt(token_server, SERVICE, iat=now, exp=now + 300)
            ok = await client.post(URL, json=_body(), headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200, ok.text
            again = await client.post(URL, json=_body(),
                                      headers={"Authorization": f"Bearer {token}"})
            assert "replayed" in assert_problem(again, 401)["detail"]
        keys = [key async for key in raw.scan_iter("ketamine:cds-jti:*")]
        ttls = [await raw.ttl(key) for key in keys]
        left = now + 300 - time.time()
        assert len(keys) == 1 and left <= ttls[0] <= left + LEEWAY_SECONDS + 1, (ttls, left)
    finally:
        await raw.flushdb()
        await raw.aclose()
        await services_of(app).store.close()
