"""Redis-backed store (``redis.asyncio``) so several replicas share launches and sessions.

Redis that does not answer is :class:`~service.errors.StoreUnavailable` (503 with
``Retry-After``), never a stray 500: without the store nothing can be read or remembered.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.errors import StoreUnavailable
from service.state.base import JsonObject

__all__ = ["RedisStore"]

_PREFIX = "ketamine:"
_SOCKET_TIMEOUT_SECONDS = 5.0


@asynccontextmanager
async def _answering() -> AsyncIterator[None]:
    try:
        yield
    except (RedisError, OSError) as err:
        raise StoreUnavailable(
            f"The session store does not answer ({type(err).__name__}); try again shortly."
        ) from None


class RedisStore:
    def __init__(self, client: Redis) -> None:
        self._redis = client

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        return cls(Redis.from_url(url, decode_responses=True,
                                  socket_timeout=_SOCKET_TIMEOUT_SECONDS,
                                  socket_connect_timeout=_SOCKET_TIMEOUT_SECONDS))

    async def put(self, key: str, value: JsonObject, ttl_seconds: int) -> None:
        async with _answering():
            await self._redis.set(_PREFIX + key, json.dumps(value), ex=ttl_seconds)

    async def add(self, key: str, value: JsonObject, ttl_seconds: int) -> bool:
        async with _answering():
            return bool(await self._redis.set(_PREFIX + key, json.dumps(value), ex=ttl_seconds,
                                              nx=True))

    async def get(self, key: str) -> JsonObject | None:
        async with _answering():
            return _load(await self._redis.get(_PREFIX + key))

    async def pop(self, key: str) -> JsonObject | None:
        # GETDEL is atomic: of two replicas racing on one ``state``, only one gets the value.
        async with _answering():
            return _load(await self._redis.getdel(_PREFIX + key))

    async def delete(self, key: str) -> None:
        async with _answering():
            await self._redis.delete(_PREFIX + key)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()


def _load(raw: Any) -> JsonObject | None:
    if raw is None:
        return None
    value = json.loads(raw)
    return value if isinstance(value, dict) else None
