"""The interface every session store implements."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["JsonObject", "SessionStore"]

JsonObject = dict[str, Any]


class SessionStore(Protocol):
    """Keys are opaque strings chosen by the caller (``launch:<state>``, ``session:<id>``)."""

    async def put(self, key: str, value: JsonObject, ttl_seconds: int) -> None:
        """Store ``value`` (JSON-serialisable) for ``ttl_seconds``, replacing any old value."""
        ...

    async def add(self, key: str, value: JsonObject, ttl_seconds: int) -> bool:
        """Store ``value`` only when ``key`` is absent (atomic); True when it was stored."""
        ...

    async def get(self, key: str) -> JsonObject | None:
        """The value, or ``None`` when absent or expired."""
        ...

    async def pop(self, key: str) -> JsonObject | None:
        """Atomically read and delete: the second caller for the same key gets ``None``."""
        ...

    async def delete(self, key: str) -> None: ...

    async def ping(self) -> bool:
        """True when the store answers (readiness)."""
        ...

    async def close(self) -> None: ...
