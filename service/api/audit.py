"""One audit record per request (:mod:`service.audit`), whatever its outcome.

:class:`AuditMiddleware` sits outside FastAPI's whole stack (inside the request id), so a 500 is
recorded too. A request refused before routing (a declared body over the limit, 503 when busy:
:mod:`service.api.limits`) reached no route and nobody was authenticated: it is not an access and
is in the access log only. Each request gets an :class:`Access`
that the dependencies fill in: who (``service.api.deps``: the API caller, the CDS client, the
clinician of the launch), and the routes the patient (``access: AuditAccess``). The error handler
marks a failed authentication (:func:`note_error`), recorded as action ``authenticate``. The
action is the route's, from :data:`ACTIONS`, else by kind of route (``/api/``: ``api``; a page:
``read`` or ``write``). Health checks, discovery, static files and unknown paths are not
accesses and are not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.middleware import request_id_of
from service.audit import AuditRecord, AuditTrail, WhoKind
from service.errors import BearerError, ServiceError, SessionExpired

__all__ = ["ACTIONS", "Access", "AuditAccess", "AuditMiddleware", "access_of", "note_error"]

ACTIONS: dict[tuple[str, str], str] = {
    ("GET", "/launch"): "launch-begin",
    ("GET", "/launch/standalone"): "launch-begin",
    ("GET", "/callback"): "launch",
    ("GET", "/demo/launch/{patient_id}"): "launch",
    ("GET", "/app"): "screen",
    ("POST", "/app/save"): "save",
    ("POST", "/app/session"): "session",
    ("POST", "/api/v1/screenings"): "screen",
    ("POST", "/api/v1/screenings/$evaluate"): "screen",
    ("POST", "/api/v1/sessions"): "session",
    ("POST", "/cds-services/{service_id}"): "cds",
    ("POST", "/cds-services/{service_id}/feedback"): "cds-feedback",
}
"""(method, route path) -> action, where the kind of route does not say it."""
_NOT_ACCESSES = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/cds-services"),
                 ("GET", "/openapi.json"), ("GET", "/.well-known/jwks.json")}


@dataclass(slots=True)
class Access:
    """What one request did, filled in as it is served."""

    who: str | None = None
    who_kind: WhoKind = "unknown"
    patient: str | None = None
    action: str | None = None
    """Set by a route when it did more than its usual action (a screening written back)."""
    on_behalf_of: str | None = None
    error: str | None = None
    auth_failed: bool = False

    def by(self, who: str | None, kind: WhoKind) -> None:
        self.who, self.who_kind = who, kind


def access_of(request: Request) -> Access:
    """This request's Access (a detached one when the request is not audited)."""
    access = request.scope.get("state", {}).get("audit")
    return access if isinstance(access, Access) else Access()


AuditAccess = Annotated[Access, Depends(access_of)]


def note_error(request: Request, exc: ServiceError) -> None:
    """Called by the error handler: the error's class, and whether authentication failed."""
    access = access_of(request)
    access.error = type(exc).__name__
    if isinstance(exc, SessionExpired) or (
            isinstance(exc, BearerError) and exc.code != "insufficient_scope"):
        access.auth_failed = True


def _action(method: str, path: str, access: Access) -> str:
    if access.auth_failed:
        return "authenticate"
    if access.action:
        return access.action
    if (method, path) in ACTIONS:
        return ACTIONS[(method, path)]
    if path.startswith("/api/"):
        return "api"
    return "read" if method in ("GET", "HEAD") else "write"


class AuditMiddleware:
    def __init__(self, app: ASGIApp, trail: AuditTrail) -> None:
        self.app = app
        self.trail = trail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        access = Access()
        scope.setdefault("state", {})["audit"] = access
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self._record(scope, access, status)

    def _record(self, scope: Scope, access: Access, status: int) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None)
        method = "GET" if scope["method"] == "HEAD" else str(scope["method"])
        if not isinstance(path, str) or (method, path) in _NOT_ACCESSES:
            return  # no route: a 404 or 405, not an access to anything
        self.trail.record(AuditRecord(
            action=_action(method, path, access),
            outcome="success" if status < 400 else "failure",
            who=access.who, who_kind=access.who_kind, patient=access.patient,
            request_id=request_id_of(scope), route=f"{method} {path}", status=status,
            detail=access.error, on_behalf_of=access.on_behalf_of))
