"""The two outermost middlewares: a request id on every response, and the security headers.

:class:`ServiceApp` puts them outside everything FastAPI builds, Starlette's error middleware
included, so every answer carries both: a 500, a 413 from the body limit, a 503 when busy.

``X-Request-ID`` is the caller's when well-formed, else a new one; it is kept in the request's
scope (:func:`request_id_of`, read where a problem body is built) and in
:data:`current_request_id` (log lines, and the ``X-Request-ID`` sent to the EHR).

The Content-Security-Policy allows this origin only (``default-src 'self'``, scripts from
``/static`` only, no inline script or style), stylesheets from this origin or https (the EHR's
``smart_style_url``), images from this origin or ``data:``; ``frame-ancestors`` lets the EHR
embed the app in its iframe and nobody else (https://www.w3.org/TR/CSP3/#directive-frame-ancestors).
``Strict-Transport-Security`` is sent when the service's public URL is https (RFC 6797).
Tokens in a query string end up in access logs and Referer headers (RFC 6750 section 5.3), so
such requests are refused and the value is blanked before any logger sees the URL.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import BearerError
from service.logs import request_id_var

__all__ = [
    "PROBLEM_JSON",
    "REQUEST_ID_HEADER",
    "RequestIdMiddleware",
    "SecurityHeadersMiddleware",
    "ServiceApp",
    "content_security_policy",
    "current_request_id",
    "request_id_of",
]

PROBLEM_JSON = "application/problem+json"
REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
_TOKEN_PARAMS = {"access_token", "id_token", "refresh_token"}
current_request_id: ContextVar[str] = request_id_var
"""The id of the request being served (``-`` outside a request); :mod:`service.logs` puts it
on every log line."""


def request_id_of(scope: Scope) -> str | None:
    """The id :class:`RequestIdMiddleware` gave this request."""
    rid = scope.get("state", {}).get("request_id")
    return rid if isinstance(rid, str) else None


class RequestIdMiddleware:
    """``X-Request-ID`` on every response: the caller's when well-formed, else a new one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _VALID_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = current_request_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request_id.reset(token)


class ServiceApp(FastAPI):
    """FastAPI with :attr:`outermost` wrapped around the whole stack it builds."""

    outermost: list[Callable[[ASGIApp], ASGIApp]]

    def build_middleware_stack(self) -> ASGIApp:
        app = super().build_middleware_stack()
        for wrap in reversed(getattr(self, "outermost", [])):
            app = wrap(app)
        return app


def content_security_policy(frame_ancestors: list[str]) -> str:
    ancestors = " ".join(frame_ancestors) or "'none'"
    return ("default-src 'self'; script-src 'self'; style-src 'self' https:; "
            "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
            f"base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, frame_ancestors: list[str], *, hsts: bool = False) -> None:
        self.app = app
        self._fixed = [(b"content-security-policy",
                        content_security_policy(frame_ancestors).encode()),
                       (b"x-content-type-options", b"nosniff"),
                       # No Referer: the callback URL carries a code, the app URL a launch handle.
                       (b"referrer-policy", b"no-referrer")]
        if hsts:
            self._fixed.append((b"strict-transport-security", b"max-age=31536000"))
        self._names = {name for name, _ in self._fixed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _redact_tokens(scope):
            await self._refuse(scope, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in self._names]
                names = {name.lower() for name, _ in headers}
                headers += self._fixed
                if b"cache-control" not in names and not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        err = BearerError("Tokens are never accepted in a URL; send 'Authorization: Bearer ...'.",
                          "invalid_request")
        body = json.dumps(err.problem(request_id_of(scope))).encode()
        await send({"type": "http.response.start", "status": err.http_status, "headers": [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"www-authenticate", b'Bearer realm="ketamine-screen", error="invalid_request"'),
            *self._fixed,
            (b"cache-control", b"no-store"),
        ]})
        await send({"type": "http.response.body", "body": body})


def _redact_tokens(scope: Scope) -> bool:
    """Blank token parameters in place (uvicorn logs this same scope); True when any was there."""
    raw: bytes = scope.get("query_string", b"")
    if not raw or b"token" not in raw:
        return False
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    if not any(name in _TOKEN_PARAMS for name, _ in pairs):
        return False
    cleaned = [(n, "REDACTED" if n in _TOKEN_PARAMS else v) for n, v in pairs]
    scope["query_string"] = urlencode(cleaned).encode("latin-1")
    return True
