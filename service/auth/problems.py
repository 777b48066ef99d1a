"""RFC 9457 problem details for authentication failures, with RFC 6750 ``WWW-Authenticate``."""

from __future__ import annotations

from html import escape
from typing import Literal

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from service.errors import LaunchError, TokenError

__all__ = [
    "BearerError",
    "bearer_error_handler",
    "launch_error_page",
    "problem",
]

PROBLEM_JSON = "application/problem+json"
BearerCode = Literal["invalid_request", "invalid_token", "insufficient_scope"]
_STATUS: dict[str, int] = {"invalid_request": 400, "invalid_token": 401, "insufficient_scope": 403}
_TITLE: dict[str, str] = {
    "invalid_request": "Malformed authentication",
    "invalid_token": "Authentication required",
    "insufficient_scope": "Insufficient scope",
}


class BearerError(TokenError):
    """A request to the REST API that does not carry a usable bearer token.

    ``str(err)`` is the problem's ``detail``: it never contains the token itself.
    """

    def __init__(self, detail: str, code: BearerCode = "invalid_token", *, scope: str = "",
                 missing: bool = False) -> None:
        super().__init__(detail)
        self.code = code
        self.scope = scope
        self.missing = missing
        """No credentials at all: RFC 6750 says to answer without an ``error`` code then."""

    @property
    def status(self) -> int:
        return _STATUS[self.code]

    def www_authenticate(self) -> str:
        if self.missing:
            return 'Bearer realm="ketamine-screen"'
        value = f'Bearer realm="ketamine-screen", error="{self.code}"'
        value += f', error_description="{_quote(str(self))}"'
        if self.scope:
            value += f', scope="{self.scope}"'
        return value


def problem(status: int, title: str, detail: str, slug: str,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"type": f"urn:ketamine-screen:problem:{slug}", "title": title,
            "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def bearer_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BearerError)  # noqa: S101 - registered for BearerError only
    return problem(exc.status, _TITLE[exc.code], str(exc), exc.code.replace("_", "-"),
                   headers={"WWW-Authenticate": exc.www_authenticate()})


def launch_error_page(request: Request, err: LaunchError | TokenError,
                      status: int = 400) -> Response:
    """A plain page for the clinician (problem+json for non-browser clients)."""
    if "text/html" not in request.headers.get("accept", ""):
        title = "Launch failed" if status != 401 else "Session required"
        return problem(status, title, str(err), "launch-failed" if status != 401 else "session")
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>Launch failed</title></head><body><h1>The app could not be launched</h1>"
        f"<p id='problem'>{escape(str(err))}</p>"
        "<p>Close this window and launch the app again from the patient's chart.</p>"
        "</body></html>"
    )
    return HTMLResponse(body, status_code=status)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")
