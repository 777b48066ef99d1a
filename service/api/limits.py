"""Bounded input: what a request may cost before it is parsed or its sender authenticated.

* **Body size.** Every route takes ``KETAMINE_MAX_BODY_BYTES`` unless :data:`ROUTE_GATES` gives it
  a limit of its own (CDS calls, ``$evaluate``), enforced by Starlette's
  ``RequestBodyLimitMiddleware`` (FastAPI's ``max_body_size`` is not used: it is fixed per app or
  per route at import, not per route and app). A ``Content-Length`` above the limit
  is answered 413 before a byte is read, and a body without one is cut off with 413 as it streams
  past the limit, so nothing beyond it is ever buffered. FastAPI reads a declared body before
  it runs the route's dependencies, so this is also what an unauthenticated caller can make us
  hold.
* **Heavy work.** The routes :data:`ROUTE_GATES` marks heavy (they parse large bodies, read a
  patient's record, screen) share ``KETAMINE_MAX_HEAVY_REQUESTS`` places per process; a request
  that finds none is answered 503 with ``Retry-After`` before its body is read.
* **Slow bodies.** :class:`BodyDeadlineMiddleware` gives a client ``KETAMINE_BODY_TIMEOUT_SECONDS``
  to send its whole body, then answers 408 (the connection then closes: the body is unfinished).
  Slow headers and idle connections are the server's part (:mod:`service.serving`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.middleware import PROBLEM_JSON, request_id_of
from service.config import Settings
from service.errors import ServiceBusy, problem_body

__all__ = ["ROUTE_GATES", "BodyDeadlineMiddleware", "BodyTimeout", "Gate", "HeavyWork",
           "RouteGateMiddleware"]


@dataclass(frozen=True, slots=True)
class Gate:
    limit: Callable[[Settings], int] | None = None
    """The route's own body limit (None: the app's ``max_body_bytes``)."""
    heavy: bool = False
    """Takes one of the process's places for heavy work."""


ROUTE_GATES: dict[tuple[str, str], Gate] = {
    ("POST", "/api/v1/screenings/$evaluate"): Gate(lambda s: s.max_bundle_bytes, heavy=True),
    ("POST", "/api/v1/screenings"): Gate(heavy=True),
    ("POST", "/api/v1/sessions"): Gate(heavy=True),
    ("POST", "/cds-services/{service_id}"): Gate(lambda s: s.max_cds_body_bytes, heavy=True),
}
"""(method, route path) -> its gate; every other route has the app's limit and is not heavy."""


class HeavyWork:
    """The places for heavy work in one process (one app, one event loop: a counter will do)."""

    def __init__(self, places: int) -> None:
        self.places = places
        self.busy = 0


class RouteGateMiddleware:
    """Applies the body limits and :data:`ROUTE_GATES` before routing, so before any body is
    read. Outside FastAPI's exception handling, so its refusals are answered here."""

    def __init__(self, app: ASGIApp, settings: Settings, heavy: HeavyWork) -> None:
        self.app = app
        self.heavy = heavy
        self._default = settings.max_body_bytes
        self._gates = [(method, compile_path(path)[0],
                        gate.limit(settings) if gate.limit else self._default, gate.heavy)
                       for (method, path), gate in ROUTE_GATES.items()]

    def _gate(self, scope: Scope) -> tuple[int, bool]:
        for method, pattern, limit, heavy in self._gates:
            if scope["method"] == method and pattern.match(scope["path"]):
                return limit, heavy
        return self._default, False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, heavy = self._gate(scope)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(scope, receive, send, 413, "Content Too Large",
                          f"The request body is larger than this route takes ({limit} bytes).")
            return
        # A body without a Content-Length is counted as it streams in (413 past the limit).
        app = RequestBodyLimitMiddleware(self.app, limit)
        if not heavy:
            await app(scope, receive, send)
            return
        if self.heavy.busy >= self.heavy.places:
            err = ServiceBusy(f"The service is busy ({self.heavy.places} heavy requests at "
                              "once); try again shortly.")
            await _refuse(scope, receive, send, err.http_status, err.title, str(err),
                          err.problem_type, err.headers())
            return
        self.heavy.busy += 1
        try:
            await app(scope, receive, send)
        finally:
            self.heavy.busy -= 1


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, title: str,
                  detail: str, problem_type: str = "http",
                  headers: dict[str, str] | None = None) -> None:
    body = problem_body(status, title, detail, problem_type, request_id_of(scope))
    response = JSONResponse(body, status, headers, media_type=PROBLEM_JSON)
    await response(scope, receive, send)


class BodyTimeout(HTTPException):
    """An HTTPException, as FastAPI lets only those out of its body reading unchanged."""

    def __init__(self) -> None:
        super().__init__(408, "The request body did not arrive in time.")


class BodyDeadlineMiddleware:
    """408 when the body is not complete ``seconds`` after the request started."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        complete = False

        async def receive_in_time() -> Message:
            nonlocal complete
            if complete:  # the body is in: what remains is waiting for a disconnect
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout() from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, receive_in_time, send)
