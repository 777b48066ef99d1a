"""Short-lived shared state: pending launches, clinician sessions and session-form drafts
(:mod:`service.state.drafts`).

In memory by default; Redis (``KETAMINE_REDIS_URL``) when several replicas must share launches.
Both stores keep JSON objects under string keys with a time to live, and ``pop`` is atomic so a
``state`` value can be consumed only once, whichever replica receives the callback. Every value is
encrypted before it is stored (:mod:`service.state.sealed`, keys ``KETAMINE_SESSION_KEYS``).
"""

from __future__ import annotations

from service.config import Settings
from service.state.base import SessionStore
from service.state.memory import MemoryStore
from service.state.sealed import SealedStore, fernet_for

__all__ = ["MemoryStore", "SealedStore", "SessionStore", "make_store"]


def make_store(settings: Settings) -> SessionStore:
    """The store the settings ask for (Redis when ``redis_url`` is set), sealed."""
    inner: SessionStore
    if settings.redis_url:
        from service.state.redis_store import RedisStore

        inner = RedisStore.from_url(settings.redis_url)
    else:
        inner = MemoryStore()
    return SealedStore(inner, fernet_for([k.get_secret_value() for k in settings.session_keys]))
