"""The audit trail: one record per access, to a sink of its own.

Who (a user, or a client: the CDS client, the REST API caller, the command line), which patient,
what (:attr:`AuditRecord.action`), when, the outcome and the request id. This is the one place the
real patient id is written: the operational logs carry pseudonyms only, so the trail is kept
apart from them. Records are JSON lines written by a logger of their own that is not part of the
logging tree (no handler, level or filter configured for the operational logs ever sees them),
to ``KETAMINE_AUDIT_LOG``: ``stdout``, ``stderr`` or a file (``WatchedFileHandler``: reopened
when rotated away). With ``KETAMINE_AUDIT_FHIR_BASE`` each record is also sent as a FHIR
AuditEvent (:mod:`service.render.audit_event`), in the background and in order, through a bounded
queue: a slow audit server delays no answer, and what cannot be sent is logged (operationally,
without the record) while the line stays written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import logging.handlers
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from service import __version__
from service.config import Settings
from service.errors import ServiceError
from service.fhir.client import FhirClient
from service.fhir.http import check_response
from service.render.audit_event import audit_event

__all__ = ["OBSERVER", "AuditRecord", "AuditTrail", "WhoKind"]

log = logging.getLogger(__name__)

OBSERVER = f"ketamine-screen {__version__}"
WhoKind = Literal["user", "client", "unknown"]
_QUEUE_SIZE = 1000


@dataclass(slots=True)
class AuditRecord:
    action: str
    """launch, launch-begin, screen, save, session, read, write, cds, cds-feedback, api, bulk,
    or authenticate (a failed authentication)."""
    outcome: Literal["success", "failure"]
    who: str | None = None
    """The user (``fhirUser``, else the id_token's ``sub``) or the client (CDS issuer, API
    subject and client id, the command line's client id and OS user)."""
    who_kind: WhoKind = "unknown"
    patient: str | None = None
    """The patient's real id on the FHIR server."""
    request_id: str | None = None
    route: str | None = None
    """``METHOD /path/{template}`` (never a query string)."""
    status: int | None = None
    detail: str | None = None
    """An error class or code, a count: never record contents."""
    on_behalf_of: str | None = None
    """The user a client says it acts for (a CDS hook's ``userId``), as the client says it."""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        data["at"] = self.at.isoformat().replace("+00:00", "Z")
        return {"log": "audit", **data}


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record.msg, separators=(",", ":"), sort_keys=True)


Connect = Callable[[], FhirClient]


class AuditTrail:
    """Writes :class:`AuditRecord` lines to ``handler``; forwards them when ``connect`` is given."""

    def __init__(self, handler: logging.Handler, *, connect: Connect | None = None,
                 queue_size: int = _QUEUE_SIZE) -> None:
        handler.setFormatter(_Json())
        # A Logger made directly is outside the logging tree: no parent, so nothing propagates
        # to the root (operational) handlers, and no logging configuration reaches it.
        self._logger = logging.Logger("ketamine-screen.audit", logging.INFO)
        self._logger.addHandler(handler)
        self._handler = handler
        self._connect = connect
        self._queue: asyncio.Queue[AuditRecord] | None = None
        self._queue_size = queue_size
        self._sender: asyncio.Task[None] | None = None
        self.forwarded = 0
        """AuditEvents the audit server accepted."""

    @classmethod
    def from_settings(cls, settings: Settings, *, connect: Connect | None = None,
                      command_line: bool = False) -> AuditTrail:
        """The configured sink; the command line keeps its stdout for results (stderr then)."""
        target = settings.audit_log
        handler: logging.Handler
        if target in ("stdout", "stderr"):
            stream: TextIO = sys.stderr if target == "stderr" or command_line else sys.stdout
            handler = logging.StreamHandler(stream)
        else:
            handler = logging.handlers.WatchedFileHandler(target, encoding="utf-8")
        return cls(handler, connect=connect if settings.audit_fhir_base else None)

    def record(self, rec: AuditRecord) -> None:
        """Write the record now; queue it for the audit server when one is configured."""
        self._logger.info(rec.as_json())
        if self._connect is None:
            return
        if self._queue is None:
            self._queue = asyncio.Queue(self._queue_size)
        try:
            self._queue.put_nowait(rec)
        except asyncio.QueueFull:
            log.warning("audit: the AuditEvent queue is full; one record was not forwarded")
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (the command line): aclose() sends it
        if self._sender is None or self._sender.done():
            self._sender = loop.create_task(self._send_queued())

    async def _send_queued(self) -> None:
        queue, connect = self._queue, self._connect
        assert queue is not None and connect is not None  # noqa: S101 - set by record()
        # Re-checked after each client closes: a record queued meanwhile is not left behind.
        while not queue.empty():
            async with connect() as client:
                while not queue.empty():
                    await self._send(client, queue.get_nowait())

    async def _send(self, client: FhirClient, rec: AuditRecord) -> None:
        try:
            response = await client.send("POST", "AuditEvent",
                                         body=audit_event(rec, observer=OBSERVER), retry=False)
            check_response(response, what="AuditEvent")
        except (ServiceError, ValueError) as err:
            log.warning("audit: an AuditEvent was not accepted (%s)", type(err).__name__)
            return
        self.forwarded += 1

    async def aclose(self) -> None:
        """Send what is queued, then close the sink."""
        if self._sender is not None and not self._sender.done():
            await self._sender
        if self._queue is not None and not self._queue.empty():
            await self._send_queued()
        self._handler.close()
