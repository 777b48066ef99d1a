"""Dependencies shared by the route modules, as ``Annotated`` aliases.

Every route needs credentials except the few listed in :data:`PUBLIC_ROUTES`
(``tests/auth/test_route_protection.py`` walks ``app.routes`` and enforces it):

* REST API routes take a bearer JWT: declare ``caller: RequireScreen`` (scope ``ketamine.screen``)
  or ``caller: RequireWrite`` (scope ``ketamine.write``) as a parameter, or
  ``dependencies=[Depends(require_scope("..."))]`` on the router.
* Clinician pages take the launch cookie: ``launch: RequireSession``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.auth.api_tokens import ApiTokenVerifier, Caller
from service.auth.cookies import browser_id
from service.auth.problems import BearerError
from service.auth.scopes import API_SCOPES, SCOPE_SCREEN, SCOPE_WRITE
from service.auth.session import SessionExpired, SmartSession, fresh_session, session_key
from service.auth.smart import SmartApp
from service.config import Settings

__all__ = [
    "PUBLIC_PREFIXES",
    "PUBLIC_ROUTES",
    "ActiveLaunch",
    "Caller",
    "CurrentCaller",
    "RequireScreen",
    "RequireSession",
    "RequireWrite",
    "is_public",
    "require_scope",
]

PUBLIC_ROUTES: dict[str, frozenset[str]] = {
    # health
    "/healthz": frozenset({"GET"}),
    "/readyz": frozenset({"GET"}),
    # discovery
    "/cds-services": frozenset({"GET"}),
    "/openapi.json": frozenset({"GET"}),
    "/docs": frozenset({"GET"}),
    "/docs/oauth2-redirect": frozenset({"GET"}),
    "/redoc": frozenset({"GET"}),
    # the SMART launch flow (it authenticates the user itself)
    "/launch": frozenset({"GET"}),
    "/launch/standalone": frozenset({"GET"}),
    "/callback": frozenset({"GET"}),
}
"""The only (path, methods) answered without a token or a launch cookie; HEAD follows GET."""
PUBLIC_PREFIXES: dict[str, frozenset[str]] = {
    "/.well-known/": frozenset({"GET"}),
    "/static/": frozenset({"GET"}),
}


def is_public(method: str, path: str) -> bool:
    method = "GET" if method == "HEAD" else method
    if method in PUBLIC_ROUTES.get(path, frozenset()):
        return True
    return any(path.startswith(p) and method in m for p, m in PUBLIC_PREFIXES.items())


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="JWT from KETAMINE_API_ISSUER; scopes: "
    + "; ".join(f"{k} ({v})" for k, v in API_SCOPES.items()),
)


async def current_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None:
        if request.headers.get("authorization"):
            raise BearerError("Only 'Authorization: Bearer <JWT>' is accepted.")
        raise BearerError("This API needs a bearer token.", missing=True)
    verifier: ApiTokenVerifier = request.app.state.api_tokens
    return await verifier.verify(credentials.credentials)


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def require_scope(scope: str) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that admits callers whose token carries ``scope``."""

    async def dependency(caller: CurrentCaller) -> Caller:
        if scope not in caller.scopes:
            raise BearerError(f"This call needs the '{scope}' scope.", "insufficient_scope",
                              scope=scope)
        return caller

    dependency.__name__ = f"require_{scope.replace('.', '_')}"
    return dependency


RequireScreen = Annotated[Caller, Depends(require_scope(SCOPE_SCREEN))]
RequireWrite = Annotated[Caller, Depends(require_scope(SCOPE_WRITE))]


@dataclass(frozen=True, slots=True)
class ActiveLaunch:
    """A clinician's launch: the session (tokens fresh for a minute) and its store key."""

    key: str
    handle: str
    session: SmartSession


async def current_launch(
    request: Request,
    ctx: Annotated[str | None, Query(max_length=64, description="launch handle")] = None,
) -> ActiveLaunch:
    settings: Settings = request.app.state.settings
    bid = browser_id(request, settings)
    if bid is None or not ctx:
        raise SessionExpired("No active launch in this browser; open the app from the EHR.")
    smart: SmartApp = request.app.state.smart
    key = session_key(bid, ctx)
    return ActiveLaunch(key=key, handle=ctx, session=await fresh_session(smart, key))


RequireSession = Annotated[ActiveLaunch, Depends(current_launch)]
