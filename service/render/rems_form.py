"""The Spravato REMS Patient Monitoring Form's submission, tracked as a FHIR Task.

Why a Task (https://hl7.org/fhir/R4/task.html): the form is work someone must do for one session
by a date, which is what Task records: ``focus`` is the session Observation, ``for`` the patient,
``restriction.period.end`` the last day allowed (the session's day plus the REMS window,
``fhir_maps/treatment-course.yaml``), ``status`` ``requested`` until it is done, then ``completed``
with ``executionPeriod.end`` (when it was submitted) and ``owner`` (who submitted it). An
Observation "submitted: yes" would say the same once, but could not be listed as *due* by one
search (``Task?status=requested&code=...``), nor carry the deadline.

The Task is created with the session, in its transaction (a conditional create: writing the
session again never resets a completed Task). Marking it submitted is one transaction of a
conditional update on the Task's identifier and a Provenance (activity UPDATE): sending it twice
leaves one Task, completed once (one new version: the same body again changes nothing).
Building only: the writes are service.workflow's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fhir.resources.R4B.task import Task
from pydantic import BaseModel, ConfigDict, Field

from service.fhir.codesystems import CS_SESSION, canonical, display
from service.fhir.references import FHIR_ID_PATTERN
from service.fhir.transaction import TxEntry
from service.render.fhir_time import parse_when
from service.render.session_items import REMS_SUBMISSION_DAYS, REMS_TASK_CODE
from service.render.writeback import app_agent, encounter_reference, provenance_entry

if TYPE_CHECKING:
    from service.render.session_input import SessionInput

__all__ = [
    "SubmissionInput",
    "build_submission_write",
    "due_date",
    "rems_task_entry",
]


def due_date(dose_at: datetime) -> date:
    """The last day the form may be submitted: the session's day plus the REMS window."""
    return dose_at.date() + timedelta(days=REMS_SUBMISSION_DAYS)


def _code() -> dict[str, Any]:
    return {"coding": [{"system": canonical(CS_SESSION), "code": REMS_TASK_CODE,
                        "display": display(CS_SESSION, REMS_TASK_CODE)}]}


def rems_task_entry(session: SessionInput, focus: TxEntry, system: str, key: str, *,
                    now: datetime, encounter: str | None = None) -> TxEntry:
    """The Task (``requested``) that tracks this esketamine session's REMS form."""
    task = Task.model_validate({
        "identifier": [{"system": system, "value": key}],
        "status": "requested", "intent": "order", "priority": "routine", "code": _code(),
        "description": (f"Submit the Spravato REMS Patient Monitoring Form of the session on "
                        f"{session.dose_at.date().isoformat()}"),
        "focus": focus.reference(), "for": {"reference": f"Patient/{session.patient_id}"},
        "encounter": encounter_reference(encounter),
        "authoredOn": now, "lastModified": now,
        "requester": ({"reference": f"Practitioner/{session.practitioner_id}"}
                      if session.practitioner_id else None),
        "restriction": {"period": {"start": session.dose_at,
                                   "end": datetime.combine(due_date(session.dose_at),
                                                           time(23, 59, 59),
                                                           session.dose_at.tzinfo)}},
    })
    return TxEntry(task, system, key)


class SubmissionInput(BaseModel):
    """Who submitted a session's REMS form, and when (the clinician's form)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    submitted_on: date
    submitted_by: Annotated[str, Field(min_length=1, max_length=200)]
    practitioner_id: Annotated[str | None, Field(pattern=FHIR_ID_PATTERN)] = None


def _identifier(task: Mapping[str, Any]) -> tuple[str, str]:
    for ident in task.get("identifier") or []:
        if str(ident.get("value", "")).endswith("/rems-form") and ident.get("system"):
            return str(ident["system"]), str(ident["value"])
    raise ValueError("the Task has no REMS form identifier")


def build_submission_write(task: Mapping[str, Any], submission: SubmissionInput, *,
                           now: datetime) -> list[TxEntry]:
    """The Task as read, completed by ``submission``; and its Provenance."""
    system, key = _identifier(task)
    body = {k: v for k, v in task.items() if k not in ("id", "meta", "text")}
    # lastModified comes from the submission, not the clock: sending the same submission again is
    # then the same body, which the server keeps as it is (the Provenance records the time). R4's
    # inv-1 wants it no earlier than authoredOn.
    submitted = datetime.combine(submission.submitted_on, time(0, 0), UTC)
    authored = parse_when(task.get("authoredOn"))
    modified = max(submitted, authored) if authored is not None else submitted
    body.update({"status": "completed", "lastModified": modified,
                 "executionPeriod": {"end": submission.submitted_on.isoformat()},
                 "owner": {"display": submission.submitted_by}})
    entry = TxEntry(Task.model_validate(body), system, key, method="PUT")
    provenance = provenance_entry(
        f"{key}/submitted/{submission.submitted_on.isoformat()}", [entry], app=app_agent(),
        app_role="assembler" if submission.practitioner_id else "author",
        practitioner=submission.practitioner_id, practitioner_role="author", recorded=now,
        activity="UPDATE")
    return [entry, provenance]
