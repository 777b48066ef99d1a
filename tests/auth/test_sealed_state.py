"""Launch and session state encrypted at rest (issue 16): Redis read directly holds no token, no
PKCE verifier, no patient (key rotation: tests/auth/test_state.py)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from service.api.services import services_of
from service.config import Settings
from service.main import create_app
from tests.auth.conftest import APP_ORIGIN
from tests.auth.flow import authorize, callback
from tests.auth.smart_server import SmartTestServer


async def test_redis_holds_no_token_in_clear(redis_url: str,
                                             make_settings: Callable[..., Settings],
                                             browser_http: httpx.AsyncClient,
                                             smart_server: SmartTestServer) -> None:
    """Issue 16: the clinician's EHR access and refresh tokens sat in Redis as plain JSON."""
    app = create_app(make_settings(redis_url=redis_url,
                                   session_keys=[Fernet.generate_key().decode()]))
    raw = Redis.from_url(redis_url, decode_responses=True)
    await raw.flushdb()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=APP_ORIGIN) as client:
            cb, sent = await authorize(client, browser_http, "/launch",
                                       {"iss": smart_server.fhir_base,
                                        "launch": smart_server.new_launch("patient-sealed")})
            pending = {key: await raw.get(key) async for key in raw.scan_iter("ketamine:*")}
            done = await callback(client, cb)
            assert done.status_code == 303, done.text
            stored = {key: await raw.get(key) async for key in raw.scan_iter("ketamine:*")}
        tokens = [t for t, (_, grant) in smart_server.state.access_tokens.items()
                  if grant.user.get("patient") == "patient-sealed"]
        refresh = [t for t, grant in smart_server.state.refresh_tokens.items()
                   if grant.user.get("patient") == "patient-sealed"]
        assert len(tokens) == 1 and len(refresh) == 1
        assert [k.split(":")[1] for k in pending] == ["launch"]
        assert [k.split(":")[1] for k in stored] == ["session"]
        secrets = [*tokens, *refresh, sent["code_challenge"], "patient-sealed", "access_token",
                   "refresh_token", "verifier", smart_server.fhir_base]
        for value in [*pending.values(), *stored.values()]:
            assert value.startswith('{"sealed": "gAAAAA'), value[:40]
            assert not [s for s in secrets if s in value]
        # ...and the app reads them back: the launch's page asks the EHR as the clinician.
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=APP_ORIGIN, cookies=client.cookies) as again:
            page = await again.get(done.headers["location"], headers={"Accept": "text/html"})
        assert page.status_code == 502 and "patient-sealed" in page.text  # 502: no FHIR data
    finally:
        await raw.flushdb()
        await raw.aclose()
        await services_of(app).store.close()
