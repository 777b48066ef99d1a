"""The one place a :class:`~service.fhir.client.FhirClient` is made, for each way we reach an EHR.

* ``backend``: the REST API, without a user, over SMART Backend Services
  (https://hl7.org/fhir/smart-app-launch/backend-services.html). One ``BackendServicesAuth`` per
  (server, read or write) for the process, so tokens are reused until shortly before they expire.
  With no client credentials configured (a test server without auth), requests go out without a
  token.
* ``launch``: a clinician's launch, with the session's access token (``SessionAuth``).
* ``cds``: a CDS call's ``fhirServer`` with its ``fhirAuthorization`` token, sent as it is.
* ``command_line``: a server named on the command line: a bearer token the operator hands in
  (``KETAMINE_FHIR_TOKEN``), else Backend Services when client credentials are configured (the
  server must then be an allowed issuer), else no token.
* ``plain``: no token at all (test servers without auth).
* ``audit``: the audit repository (``KETAMINE_AUDIT_FHIR_BASE``) that takes AuditEvents, no token.

Only servers in ``KETAMINE_ALLOWED_ISSUERS`` are contacted with a token. A client is opened per
use (``async with``: one auth, one request id), but ``backend``, ``launch`` and ``cds`` clients send
on one connection pool per server, kept for the process (``KETAMINE_FHIR_MAX_CONNECTIONS``) and
closed by :meth:`FhirClients.aclose` at shutdown: no TCP and TLS handshake per request. A pool
belongs to the event loop that made it; another loop gets its own. ``command_line`` and ``plain``
(one-shot commands) own their connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator

import httpx

from service.auth.backend import BackendServicesAuth
from service.auth.discovery import SmartDiscovery
from service.auth.scopes import backend_scopes
from service.auth.session import SessionAuth
from service.auth.smart import SmartApp
from service.config import Settings
from service.errors import AuthError, FhirAuthError, InputError, LaunchError, PrefetchIncomplete
from service.fhir.client import FhirClient
from service.urls import normalise_issuer, trusted

__all__ = ["BearerToken", "FhirClients"]


class BearerToken(httpx.Auth):
    """A token handed to us (a CDS client's ``fhirAuthorization.access_token``), never refreshed."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


class FhirClients:
    """Makes FHIR clients for one app (see the module docstring)."""

    def __init__(self, settings: Settings, smart: SmartApp | None = None) -> None:
        self.settings = settings
        self._smart = smart
        self._discovery = SmartDiscovery(ttl_seconds=settings.discovery_ttl_seconds,
                                         timeout=settings.fhir_timeout_seconds)
        self._auth: dict[tuple[str, bool], BackendServicesAuth] = {}
        self._pools: dict[str, tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]] = {}

    def _pool(self, base_url: str) -> httpx.AsyncClient:
        """The connection pool to ``base_url`` on the running loop (made on first use)."""
        loop = asyncio.get_running_loop()
        key = base_url.rstrip("/") + "/"
        found = self._pools.get(key)
        if found is None or found[0] is not loop or found[1].is_closed:
            limit = self.settings.fhir_max_connections
            pool = httpx.AsyncClient(
                base_url=key, timeout=httpx.Timeout(self.settings.fhir_timeout_seconds),
                limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
                follow_redirects=False)
            self._pools[key] = found = (loop, pool)
        return found[1]

    def _client(self, base_url: str, auth: httpx.Auth | None,
                request_id: str | None) -> FhirClient:
        return FhirClient(base_url, settings=self.settings, auth=auth, request_id=request_id,
                          http=self._pool(base_url))

    async def aclose(self) -> None:
        """Close the pools made on this loop (the app's shutdown); others are forgotten."""
        loop = asyncio.get_running_loop()
        pools, self._pools = self._pools, {}
        for owner, pool in pools.values():
            if owner is loop:
                await pool.aclose()

    # -- REST API: Backend Services -------------------------------------------------------------

    def issuer(self, fhir_base: str | None) -> str:
        """``fhir_base`` when it is allowed, else the first allowed server; InputError otherwise."""
        allowed = self.settings.allowed_issuers
        if not allowed:
            raise AuthError("No FHIR server is configured (KETAMINE_ALLOWED_ISSUERS).")
        if fhir_base is None:
            return normalise_issuer(allowed[0])
        wanted = trusted(fhir_base, allowed)
        if wanted is None:
            raise InputError("fhir_base is not one of the FHIR servers this service may use.")
        return wanted

    async def backend_auth(self, iss: str, *, write: bool = False) -> httpx.Auth | None:
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

    async def backend(self, fhir_base: str | None, *, write: bool = False,
                      request_id: str | None = None) -> FhirClient:
        """A client for an allowed server; use it as ``async with``. ``request_id``: the
        ``X-Request-ID`` to send (see FhirClient)."""
        iss = self.issuer(fhir_base)
        return self._client(iss, await self.backend_auth(iss, write=write), request_id)

    # -- A clinician's launch -------------------------------------------------------------------

    def launch(self, iss: str, session_key: str, *, request_id: str | None = None) -> FhirClient:
        """The launching EHR, with the clinician's (refreshed) access token."""
        if self._smart is None:  # pragma: no cover - the app always has a SMART client
            raise AuthError("No SMART client is configured.")
        return self._client(iss, SessionAuth(self._smart, session_key), request_id)

    # -- A CDS call ---------------------------------------------------------------------------

    def cds(self, fhir_server: str | None, access_token: str | None, *,
            request_id: str | None = None) -> FhirClient:
        """The hook's ``fhirServer``; PrefetchIncomplete when it cannot be used."""
        if not fhir_server or access_token is None:
            problem = "the request has no fhirServer and fhirAuthorization"
        elif (server := trusted(fhir_server, self.settings.allowed_issuers)) is None:
            problem = "fhirServer is not one of the FHIR servers this service may use"
        else:
            return self._client(server, BearerToken(access_token), request_id)
        raise PrefetchIncomplete(f"Prefetch incomplete and {problem}.")

    # -- The command line ---------------------------------------------------------------------

    async def command_line(self, base_url: str, *, token: str | None,
                           write: bool = False) -> tuple[FhirClient, str]:
        """The client for a server named on the command line, and how it authenticates
        (``bearer token``, ``backend services`` or ``none``)."""
        # A one-shot command owns its connections: no pool outlives its event loop.
        if token:
            return FhirClient(base_url, settings=self.settings,
                              auth=BearerToken(token)), "bearer token"
        if self.settings.private_key_file is not None or self.settings.client_secret:
            if trusted(base_url, self.settings.allowed_issuers) is None:
                raise InputError(f"{base_url} is not in KETAMINE_ALLOWED_ISSUERS: Backend Services "
                                 "credentials go only to an allowed FHIR server")
            iss = self.issuer(base_url)
            auth = await self.backend_auth(iss, write=write)
            return FhirClient(iss, settings=self.settings, auth=auth), "backend services"
        return self.plain(base_url), "none"

    def plain(self, base_url: str) -> FhirClient:
        """A server without a token (its own connections)."""
        return FhirClient(base_url, settings=self.settings)

    # -- The audit trail ------------------------------------------------------------------------

    def audit(self) -> FhirClient:
        """The server AuditEvents go to (an internal repository: no token; its own connections,
        as the command line sends from a loop of its own)."""
        if not self.settings.audit_fhir_base:
            raise AuthError("No audit server is configured (KETAMINE_AUDIT_FHIR_BASE).")
        return self.plain(self.settings.audit_fhir_base)
