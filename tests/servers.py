"""ASGI apps served for real (uvicorn in a thread, on a free loopback port) for the tests that
need a socket: browsers, the SMART test server, the service behind it.

:meth:`ThreadServer.start` returns once uvicorn has finished its startup (or failed it): it waits
on an event uvicorn's own startup sets, never on a guessed sleep; a server that never starts is
caught by the test's pytest-timeout.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from typing import Any, Self, TypeVar

import uvicorn

__all__ = ["ThreadServer", "free_port"]

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThreadServer(uvicorn.Server):
    """``ThreadServer(app, port=...).start()`` ... ``.stop()``."""

    def __init__(self, app: Any, *, port: int | None = None, **options: Any) -> None:
        self.port = port or free_port()
        options.setdefault("log_level", "warning")
        super().__init__(uvicorn.Config(app, host="127.0.0.1", port=self.port, **options))
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self.run, daemon=True)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()

    def start(self) -> Self:
        self._thread.start()
        self.ready.wait()
        if not self.started:
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{self.port}")
        return self

    def call(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the server's own event loop (its stores' locks belong to it)."""
        assert self.loop is not None, "not started"
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def stop(self) -> None:
        self.should_exit = True
        self._thread.join(timeout=10)
