"""CDS Hooks 2.0 endpoints: discovery (public), the two services, and feedback.

https://cds-hooks.hl7.org/2.0/. A service answers ``{"cards": []}`` unless a draft order holds
ketamine or esketamine, and screens the product(s) the orders name
(:func:`service.screening.orders.ordered_products`). Records come from
``prefetch`` and, for what it lacks, from ``fhirServer`` (:mod:`service.fhir.prefetch`; 412 when
neither will do); :func:`service.workflow.cds_cards` does all of it. The CDS client's JWT is
checked by :mod:`service.auth.cds_client`.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field

from service.api.audit import AuditAccess
from service.api.deps import Services, VerifiedCdsClient
from service.api.examples import CDS_REQUEST, CDS_RESPONSE, FEEDBACK, json_example
from service.api.middleware import current_request_id
from service.errors import InputError
from service.fhir.client import FhirClient
from service.fhir.references import FHIR_ID_PATTERN
from service.logs import pseudonym
from service.render.cds import SERVICES, discovery
from service.workflow import HookCall, cds_cards

__all__ = ["CdsRequest", "CdsResponse", "FeedbackRequest", "router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["cds-hooks"])

ServiceId = Annotated[str, Path(pattern=r"^[a-z0-9-]{1,64}$",
                                json_schema_extra={"enum": list(SERVICES)})]


class FhirAuthorization(BaseModel):
    access_token: str = Field(min_length=1, max_length=8192)
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None


class HookContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    patientId: Annotated[str, Field(pattern=FHIR_ID_PATTERN)]
    userId: str | None = None
    draftOrders: dict[str, Any]
    selections: list[str] | None = None


class CdsRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    hook: str
    hookInstance: Annotated[str, Field(min_length=1, max_length=256)]
    fhirServer: Annotated[str | None, Field(max_length=2048)] = None
    fhirAuthorization: FhirAuthorization | None = None
    context: HookContext
    prefetch: dict[str, Any] | None = None


class CdsResponse(BaseModel):
    cards: list[dict[str, Any]]


class Feedback(BaseModel):
    model_config = ConfigDict(extra="allow")

    card: Annotated[str, Field(min_length=1, max_length=256)]
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[dict[str, Any]] | None = None
    overrideReason: dict[str, Any] | None = None
    outcomeTimestamp: str


class FeedbackRequest(BaseModel):
    feedback: Annotated[list[Feedback], Field(max_length=100)]


@router.get("/cds-services", summary="CDS Hooks discovery (public)",
            operation_id="getCdsServices", responses={200: json_example({"services": [{
                "hook": "order-sign", "id": "ketamine-order-sign",
                "title": "Ketamine / esketamine screening",
                "description": "Screens the patient when ketamine or esketamine is ordered",
                "prefetch": {"patient": "Patient/{{context.patientId}}"}}]})})
async def cds_discovery() -> dict[str, Any]:
    """The services, their hooks and prefetch templates
    (https://cds-hooks.hl7.org/2.0/#discovery)."""
    return discovery()


@router.post("/cds-services/{service_id}", summary="Call a CDS service (CDS client JWT)",
             response_model=CdsResponse, response_model_exclude_none=True,
             operation_id="callCdsService",
             openapi_extra={"requestBody": {"content": {"application/json": {
                 "example": CDS_REQUEST}}}},
             responses={200: json_example(CDS_RESPONSE),
                        401: {"description": "missing or invalid CDS client JWT"},
                        404: {"description": "no such service"},
                        412: {"description": "prefetch incomplete and no usable fhirServer"}})
async def call_service(service_id: ServiceId, body: CdsRequest, client: VerifiedCdsClient,
                       services: Services, access: AuditAccess) -> dict[str, Any]:
    """Cards for a draft ketamine or esketamine order (none for other orders): one per finding,
    critical for a contraindication. Records come from ``prefetch``, and what it lacks from
    ``fhirServer`` with ``fhirAuthorization`` (412 when neither will do)."""
    access.patient = body.context.patientId
    access.on_behalf_of = body.context.userId
    service = SERVICES.get(service_id)
    if service is None:
        raise HTTPException(404, f"No CDS service '{service_id}' here.")
    if body.hook != service.hook:
        raise InputError(f"The service '{service_id}' answers the '{service.hook}' hook only.")
    patient_id = body.context.patientId
    auth = body.fhirAuthorization
    request_id = current_request_id.get()

    def connect() -> FhirClient:
        return services.fhir.cds(body.fhirServer, auth.access_token if auth else None,
                                 request_id=request_id)

    call = HookCall(patient_id, body.hookInstance, body.context.draftOrders,
                    body.context.selections, body.prefetch)
    cards, result = await cds_cards(call, connect=connect, settings=services.settings)
    if result is None:
        log.info("cds %s (%s): no ketamine order, no cards", service_id, client.issuer)
    else:
        log.info("cds %s (%s) for patient %s: %s, %d cards", service_id, client.issuer,
                 pseudonym(patient_id), result.verdict.label, len(cards))
    return {"cards": cards}


@router.post("/cds-services/{service_id}/feedback", summary="Card feedback (CDS client JWT)",
             operation_id="sendCdsFeedback",
             openapi_extra={"requestBody": {"content": {"application/json": {
                 "example": FEEDBACK}}}},
             responses={200: json_example({"received": 1}),
                        401: {"description": "missing or invalid CDS client JWT"},
                        404: {"description": "no such service"}})
async def feedback(service_id: ServiceId, body: FeedbackRequest,
                   client: VerifiedCdsClient) -> dict[str, int]:
    """Whether the clinician accepted or overrode each card
    (https://cds-hooks.hl7.org/2.0/#feedback); only the outcome is kept, never a comment."""
    if service_id not in SERVICES:
        raise HTTPException(404, f"No CDS service '{service_id}' here.")
    for item in body.feedback:
        # Outcome and card id only: override comments are free text and may name the patient.
        log.info("cds feedback %s: card %s %s", service_id, item.card, item.outcome)
    return {"received": len(body.feedback)}
