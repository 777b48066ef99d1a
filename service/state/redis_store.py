"""Redis-backed store (``redis.asyncio``) so several replicas share launches and sessions."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.state.base import JsonObject

__all__ = ["RedisStore"]

_PREFIX = "ketamine:"


class RedisStore:
    def __init__(self, client: Redis) -> None:
        self._redis = client

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        return cls(Redis.from_url(url, decode_responses=True))

    async def put(self, key: str, value: JsonObject, ttl_seconds: int) -> None:
        await self._redis.set(_PREFIX + key, json.dumps(value), ex=ttl_seconds)

    async def get(self, key: str) -> JsonObject | None:
        return _load(await self._redis.get(_PREFIX + key))

    async def pop(self, key: str) -> JsonObject | None:
        # GETDEL is atomic: of two replicas racing on one ``state``, only one gets the value.
        return _load(await self._redis.getdel(_PREFIX + key))

    async def delete(self, key: str) -> None:
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
