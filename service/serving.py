"""How ``ketamine-screen serve`` runs the app: uvicorn, with bounds on what a client may hold.

* Headers: at most 16 KiB (``h11_max_incomplete_event_size``) and, with
  :class:`HeaderDeadlineProtocol`, complete within ``KETAMINE_HEADER_TIMEOUT_SECONDS`` of the
  connection opening or of the previous response, else the connection is closed. uvicorn has no
  such deadline of its own: a client sending a byte now and then would hold its connection for
  ever (its keep-alive timer stops at the first byte).
* Idle keep-alive connections close after ``KETAMINE_KEEP_ALIVE_SECONDS``.
* ``KETAMINE_MAX_CONNECTIONS`` connections and requests at once; beyond, uvicorn answers 503.
* Bodies are the app's part (:mod:`service.api.limits`: size, deadline, heavy work).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

from service.config import Settings

__all__ = ["MAX_HEADER_BYTES", "HeaderDeadlineProtocol", "serve", "uvicorn_options"]

MAX_HEADER_BYTES = 16 * 1024


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are late."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_seconds = float(getattr(self.config, "header_timeout_seconds", 10.0))

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self._header_seconds, self._too_late)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_in(self) -> bool:
        return self.conn.their_state is not h11.IDLE

    def _too_late(self) -> None:
        self._header_deadline = None
        if not self._headers_in() and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._headers_in():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers have the same time
            if self._headers_in():  # a pipelined request was already in
                self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments ``serve`` passes to ``uvicorn.Config``."""
    return {"http": HeaderDeadlineProtocol,
            "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
            "timeout_keep_alive": settings.keep_alive_seconds,
            "limit_concurrency": settings.max_connections}


class _Config(uvicorn.Config):
    """uvicorn's Config, carrying the header deadline to :class:`HeaderDeadlineProtocol`."""

    def __init__(self, *args: Any, header_timeout_seconds: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_seconds = header_timeout_seconds


def serve(settings: Settings, *, host: str, port: int, workers: int,
          log_config: dict[str, Any] | None = None, log_level: str = "info") -> bool:
    """Run the app until interrupted (``workers`` processes when more than one); False when a
    single process did not start. uvicorn's access log is off: ``service.access`` writes the
    line, with the route template and never the query string."""
    config = _Config("service.main:create_app", factory=True, host=host, port=port,
                     workers=workers, log_config=log_config, log_level=log_level,
                     access_log=False, proxy_headers=True, server_header=False,
                     timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
                     header_timeout_seconds=settings.header_timeout_seconds,
                     **uvicorn_options(settings))
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return True
    server = uvicorn.Server(config)
    server.run()
    return server.started
