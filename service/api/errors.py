"""Every error the API answers with is RFC 9457 ``application/problem+json``, with a request id.

    ServiceError subclass          status
    ├── InputError / BundleError   422  the caller's data cannot be used
    ├── FhirNotFound               404
    ├── FhirAuthError              502  the EHR refused our credentials (its text quoted)
    ├── FhirUnavailable            503
    ├── FhirTimeout                504
    ├── FhirRejected               422 when the EHR rejected content the caller sent, else 502
    ├── FhirProtocolError, other   502
    ├── TokenError (not Bearer)    502  the EHR's token endpoint refused us
    └── AuthError, MapError        503  this deployment is not configured for the call
    RequestValidationError         422  with ``errors``: where and what, never the input itself

Bearer and launch errors keep the handlers of :mod:`service.auth.web`; all problem bodies get
``request_id`` from :class:`RequestIdMiddleware` (https://www.rfc-editor.org/rfc/rfc9457#section-3.2
allows extension members). Logs carry ids and classes only, never record contents.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth.problems import PROBLEM_JSON, problem
from service.errors import (
    AuthError,
    FhirAuthError,
    FhirError,
    FhirNotFound,
    FhirRejected,
    FhirTimeout,
    FhirUnavailable,
    InputError,
    ServiceError,
    TokenError,
)

__all__ = ["RequestIdMiddleware", "current_request_id", "install_errors", "service_error_status"]

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
_API_PREFIXES = ("/api/", "/cds-services")
current_request_id: ContextVar[str] = ContextVar("request_id", default="-")
"""The id of the request being served (``-`` outside a request), for log lines."""


def service_error_status(exc: ServiceError) -> tuple[int, str, str]:
    """(status, title, slug) of a ServiceError."""
    if isinstance(exc, InputError):
        return 422, "Unusable input", "input"
    if isinstance(exc, FhirNotFound):
        return 404, "Not found on the FHIR server", "fhir-not-found"
    if isinstance(exc, FhirAuthError):
        return 502, "The FHIR server refused our credentials", "fhir-auth"
    if isinstance(exc, FhirTimeout):
        return 504, "The FHIR server did not answer in time", "fhir-timeout"
    if isinstance(exc, FhirUnavailable):
        return 503, "The FHIR server is unavailable", "fhir-unavailable"
    if isinstance(exc, FhirRejected):
        if exc.status in (400, 422):
            return 422, "The FHIR server rejected the data", "fhir-rejected"
        return 502, "The FHIR server rejected the request", "fhir-rejected"
    if isinstance(exc, FhirError):
        return 502, "The FHIR server's answer is unusable", "fhir-protocol"
    if isinstance(exc, TokenError):
        return 502, "No access token from the FHIR server", "upstream-token"
    if isinstance(exc, AuthError):
        return 503, "Not configured for this FHIR server", "not-configured"
    return 503, "Service not configured", "not-configured"


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)  # noqa: S101 - registered for ServiceError only
    status, title, slug = service_error_status(exc)
    log.warning("%s %s -> %d %s (request %s)", request.method, request.url.path, status,
                type(exc).__name__, current_request_id.get())
    return problem(status, title, str(exc), slug)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    if not request.url.path.startswith(_API_PREFIXES):
        return await request_validation_exception_handler(request, exc)
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()]
    detail = "; ".join(".".join(str(p) for p in e.get("loc", ())) + f": {e.get('msg', '')}"
                       for e in exc.errors()[:5])
    response = problem(422, "Invalid request", detail or "The request is not valid.",
                       "validation")
    body = json.loads(bytes(response.body))
    body["errors"] = errors
    return Response(json.dumps(body), status_code=422, media_type=PROBLEM_JSON)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    if not request.url.path.startswith(_API_PREFIXES):
        return await http_exception_handler(request, exc)
    return problem(exc.status_code, _reason(exc.status_code), str(exc.detail), "http",
                   headers=dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed with %s (request %s)", request.method, request.url.path,
              type(exc).__name__, current_request_id.get(), exc_info=exc)
    return problem(500, "Internal error", "The service failed; quote the request id.", "internal")


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class RequestIdMiddleware:
    """``X-Request-ID`` on every response (the caller's when well-formed, else a new one), and
    ``request_id`` in every problem+json body."""

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
        pending: list[Message] = []

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
                if dict(headers).get(b"content-type", b"").startswith(PROBLEM_JSON.encode()):
                    pending.append(message)
                    return
            elif message["type"] == "http.response.body" and pending:
                pending.append(message)
                if message.get("more_body", False):
                    return
                await _send_problem(send, pending, request_id)
                return
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request_id.reset(token)


async def _send_problem(send: Send, messages: list[Message], request_id: str) -> None:
    start, bodies = messages[0], messages[1:]
    raw = b"".join(m.get("body", b"") for m in bodies)
    try:
        body = json.loads(raw)
        if isinstance(body, dict):
            body.setdefault("request_id", request_id)
            raw = json.dumps(body).encode()
    except ValueError:
        pass
    start["headers"] = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
    start["headers"].append((b"content-length", str(len(raw)).encode()))
    await send(start)
    await send({"type": "http.response.body", "body": raw})


def install_errors(app: FastAPI) -> None:
    """Call once from ``create_app``, after ``install_auth`` (so the request id is outermost)."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(RequestIdMiddleware)
