"""An audit record as a FHIR R4 AuditEvent (https://hl7.org/fhir/R4/auditevent.html).

Built with fhir.resources (R4B models, wire-compatible with R4 for AuditEvent). ``type`` is the
DICOM event (https://hl7.org/fhir/R4/valueset-audit-event-type.html), ``action`` the CRUDE code,
``outcome`` 0 (success), 4 (the caller's error, 4xx) or 8 (ours, 5xx). The caller is the
requesting agent, this service the observer, the patient (when known) and the request id the
entities.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from fhir.resources.R4B.auditevent import (
    AuditEvent,
    AuditEventAgent,
    AuditEventEntity,
    AuditEventSource,
)
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.reference import Reference

__all__ = ["REQUEST_ID_SYSTEM", "AuditFacts", "audit_event"]

DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
REQUEST_ID_SYSTEM = "urn:ketamine-screen:request-id"

_LOGIN = Coding(system=DCM, code="110114", display="User Authentication")
_RECORD = Coding(system=DCM, code="110110", display="Patient Record")
_REST = Coding(system=EVENT_TYPE, code="rest", display="RESTful Operation")
# action -> (event type, CRUDE action code)
_EVENTS: dict[str, tuple[Coding, str]] = {
    "launch": (_LOGIN, "E"),
    "launch-begin": (_LOGIN, "E"),
    "authenticate": (_LOGIN, "E"),
    "screen": (_RECORD, "E"),
    "save": (_RECORD, "C"),
    "session": (_RECORD, "C"),
    "read": (_RECORD, "R"),
    "write": (_RECORD, "C"),
    "bulk": (_RECORD, "E"),
    "cds": (_REST, "E"),
    "cds-feedback": (_REST, "C"),
    "api": (_REST, "E"),
}


class AuditFacts(Protocol):
    """What an audit record holds (``service.audit.AuditRecord``), read only."""

    @property
    def action(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def status(self) -> int | None: ...
    @property
    def who(self) -> str | None: ...
    @property
    def who_kind(self) -> str: ...
    @property
    def patient(self) -> str | None: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def route(self) -> str | None: ...
    @property
    def detail(self) -> str | None: ...
    @property
    def at(self) -> datetime: ...


def _outcome(facts: AuditFacts) -> str:
    if facts.outcome == "success":
        return "0"
    return "8" if facts.status is not None and facts.status >= 500 else "4"


def audit_event(facts: AuditFacts, *, observer: str) -> dict[str, Any]:
    """The AuditEvent (JSON) for one record; ``observer`` names this service."""
    event_type, action = _EVENTS.get(facts.action, (_REST, "E"))
    entities = [AuditEventEntity(what=Reference(reference=f"Patient/{facts.patient}"),
                                 type=Coding(system=ENTITY_TYPE, code="1", display="Person"))
                ] if facts.patient else []
    if facts.request_id:
        entities.append(AuditEventEntity(
            what=Reference(identifier=Identifier(system=REQUEST_ID_SYSTEM,
                                                 value=facts.request_id)),
            type=Coding(system=ENTITY_TYPE, code="2", display="System Object"),
            description=facts.route))
    who = facts.who or "unknown"
    event = AuditEvent(
        type=event_type,
        subtype=[Coding(code=facts.action, display=facts.action)],
        action=action,
        recorded=facts.at,
        outcome=_outcome(facts),
        outcomeDesc=facts.detail,
        agent=[AuditEventAgent(who=Reference(display=f"{facts.who_kind} {who}"),
                               requestor=True)],
        source=AuditEventSource(observer=Reference(display=observer),
                                type=[Coding(system=SOURCE_TYPE, code="4",
                                             display="Application Server")]),
        entity=entities or None,
    )
    # mode="json": plain JSON types (datetimes as strings), ready for the wire.
    body: dict[str, Any] = event.model_dump(mode="json", exclude_none=True)
    return body
