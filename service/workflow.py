"""The screening workflow shared by the REST API, CDS Hooks and the clinician's pages.

Plain async functions over the pipeline stages (fetch in ``service.fhir``, screen in
``service.screening``, write in ``service.render``); no web framework here. Parsing a large Bundle
and screening it are CPU work, so both run in a worker thread and never block the event loop.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import httpx

from service.auth.backend import BackendServicesAuth
from service.auth.discovery import SmartDiscovery, normalise_issuer
from service.auth.scopes import backend_scopes
from service.errors import AuthError, BundleError, FhirAuthError, InputError, LaunchError
from service.fhir.bundle import parse_bundle
from service.fhir.client import FhirClient
from service.render.session import SessionInput, SessionWriteResult
from service.render.session import write_session as _write_session
from service.render.writeback import write_screening as _write_screening
from service.screening.engine import BloodPressurePolicy, screen
from service.screening.model import RawPatientData, ScreeningResult

if TYPE_CHECKING:
    from service.config import Settings

__all__ = [
    "BackendAccess",
    "bp_policy",
    "evaluation_time",
    "screen_bundle",
    "screen_from_fhir",
    "screen_raw",
    "write_screening_result",
    "write_session",
]


def evaluation_time(as_of: datetime | None = None) -> datetime:
    """``as_of`` in UTC (a naive time is taken as UTC); now, to the second, when absent."""
    if as_of is None:
        return datetime.now(UTC).replace(microsecond=0)
    if as_of.tzinfo is None:
        return as_of.replace(tzinfo=UTC)
    return as_of.astimezone(UTC)


def bp_policy(settings: Settings) -> BloodPressurePolicy:
    """The blood-pressure window and thresholds configured for this deployment."""
    return BloodPressurePolicy(
        settings.bp_window_days,
        settings.bp_systolic_uncontrolled,
        settings.bp_diastolic_uncontrolled,
        settings.bp_systolic_elevated,
        settings.bp_diastolic_elevated,
        settings.bp_systolic_guide_65,
        settings.bp_diastolic_guide_65,
        settings.eligibility_lookback_days,
    )


async def screen_raw(raw: RawPatientData, *, as_of: datetime | None,
                     settings: Settings) -> ScreeningResult:
    """Screen records already read (in a worker thread)."""
    when = evaluation_time(as_of)
    run = functools.partial(screen, raw, when, policy=bp_policy(settings),
                            ruleset=settings.ruleset)
    return await anyio.to_thread.run_sync(run)


def _parse_and_screen(data: object, source: str, patient_id: str | None, as_of: datetime,
                      policy: BloodPressurePolicy,
                      ruleset: str) -> tuple[ScreeningResult, RawPatientData]:
    if isinstance(data, bytes | bytearray):
        if not data.strip():
            raise BundleError(f"{source}: empty; send a FHIR Bundle")
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise BundleError(f"{source}: not JSON ({type(exc).__name__})") from None
    raw = parse_bundle(data, source, patient_id)
    return screen(raw, as_of, policy=policy, ruleset=ruleset), raw


async def screen_bundle(data: bytes | Mapping[str, Any] | object, *,
                        source: str = "request body", patient_id: str | None = None,
                        as_of: datetime | None,
                        settings: Settings) -> tuple[ScreeningResult, RawPatientData]:
    """Parse a FHIR Bundle (JSON bytes, or decoded JSON) and screen it, in a worker thread.

    Raises ``BundleError`` when the data is not JSON, not a Bundle, or holds nothing usable.
    """
    run = functools.partial(_parse_and_screen, data, source, patient_id,
                            evaluation_time(as_of), bp_policy(settings), settings.ruleset)
    return await anyio.to_thread.run_sync(run)


async def screen_from_fhir(client: FhirClient, patient_id: str, *, as_of: datetime | None,
                           settings: Settings) -> tuple[ScreeningResult, RawPatientData]:
    """Read one patient's records from the FHIR server and screen them.

    FHIR failures raise the ``FhirError`` subclasses of :mod:`service.errors`.
    """
    when = evaluation_time(as_of)
    raw = await client.read_patient_data(patient_id, as_of=when,
                                         bp_window_days=settings.bp_window_days)
    return await screen_raw(raw, as_of=when, settings=settings), raw


async def write_screening_result(client: FhirClient, result: ScreeningResult,
                                 raw: RawPatientData, *,
                                 practitioner: str | None = None) -> list[str]:
    """Write the result back in one idempotent transaction; ``Type/id`` of each resource."""
    written = await _write_screening(client, result, versions=raw.versions,
                                     practitioner=_bare_id(practitioner))
    return list(written.locations)


async def write_session(client: FhirClient, session: SessionInput, *,
                        practitioner: str | None = None) -> SessionWriteResult:
    """Write one treatment session; ``practitioner`` fills in a session that names none."""
    if practitioner and session.practitioner_id is None:
        session = session.model_copy(update={"practitioner_id": _bare_id(practitioner)})
    return await _write_session(client, session)


def _bare_id(practitioner: str | None) -> str | None:
    """``123``, ``Practitioner/123`` or a URL to it -> ``123``; another resource type -> None.

    A SMART ``fhirUser`` may name a Patient or a RelatedPerson: they are not recorded as authors.
    """
    if not practitioner:
        return None
    parts = practitioner.rstrip("/").split("/")
    if len(parts) == 1:
        return parts[0]
    return parts[-1] if parts[-2] == "Practitioner" else None


class BackendAccess:
    """FHIR clients for calls without a user (the REST API), over SMART Backend Services.

    One ``BackendServicesAuth`` per (server, read or write) for the process, so tokens are reused
    until shortly before they expire. Only servers in ``KETAMINE_ALLOWED_ISSUERS`` are ever
    contacted. With no client credentials configured (a test server without auth), requests go
    out without a token.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._discovery = SmartDiscovery(ttl_seconds=settings.discovery_ttl_seconds,
                                         timeout=settings.fhir_timeout_seconds)
        self._auth: dict[tuple[str, bool], BackendServicesAuth] = {}

    def issuer(self, fhir_base: str | None) -> str:
        """``fhir_base`` when it is allowed, else the first allowed server; InputError otherwise."""
        allowed = [normalise_issuer(a) for a in self.settings.allowed_issuers]
        if not allowed:
            raise AuthError("No FHIR server is configured (KETAMINE_ALLOWED_ISSUERS).")
        if fhir_base is None:
            return allowed[0]
        wanted = normalise_issuer(fhir_base)
        if wanted not in allowed:
            raise InputError("fhir_base is not one of the FHIR servers this service may use.")
        return wanted

    def client(self, iss: str, auth: httpx.Auth | None, *,
               request_id: str | None = None) -> FhirClient:
        return FhirClient(iss, settings=self.settings, auth=auth, request_id=request_id)

    async def auth_for(self, iss: str, *, write: bool = False) -> httpx.Auth | None:
        if self.settings.private_key_file is None and not self.settings.client_secret:
            return None
        key = (iss, write)
        if key not in self._auth:
            try:
                config = await self._discovery.get(iss)
            except LaunchError as err:
                raise FhirAuthError(f"SMART discovery failed: {err}") from None
            scope = backend_scopes(v2=config.supports_v2_scopes, write=write)
            self._auth[key] = BackendServicesAuth(self.settings, config.token_endpoint,
                                                  scope=scope)
        return self._auth[key]

    async def open(self, fhir_base: str | None, *, write: bool = False,
                   request_id: str | None = None) -> FhirClient:
        """A client for an allowed server; use it as ``async with``. ``request_id``: the
        ``X-Request-ID`` to send (see FhirClient)."""
        iss = self.issuer(fhir_base)
        return self.client(iss, await self.auth_for(iss, write=write), request_id=request_id)
