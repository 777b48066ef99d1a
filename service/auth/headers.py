"""Security headers on every response, and no bearer token accepted in a URL.

``frame-ancestors`` lets the EHR embed the app in its iframe and nobody else
(https://www.w3.org/TR/CSP3/#directive-frame-ancestors). Tokens in a query string end up in
access logs and Referer headers (RFC 6750 section 5.3), so such requests are refused and the
value is blanked before any logger sees the URL.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeadersMiddleware"]

_TOKEN_PARAMS = {"access_token", "id_token", "refresh_token"}


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, frame_ancestors: list[str]) -> None:
        self.app = app
        ancestors = " ".join(frame_ancestors) or "'none'"
        self._csp = (f"frame-ancestors {ancestors}; object-src 'none'; base-uri 'none'; "
                     "form-action 'self'").encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _redact_tokens(scope):
            await self._refuse(send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"text/html"):
                    headers.append((b"content-security-policy", self._csp))
                headers.append((b"x-content-type-options", b"nosniff"))
                # No Referer: the callback URL carries a code and the app URL a launch handle.
                headers.append((b"referrer-policy", b"no-referrer"))
                if b"cache-control" not in names and not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({
            "type": "urn:ketamine-screen:problem:invalid-request",
            "title": "Malformed authentication",
            "status": 400,
            "detail": "Tokens are never accepted in a URL; send 'Authorization: Bearer ...'.",
        }).encode()
        await send({"type": "http.response.start", "status": 400, "headers": [
            (b"content-type", b"application/problem+json"),
            (b"www-authenticate", b'Bearer realm="ketamine-screen", error="invalid_request"'),
            (b"x-content-type-options", b"nosniff"),
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
