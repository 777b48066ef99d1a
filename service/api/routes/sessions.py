"""``POST /api/v1/sessions``: document one treatment session on the EHR (ketamine.write)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.api.audit import AuditAccess
from service.api.deps import RequireWrite, Services
from service.api.examples import SESSION_REQUEST, SESSION_WRITTEN, json_example
from service.api.middleware import current_request_id
from service.logs import pseudonym
from service.render.session_input import SessionInput
from service.workflow import write_session

__all__ = ["SessionRequest", "SessionWritten", "router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["api"])


class SessionRequest(SessionInput):
    """A session as the clinician's form records it, plus the FHIR server to write it to."""

    fhir_base: Annotated[str | None, Field(max_length=2048)] = Field(
        None, description="one of the allowed FHIR servers; default the first")


class SessionWritten(BaseModel):
    written: list[str] = Field(description="``Type/id`` of each resource (created or found)")
    created: int = Field(description="how many were new (0 when the session was sent before)")
    warnings: list[str] = Field(description="things to review that did not stop the write")


@router.post("/sessions", summary="Write a treatment session (ketamine.write)",
             response_model=SessionWritten, status_code=200, operation_id="createSession",
             openapi_extra={"requestBody": {"content": {"application/json": {
                 "example": SESSION_REQUEST}}}},
             responses={200: json_example(SESSION_WRITTEN),
                        422: {"description": "invalid session, or fhir_base not allowed"},
                        502: {"description": "the FHIR server failed us"},
                        503: {"description": "the FHIR server is unavailable"},
                        504: {"description": "the FHIR server timed out"}})
async def create_session(body: SessionRequest, caller: RequireWrite,
                         services: Services, access: AuditAccess) -> SessionWritten:
    """Documents one esketamine or ketamine treatment session (the Spravato REMS monitoring
    items: vitals before the dose, at 40 minutes and at discharge, sedation and dissociation
    scores, adverse events) as Observations in one transaction on the FHIR server. Sending the
    same session again adds nothing (``created`` is 0); ``warnings`` name what to review."""
    access.patient = body.patient_id
    session = SessionInput.model_validate(body.model_dump(exclude={"fhir_base"}))
    client = await services.fhir.backend(body.fhir_base, write=True,
                                         request_id=current_request_id.get())
    async with client:
        written = await write_session(client, session)
    log.info("session written for patient %s for %s: %d resources, %d new",
             pseudonym(session.patient_id), caller.subject,
             len(written.result.locations), written.result.created)
    return SessionWritten(written=list(written.result.locations), created=written.result.created,
                          warnings=written.warnings)
