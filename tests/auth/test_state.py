"""Session stores: the same contract in memory and in Redis; replicas share launches via Redis;
every value sealed (encrypted) at rest, with keys that rotate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from service.api.services import services_of
from service.config import Settings
from service.main import create_app
from service.state import MemoryStore, SealedStore, SessionStore
from service.state.redis_store import RedisStore
from service.state.sealed import fernet_for
from tests.auth.conftest import APP_ORIGIN
from tests.auth.flow import authorize, callback
from tests.auth.smart_server import SmartTestServer


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SessionStore]:
    if request.param == "memory":
        made: SessionStore = MemoryStore()
    else:
        made = RedisStore.from_url(request.getfixturevalue("redis_url"))
    yield made
    await made.close()


async def test_put_get_pop_once(store: SessionStore) -> None:
    await store.put("launch:a", {"x": [1, 2]}, 60)
    assert await store.get("launch:a") == {"x": [1, 2]}
    assert await store.pop("launch:a") == {"x": [1, 2]}
    assert await store.pop("launch:a") is None
    assert await store.ping()


async def test_ttl_expires() -> None:
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    await store.put("short", {"v": 1}, 1)
    now[0] += 0.9
    assert await store.get("short") == {"v": 1}
    now[0] += 0.2  # 1.1 s after the put
    assert await store.get("short") is None


async def test_redis_is_given_the_ttl(redis_url: str) -> None:
    """Redis expires keys itself; what we own is asking it to (``SET ... EX``)."""
    store = RedisStore.from_url(redis_url)
    try:
        await store.put("short", {"v": 1}, 1)
        raw = Redis.from_url(redis_url)
        assert await raw.ttl("ketamine:short") == 1
        await raw.aclose()
    finally:
        await store.close()


async def test_delete(store: SessionStore) -> None:
    await store.put("k", {"v": 1}, 60)
    await store.delete("k")
    assert await store.get("k") is None


async def test_memory_store_hands_out_copies() -> None:
    mem = MemoryStore()
    value = {"nested": {"a": 1}}
    await mem.put("k", value, 60)
    value["nested"]["a"] = 2
    got = await mem.get("k")
    assert got == {"nested": {"a": 1}}


async def test_redis_unreachable_is_not_ready() -> None:
    assert not await RedisStore.from_url("redis://127.0.0.1:1/0").ping()


async def test_replicas_share_a_launch_through_redis(redis_url: str,
                                                     make_settings: Callable[..., Settings],
                                                     browser_http: httpx.AsyncClient,
                                                     smart_server: SmartTestServer) -> None:
    # Replicas share the session key as they share Redis (state is encrypted at rest).
    settings = make_settings(redis_url=redis_url, session_keys=[Fernet.generate_key().decode()])
    replica_a, replica_b = create_app(settings), create_app(settings)
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=replica_a), base_url=APP_ORIGIN) as a,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=replica_b), base_url=APP_ORIGIN) as b,
    ):
        cb, _ = await authorize(a, browser_http, "/launch",
                                {"iss": smart_server.fhir_base,
                                 "launch": smart_server.new_launch("patient-redis")})
        b.cookies.update(a.cookies)  # the same browser, balanced onto the other replica
        done = await callback(b, cb)
        assert done.status_code == 303, done.text
        a.cookies.update(b.cookies)
        page = await a.get(done.headers["location"], headers={"Accept": "text/html"})
        assert page.status_code == 502 and "patient-redis" in page.text  # 502: no FHIR
        replay = await callback(a, cb)
        assert replay.status_code == 400
    await services_of(replica_a).store.close()
    await services_of(replica_b).store.close()


async def test_the_memory_store_is_sealed_too() -> None:
    memory = MemoryStore()
    store = SealedStore(memory, fernet_for([]))
    await store.put("session:x", {"access_token": "secret-token"}, 60)
    inner = await memory.get("session:x")
    assert inner is not None and "secret-token" not in str(inner)
    assert await store.get("session:x") == {"access_token": "secret-token"}


async def test_keys_rotate_new_first_old_still_decrypts() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    memory = MemoryStore()
    await SealedStore(memory, fernet_for([old])).put("session:a", {"v": 1}, 60)
    rotated = SealedStore(memory, fernet_for([new, old]))
    assert await rotated.get("session:a") == {"v": 1}
    await rotated.put("session:b", {"v": 2}, 60)
    assert await SealedStore(memory, fernet_for([new])).get("session:b") == {"v": 2}
    # Once the old key is dropped, what it sealed is as good as expired (never an error).
    assert await SealedStore(memory, fernet_for([new])).get("session:a") is None
