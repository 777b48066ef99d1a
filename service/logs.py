"""Structured logs: one JSON object per line, from the service and from uvicorn, without PHI.

Every line carries ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message`` and
``request_id`` (``-`` outside a request); the access line of each request adds ``method``,
``route`` (the route template, never the raw path), ``status`` and ``duration_ms``
(:mod:`service.api.observe`). Formatting is python-json-logger's ``JsonFormatter`` on the standard
``logging`` module, so uvicorn's loggers and ours share one handler (:func:`uvicorn_log_config`).

What never reaches a line: query strings and fragments (:func:`strip_query`; uvicorn's access
log, when enabled, goes through :class:`AccessPathFilter`), tokens, codes, names, notes, values,
and raw patient ids: modules log :func:`pseudonym` of an id, a keyed hash (HMAC-SHA256 with
``KETAMINE_LOG_PSEUDONYM_KEY``, https://www.rfc-editor.org/rfc/rfc2104) that joins the lines of
one patient without naming them. A traceback keeps its frames and exception types but not the
exception messages, which may quote record contents.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import logging.config
import sys
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

__all__ = [
    "DEFAULT_PSEUDONYM_KEY",
    "AccessPathFilter",
    "ContextFilter",
    "ServiceJsonFormatter",
    "configure_logging",
    "pseudonym",
    "request_id_var",
    "set_pseudonym_key",
    "strip_query",
    "uvicorn_log_config",
]

DEFAULT_PSEUDONYM_KEY = "development-only-pseudonym-key"
"""The key outside production; ``service.config_report`` lists it as a production problem."""

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
"""The id of the request being served (``-`` outside a request); set by the request-id
middleware, read by every log line and sent to the EHR as ``X-Request-ID``."""

_key: bytes = DEFAULT_PSEUDONYM_KEY.encode()


def set_pseudonym_key(key: str) -> None:
    """Use ``key`` from now on (``configure_logging`` and ``create_app`` call it)."""
    global _key
    _key = key.encode()


def pseudonym(value: str | None) -> str:
    """A stable, keyed stand-in for a patient (or user) id: ``pt-`` and 16 hex digits.

    The same id gives the same pseudonym under one key, so a patient's lines can be joined;
    without the key the id cannot be recovered or confirmed by guessing.

    >>> set_pseudonym_key("k"); pseudonym("123") == pseudonym("Patient/123")
    True
    >>> pseudonym(None)
    '-'
    """
    if not value:
        return "-"
    plain = value.removeprefix("Patient/")
    digest = hmac.new(_key, plain.encode(), hashlib.sha256).hexdigest()
    return f"pt-{digest[:16]}"


def strip_query(target: str) -> str:
    """A URL or request target without its query string and fragment.

    >>> strip_query("/callback?code=abc&state=x#frag")
    '/callback'
    """
    return target.split("?", 1)[0].split("#", 1)[0]


class ContextFilter(logging.Filter):
    """Adds ``request_id`` to every record (attached to the handler, so every logger gets it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class AccessPathFilter(logging.Filter):
    """uvicorn's access records (``'%s - "%s %s HTTP/%s" %d'``) with the path's query removed."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            record.args = (client, method, strip_query(str(path)), version, status)
            record.method, record.route, record.status = method, strip_query(str(path)), status
        return True


def _safe_traceback(exc_info: Any) -> str:
    """Frames and exception class names of the whole chain, without the messages."""
    _, exc, _ = exc_info
    parts: list[str] = []
    seen: set[int] = set()
    while isinstance(exc, BaseException) and id(exc) not in seen:
        seen.add(id(exc))
        tb: TracebackType | None = exc.__traceback__
        frames = traceback.extract_tb(tb)
        parts.append(type(exc).__qualname__ + " at " + " <- ".join(
            f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames)))
        exc = exc.__cause__ or exc.__context__
    return "; caused by ".join(parts)


class ServiceJsonFormatter(JsonFormatter):
    """``time`` in UTC with milliseconds, ``level``, ``logger``, and tracebacks without text."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s %(request_id)s",
                         rename_fields={"levelname": "level", "name": "logger"},
                         json_ensure_ascii=False)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")
        super().add_fields(log_data, record, message_dict)
        log_data.pop("color_message", None)  # uvicorn's copy of the message with ANSI colours

    def formatException(self, ei: Any) -> str:
        return _safe_traceback(ei)

    def formatStack(self, stack_info: str) -> str:
        return ""  # stack_info=True lines would carry source text; frames are enough


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler on whatever ``sys.stderr`` is when a line is written."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always the current stderr


def uvicorn_log_config(level: str = "INFO", stream: TextIO | None = None) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn's ``log_config=``: one JSON handler on the root
    logger, the service's (``service``) and uvicorn's loggers at ``level`` (INFO by default),
    httpx's at WARNING (its INFO line is the full URL, query included), uvicorn's access log
    without queries. uvicorn applies it in each worker before the app is built."""
    handler: dict[str, Any] = ({"()": StderrHandler} if stream is None else
                               {"class": "logging.StreamHandler", "stream": stream})
    handler.update({"formatter": "json", "filters": ["context"]})
    quiet = {"level": "WARNING"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}, "access": {"()": AccessPathFilter}},
        "formatters": {"json": {"()": ServiceJsonFormatter}},
        "handlers": {"json": handler},
        "loggers": {
            "service": {"level": level},
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": level, "handlers": [], "propagate": True,
                               "filters": ["access"]},
            "httpx": quiet, "httpcore": quiet, "authlib": quiet,
        },
        "root": {"handlers": ["json"], "level": "WARNING"},
    }


def configure_logging(level: str = "INFO", stream: TextIO | None = None, *,
                      force: bool = False) -> None:
    """Install the JSON handler for this process (the command line; ``serve`` hands the same
    dictionary to uvicorn instead). Like ``logging.basicConfig``, nothing changes when the root
    logger has handlers already (a host program's, or a test runner's) unless ``force``."""
    if logging.getLogger().handlers and not force:
        return
    logging.config.dictConfig(uvicorn_log_config(level, stream))
