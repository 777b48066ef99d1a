"""One access line and the request metrics for every request, by route template.

The line (logger ``service.access``) carries method, route template, status and duration, and the
request id from the context (:mod:`service.logs`); never the raw path or its query, which may hold
a patient id, a launch handle or an authorization code. It replaces uvicorn's own access log,
which knows only the raw target and the status. The route is the template Starlette matched
(``/cds-services/{service_id}``); a request that matched nothing is ``unmatched``.
"""

from __future__ import annotations

import logging
import time

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import HTTP_DURATION, HTTP_REQUESTS

__all__ = ["ObserveMiddleware", "route_template"]

access_log = logging.getLogger("service.access")


def route_template(scope: Scope) -> str:
    """The matched route's path template; a mount (the static files) is its prefix and
    ``/{path}``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    return path + "/{path}" if isinstance(route, Mount) else path


class ObserveMiddleware:
    """Wraps the app inside the request-id middleware (the id is set when the line is written)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed = time.perf_counter() - started
            method = str(scope.get("method", "-"))
            route = route_template(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_DURATION.labels(method, route).observe(elapsed)
            access_log.info("%s %s %d", method, route, status,
                            extra={"method": method, "route": route, "status": status,
                                   "duration_ms": round(elapsed * 1000, 1)})
