"""An integration (psychotherapy) session after a dosing session, as a FHIR R4 Procedure.

Why a Procedure (https://hl7.org/fhir/R4/procedure.html) and not an Encounter: what the clinic
documents is the therapy given (code, who gave it, how long, a note), which is a Procedure's
content; an Encounter would add only the visit around it. ``code`` is SNOMED CT Psychotherapy and
``category`` how it was held (the session CodeSystem's ``integration-modality``: category is the
element R4 gives "for searching, sorting and display"); ``performedPeriod`` the date, start and
duration; ``performer.actor`` the therapist by name (a display-only reference: the therapist need
not be the user documenting, who is ``recorder``); ``note`` the short note (never logged).
``reasonReference`` points at the dosing session's Observation: R4 allows Observation there
("why the procedure was performed"), and an integration session is held because of the dosing
session it follows (``partOf`` would make it a step of the dose, ``basedOn`` needs a
CarePlan or ServiceRequest). Codes: ``fhir_maps/treatment-course.yaml``.

The identifier derives from the patient and the integration id, so one transaction (Procedure and
Provenance) sent twice leaves one Procedure. Building only: the write is service.workflow's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fhir.resources.R4B.procedure import Procedure
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from service.fhir.codesystems import CS_SESSION, IDENTIFIER_BASE, canonical, display
from service.fhir.references import FHIR_ID_GRAMMAR, FHIR_ID_PATTERN
from service.fhir.transaction import TxEntry
from service.render.course_map import course_map
from service.render.session_items import ModalityCode
from service.render.writeback import app_agent, encounter_reference, provenance_entry

__all__ = ["INTEGRATION_SYSTEM", "IntegrationInput", "build_integration_write"]

INTEGRATION_SYSTEM = f"{IDENTIFIER_BASE}/integration"

class IntegrationInput(BaseModel):
    """One integration session as the clinician records it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    integration_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    patient_id: Annotated[str, Field(pattern=FHIR_ID_PATTERN)]
    practitioner_id: Annotated[str | None, Field(pattern=FHIR_ID_PATTERN)] = None
    start: AwareDatetime
    minutes: Annotated[int, Field(ge=5, le=480)]
    modality: ModalityCode
    clinician: Annotated[str, Field(min_length=1, max_length=200)]
    note: Annotated[str | None, Field(max_length=2000)] = None
    follows: Annotated[str, Field(pattern=f"^Observation/{FHIR_ID_GRAMMAR}$",
                                  description="the dosing session's Observation")]


def build_integration_write(session: IntegrationInput, *, now: datetime,
                            encounter: str | None = None) -> list[TxEntry]:
    """The Procedure recording ``session`` (in the launch's ``encounter``, when there is one) and
    its Provenance."""
    codes = course_map().integration
    key = f"Patient/{session.patient_id}/integration/{session.integration_id}"
    recorder = ({"reference": f"Practitioner/{session.practitioner_id}"}
                if session.practitioner_id else None)
    system = canonical(INTEGRATION_SYSTEM)
    procedure = Procedure.model_validate({
        "identifier": [{"system": system, "value": key}],
        "status": "completed",
        "category": {"coding": [{"system": canonical(CS_SESSION), "code": session.modality,
                                 "display": display(CS_SESSION, session.modality)}],
                     "text": display(CS_SESSION, session.modality)},
        "code": {"coding": [{"system": codes.procedure.system, "code": codes.procedure.code,
                             "display": codes.procedure.display}],
                 "text": "Integration session (psychotherapy)"},
        "subject": {"reference": f"Patient/{session.patient_id}"},
        "encounter": encounter_reference(encounter),
        "performedPeriod": {"start": session.start,
                            "end": session.start + timedelta(minutes=session.minutes)},
        "recorder": recorder,
        "performer": [{"actor": {"display": session.clinician}}],
        "reasonReference": [{"reference": session.follows, "display": "Dosing session"}],
        "note": [{"text": session.note}] if session.note else None,
    })
    entry = TxEntry(procedure, system, key)
    provenance = provenance_entry(
        f"{key}/provenance", [entry], app=app_agent(),
        app_role="assembler" if session.practitioner_id else "author",
        practitioner=session.practitioner_id, practitioner_role="author", recorded=now)
    return [entry, provenance]
