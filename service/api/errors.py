"""How errors are answered: RFC 9457 ``application/problem+json`` with a request id, or, for a
clinician's browser meeting a launch or session error, a plain HTML page.

Every deliberate error is a :class:`service.errors.ServiceError` and carries its own status, title
and problem type (the tree is drawn in :mod:`service.errors`): :func:`answer_error` is the one
handler for all of them. Request validation (422, with ``errors``: where and what, never the input
itself) and ``HTTPException`` answer problem+json on the API paths and FastAPI's defaults
elsewhere; anything unexpected is a 500 problem. The request id comes from
:class:`service.api.middleware.RequestIdMiddleware` (``X-Request-ID`` and the security headers
are on every response, this 500 included: they wrap the whole app) and is put into the body
where the body is built (https://www.rfc-editor.org/rfc/rfc9457#section-3.2 allows extension
members). A deliberate error is noted in the request's audit record.
Logs carry ids and classes only, never record contents.
"""

from __future__ import annotations

import logging
from html import escape
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.audit import note_error
from service.api.middleware import PROBLEM_JSON, request_id_of
from service.api.observe import route_template
from service.errors import ServiceError, SessionExpired, problem_body

__all__ = ["answer_error", "install_errors", "problem_response"]

log = logging.getLogger(__name__)

_API_PREFIXES = ("/api/", "/cds-services")


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=int(body["status"]), media_type=PROBLEM_JSON,
                        headers=headers)


def _error_page(err: ServiceError) -> HTMLResponse:
    """The plain page a clinician sees when a launch fails or the session is gone; when the
    session form's draft was kept, it says for how long and how to get it back."""
    kept = err.draft_kept_for if isinstance(err, SessionExpired) else None
    if kept:
        title, heading = "Session ended", "Your session has ended"
        todo = (f"<p id='draft-kept'>Your draft is kept on this server for {escape(kept)}. "
                "Launch the app again from the patient's chart to continue; the form will "
                "reopen with what you typed. Nothing has been written to the chart yet.</p>")
    else:
        title, heading = "Launch failed", "The app could not be launched"
        todo = "<p>Close this window and launch the app again from the patient's chart.</p>"
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<link rel='stylesheet' href='/static/app.css'>"
        f"<title>{title}</title></head><body><main id='main'><h1>{heading}</h1>"
        f"<p id='problem'>{escape(str(err))}</p>{todo}</main></body></html>"
    )
    return HTMLResponse(body, status_code=err.http_status, headers=err.headers())


async def answer_error(request: Request, exc: Exception) -> Response:
    """The one handler for every ServiceError: problem+json, or the HTML page for a browser."""
    assert isinstance(exc, ServiceError)  # noqa: S101 - registered for ServiceError only
    note_error(request, exc)
    # The route template, not the path: a path can hold a patient id.
    log.warning("%s %s -> %d %s", request.method, route_template(request.scope),
                exc.http_status, type(exc).__name__)
    if exc.page and "text/html" in request.headers.get("accept", ""):
        return _error_page(exc)
    return problem_response(exc.problem(request_id_of(request.scope)), exc.headers())


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    if not request.url.path.startswith(_API_PREFIXES):
        return await request_validation_exception_handler(request, exc)
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()]
    detail = "; ".join(".".join(str(p) for p in e.get("loc", ())) + f": {e.get('msg', '')}"
                       for e in exc.errors()[:5])
    body = problem_body(422, "Invalid request", detail or "The request is not valid.",
                        "validation", request_id_of(request.scope))
    body["errors"] = errors
    return problem_response(body)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    if not request.url.path.startswith(_API_PREFIXES):
        return await http_exception_handler(request, exc)
    body = problem_body(exc.status_code, _reason(exc.status_code), str(exc.detail), "http",
                        request_id_of(request.scope))
    return problem_response(body, dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> Response:
    rid = request_id_of(request.scope)
    log.error("%s %s failed with %s", request.method, route_template(request.scope),
              type(exc).__name__, exc_info=exc, extra={"request_id": rid or "-"})
    body = problem_body(500, "Internal error", "The service failed; quote the request id.",
                        "internal", rid)
    return problem_response(body)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install_errors(app: FastAPI) -> None:
    """Call once from ``create_app``."""
    app.add_exception_handler(ServiceError, answer_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
