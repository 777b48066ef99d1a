"""A clinician's SMART session, kept server-side only, and the ``httpx.Auth`` that uses it.

The browser holds an opaque random id in a cookie; tokens never leave the server. Access tokens
are refreshed shortly before they expire when the EHR issued a refresh token
(https://hl7.org/fhir/smart-app-launch/app-launch.html#step-7-app-uses-a-refresh-token).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import weakref
from collections.abc import AsyncGenerator, Generator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from authlib.integrations.base_client import OAuthError

from service.auth.client_auth import oauth_client
from service.auth.launch_context import ContextItem, parse_launch_context
from service.errors import LaunchError, SessionExpired
from service.fhir.references import is_fhir_id
from service.logs import pseudonym
from service.metrics import token_outcome

if TYPE_CHECKING:
    from service.auth.smart import SmartApp

__all__ = [
    "REFRESH_MARGIN_SECONDS",
    "ActiveLaunch",
    "SessionAuth",
    "SmartSession",
    "fresh_session",
    "session_key",
]

log = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 60


def session_key(browser_id: str, handle: str) -> str:
    """Store key of one launch: the cookie's secret is hashed so the store never holds it."""
    digest = hashlib.sha256(browser_id.encode()).hexdigest()
    return f"session:{digest}:{handle}"


@dataclass(slots=True)
class SmartSession:
    iss: str
    token_endpoint: str
    access_token: str
    expires_at: float
    """Epoch seconds."""
    scope: str
    patient: str | None = None
    encounter: str | None = None
    fhir_user: str | None = None
    refresh_token: str | None = None
    need_patient_banner: bool = True
    smart_style_url: str | None = None
    id_token_sub: str | None = None
    issued_at: float = 0.0
    fhir_context: list[dict[str, str]] = field(default_factory=list)
    """The kept ``fhirContext`` entries (:mod:`service.auth.launch_context`), as JSON."""
    app_context: str | None = None

    @property
    def context_items(self) -> tuple[ContextItem, ...]:
        return tuple(ContextItem(str(e["reference"]), e.get("role")) for e in self.fhir_context)

    @property
    def order(self) -> str | None:
        """Id of the MedicationRequest in ``fhirContext``: the order being screened."""
        return next((i.id for i in self.context_items
                     if i.type == "MedicationRequest" and i.role is None), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SmartSession:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @classmethod
    def from_token(cls, iss: str, token_endpoint: str, token: dict[str, Any],
                   fhir_user: str | None, sub: str | None) -> SmartSession:
        session = cls(iss=iss, token_endpoint=token_endpoint, access_token="", expires_at=0,
                      scope="", fhir_user=fhir_user, id_token_sub=sub)
        session.apply_token(token)
        return session

    def apply_token(self, token: dict[str, Any]) -> None:
        """Take a token response (first exchange or refresh); context fields persist if absent."""
        self.access_token = str(token["access_token"])
        self.issued_at = time.time()
        expires_at = token.get("expires_at")
        if not isinstance(expires_at, int | float):
            expires_in = token.get("expires_in")
            expires_at = time.time() + (expires_in if isinstance(expires_in, int) else 300)
        self.expires_at = float(expires_at)
        self.scope = str(token.get("scope") or self.scope)
        self.refresh_token = token.get("refresh_token") or self.refresh_token
        self.patient = _context_id(token, "patient") or self.patient
        context = parse_launch_context(token)
        if context is not None:
            self.fhir_context = [item.to_json() for item in context.items]
            self.app_context = context.app_context
        # The encounter parameter wins; an Encounter in fhirContext stands in when it is absent.
        self.encounter = (_context_id(token, "encounter")
                          or (context.first("Encounter") if context is not None else None)
                          or self.encounter)
        if "need_patient_banner" in token:
            self.need_patient_banner = bool(token["need_patient_banner"])
        style = token.get("smart_style_url")
        if isinstance(style, str) and style.startswith(("https://", "http://")):
            self.smart_style_url = style

    def expires_soon(self) -> bool:
        """Inside the refresh margin: a minute, or half the lifetime of a short-lived token."""
        margin = min(REFRESH_MARGIN_SECONDS, (self.expires_at - self.issued_at) / 2)
        return self.expires_at - margin <= time.time()


def _context_id(token: dict[str, Any], name: str) -> str | None:
    """A launch context id of the token response; it goes into request URLs, so anything but a
    FHIR id is a launch error, never a request."""
    value = token.get(name)
    if value is None or value == "":
        return None
    if not is_fhir_id(value):
        raise LaunchError(f"The EHR's token response names a {name} that is not a FHIR id.")
    return str(value)


@dataclass(frozen=True, slots=True)
class ActiveLaunch:
    """A clinician's launch: the session (tokens fresh for a minute) and its store key."""

    key: str
    handle: str
    session: SmartSession


class SessionAuth(httpx.Auth):
    """Bearer auth for FHIR calls on behalf of the clinician of one launch (async only).

    Pass it to ``FhirClient(base_url=session.iss, auth=SessionAuth(smart, key))``.
    """

    def __init__(self, smart: SmartApp, key: str) -> None:
        self._smart = smart
        self._key = key

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("SessionAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        session = await fresh_session(self._smart, self._key)
        request.headers["Authorization"] = f"Bearer {session.access_token}"
        response = yield request
        if response.status_code == 401 and session.refresh_token:
            session = await fresh_session(self._smart, self._key, force=True)
            request.headers["Authorization"] = f"Bearer {session.access_token}"
            yield request


_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


async def fresh_session(smart: SmartApp, key: str, *, force: bool = False) -> SmartSession:
    """The session with an access token valid for at least a minute (refreshing if need be)."""
    lock = _locks.get(key)
    if lock is None:
        lock = _locks[key] = asyncio.Lock()
    async with lock:
        data = await smart.store.get(key)
        if data is None:
            raise SessionExpired("Your session has ended; launch the app again from the EHR.")
        session = SmartSession.from_json(data)
        if not force and not session.expires_soon():
            return session
        if not session.refresh_token:
            raise SessionExpired("Your EHR authorization has expired; launch the app again.")
        await _refresh(smart, session)
        await smart.store.put(key, session.to_json(), smart.settings.session_ttl_seconds)
    return session


async def _refresh(smart: SmartApp, session: SmartSession) -> None:
    async with oauth_client(smart.settings, session.token_endpoint) as client:
        try:
            token = await client.refresh_token(
                session.token_endpoint, refresh_token=session.refresh_token
            )
        except OAuthError as err:
            token_outcome("launch", "refused")
            raise SessionExpired(f"The EHR refused to refresh the token ({err.error}).") from None
        except httpx.HTTPError as err:
            token_outcome("launch", "failed")
            raise SessionExpired(f"The EHR's token endpoint is unreachable ({err}).") from None
    token_outcome("launch", "ok")
    session.apply_token(dict(token))
    log.info("refreshed SMART access token for patient %s", pseudonym(session.patient))
