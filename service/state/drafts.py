"""Server-side drafts of the treatment-session form (issue 14): what a nurse typed survives an
ended EHR authorization and comes back at the next launch.

A draft belongs to one (FHIR server, patient, user): the user is the id token's ``fhirUser``, else
its ``sub``; without either there is no one to give it back to, so nothing is kept. Its store key
is a keyed hash of the three (``KETAMINE_LOG_PSEUDONYM_KEY``), because store keys are not
encrypted and a patient id in a Redis key would be PHI at rest. The value is sealed like every
other (:mod:`service.state.sealed`). Each launch that saved a draft also leaves a pointer under
its own session key, so the page of an expired session can say truthfully whether a draft was
kept, and for how long, after the session itself is gone.

Draft contents are PHI: nothing here logs them, nor the ids they are keyed by.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from service.config import Settings
from service.state.base import SessionStore

__all__ = ["MAX_VALUE_CHARS", "Draft", "DraftOwner", "Drafts", "draft_owner", "kept_for"]

MAX_VALUE_CHARS = 2000
"""Longest value kept per field (the form's longest field, its notes, takes 2,000)."""
_CONTEXT = b"ketamine-screen draft v1"


@dataclass(frozen=True, slots=True)
class DraftOwner:
    """Whose draft: the FHIR server (``iss``), the patient and the signed-in user."""

    iss: str
    patient: str
    user: str


@dataclass(frozen=True, slots=True)
class Draft:
    values: dict[str, str]
    adverse: list[str]
    saved_at: float
    """Epoch seconds."""


def kept_for(seconds: float) -> str:
    """How long a draft stays, for people: whole hours, else minutes.

    >>> kept_for(12 * 3600), kept_for(3600), kept_for(5400), kept_for(2700), kept_for(30)
    ('12 hours', '1 hour', '1 hour', '45 minutes', '1 minute')
    """
    hours, minutes = int(seconds // 3600), max(1, int(seconds // 60))
    if hours:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class Drafts:
    """Drafts in the app's (sealed) store, kept ``KETAMINE_DRAFT_TTL_HOURS``."""

    def __init__(self, settings: Settings, store: SessionStore, fields: Iterable[str],
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._key = settings.log_pseudonym_key.encode()
        self.ttl_seconds = settings.draft_ttl_hours * 3600
        self._fields = frozenset(fields)
        self._now = clock

    def key(self, owner: DraftOwner) -> str:
        # NUL cannot occur in a URL or a FHIR id, so no two owners join to the same text.
        plain = "\0".join((owner.iss.rstrip("/"), owner.patient, owner.user)).encode()
        digest = hmac.new(self._key, _CONTEXT + plain, hashlib.sha256).hexdigest()
        return f"draft:{digest}"

    async def save(self, owner: DraftOwner, session_key: str, values: Mapping[str, str],
                   adverse: Iterable[str]) -> Draft:
        """Keep what the form holds (its own fields only, each cut to MAX_VALUE_CHARS)."""
        draft = Draft({k: v[:MAX_VALUE_CHARS] for k, v in values.items() if k in self._fields},
                      [a[:MAX_VALUE_CHARS] for a in adverse][:50], self._now())
        key = self.key(owner)
        if await self._store.get(_done(key, draft.values.get("session_id", ""))) is not None:
            # An autosave that left the browser before the submit and arrived after it: the
            # chart has this session, a draft of it would come back at the next launch.
            return draft
        await self._store.put(key, {"values": draft.values, "adverse": draft.adverse,
                                    "saved_at": draft.saved_at}, self.ttl_seconds)
        await self._store.put(_pointer(session_key), {"draft": key,
                                                      "until": draft.saved_at + self.ttl_seconds},
                              self.ttl_seconds)
        return draft

    async def load(self, owner: DraftOwner) -> Draft | None:
        stored = await self._store.get(self.key(owner))
        if stored is None:
            return None
        values, adverse = stored.get("values"), stored.get("adverse")
        if not isinstance(values, dict) or not isinstance(adverse, list):
            return None
        return Draft({str(k): str(v) for k, v in values.items()}, [str(a) for a in adverse],
                     float(stored.get("saved_at") or 0))

    async def delete(self, owner: DraftOwner, session_key: str, session_id: str) -> None:
        """The chart has session ``session_id``: drop its draft, and refuse late autosaves."""
        key = self.key(owner)
        await self._store.put(_done(key, session_id), {}, self.ttl_seconds)
        await self._store.delete(key)
        await self._store.delete(_pointer(session_key))

    async def kept_seconds(self, session_key: str) -> float | None:
        """Seconds the draft this launch saved is still kept; None when it has none (any more)."""
        pointer = await self._store.get(_pointer(session_key))
        if pointer is None or await self._store.get(str(pointer.get("draft"))) is None:
            return None
        left = float(pointer.get("until") or 0) - self._now()
        return left if left > 0 else None


def _done(key: str, session_id: str) -> str:
    return f"{key}:saved:{hashlib.sha256(session_id.encode()).hexdigest()[:32]}"


def _pointer(session_key: str) -> str:
    return f"draftof:{session_key}"


def draft_owner(iss: str, patient: str | None, fhir_user: str | None,
                sub: str | None) -> DraftOwner | None:
    """The owner of drafts made in a launch (None: no patient or no user to key them by).

    >>> draft_owner("https://ehr/fhir", "p1", None, "u7")
    DraftOwner(iss='https://ehr/fhir', patient='p1', user='sub:u7')
    >>> draft_owner("https://ehr/fhir", "p1", None, None) is None
    True
    """
    user = fhir_user or (f"sub:{sub}" if sub else None)
    if not (user and patient and iss):
        return None
    return DraftOwner(iss, patient, user)
