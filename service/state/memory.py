"""A single-process store with TTLs, for development, tests and a single replica."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable

from service.state.base import JsonObject

__all__ = ["MemoryStore"]


class MemoryStore:
    """Entries expire lazily on read and are swept on write, so memory stays bounded."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._data: dict[str, tuple[float, JsonObject]] = {}
        self._lock = asyncio.Lock()
        self._now = clock or time.monotonic

    async def put(self, key: str, value: JsonObject, ttl_seconds: int) -> None:
        async with self._lock:
            now = self._now()
            self._sweep(now)
            # A deep copy: callers must not be able to change stored state by reference.
            self._data[key] = (now + ttl_seconds, copy.deepcopy(value))

    async def add(self, key: str, value: JsonObject, ttl_seconds: int) -> bool:
        async with self._lock:
            now = self._now()
            self._sweep(now)
            if key in self._data:
                return False
            self._data[key] = (now + ttl_seconds, copy.deepcopy(value))
            return True

    async def get(self, key: str) -> JsonObject | None:
        async with self._lock:
            return self._live(key, remove=False)

    async def pop(self, key: str) -> JsonObject | None:
        async with self._lock:
            return self._live(key, remove=True)

    async def delete(self, key: str) -> None:
        async with self._lock:
            self._data.pop(key, None)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()

    def _live(self, key: str, *, remove: bool) -> JsonObject | None:
        entry = self._data.pop(key, None) if remove else self._data.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._now():
            self._data.pop(key, None)
            return None
        return copy.deepcopy(value)

    def _sweep(self, now: float) -> None:
        for key in [k for k, (expires, _) in self._data.items() if expires <= now]:
            del self._data[key]
