"""The service's real log configuration (:func:`service.logs.configure_logging`) writing to a
buffer, for tests that read the JSON lines a deployment would get; the logging setup that was
there before (pytest's) comes back afterwards."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from service.logs import configure_logging

_TOUCHED = ("", "service", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore",
            "authlib")


@dataclass
class Captured:
    stream: io.StringIO = field(default_factory=io.StringIO)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        """Every line, parsed: each must be one JSON object."""
        return [json.loads(line) for line in self.text.splitlines()]


@contextmanager
def captured_logs(level: str = "INFO") -> Iterator[Captured]:
    saved = {}
    for name in _TOUCHED:
        logger = logging.getLogger(name or None)
        saved[name] = (logger.level, list(logger.handlers), logger.propagate,
                       list(logger.filters), logger.disabled)
    captured = Captured()
    configure_logging(level, captured.stream, force=True)
    try:
        yield captured
    finally:
        for name, (lvl, handlers, propagate, filters, disabled) in saved.items():
            logger = logging.getLogger(name or None)
            logger.setLevel(lvl)
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.filters[:] = filters
            logger.disabled = disabled
