"""``/api/v1/screenings``: screen a patient on the EHR, or a Bundle sent in the request.

The answer is the JSON contract of the README (``ScreeningResult.as_contract()``), plus
``written`` (``Type/id`` of each resource) when the result was written back. Both routes take
``product`` (``ketamine``, ``esketamine`` or ``both``, the default) and ``ruleset`` (default the
deployment's); an unknown value is a 422 problem naming the allowed ones, before anything is read
or written.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from service.api.audit import AuditAccess
from service.api.deps import RequireScreen, Services, single_valued_query
from service.api.examples import SCREENING, SCREENING_REQUEST, json_example
from service.api.middleware import current_request_id
from service.auth.scopes import SCOPE_WRITE
from service.errors import BearerError
from service.fhir.references import FHIR_ID_GRAMMAR, FHIR_ID_PATTERN
from service.logs import pseudonym
from service.screening.engine import PRODUCT_CHOICES, RULESETS
from service.screening.policy import products_asked
from service.screening.ruleset import check_choice
from service.workflow import screen_bundle, screen_from_fhir, write_screening_result

__all__ = [
    "EligibilityOut",
    "ExposureOut",
    "FindingOut",
    "ScreeningOut",
    "ScreeningRequest",
    "ThresholdsOut",
    "TrialOut",
    "VerdictsOut",
    "router",
]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/screenings", tags=["api"],
                   dependencies=[Depends(single_valued_query)])

_ISO_DATE_TIME = r"^(19|2[01])\d\d-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?)?$"


def _iso_only(value: object) -> object:
    # pydantic would read a number as seconds since 1970; an evaluation time is written out.
    if value is not None and not (isinstance(value, str) and re.match(_ISO_DATE_TIME, value)):
        raise ValueError("expected an ISO 8601 date-time between 1900 and 2199, "
                         "e.g. 2026-11-27T09:00:00Z")
    return value


AsOf = Annotated[datetime | None, BeforeValidator(_iso_only),
                 WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time",
                                            "pattern": _ISO_DATE_TIME}, {"type": "null"}]})]
"""An evaluation time as the API takes it: ISO 8601 text, years 1900 to 2199."""


def _product(value: str) -> str:
    products_asked(value)  # ChoiceError (a ValueError): 422 naming the allowed values
    return value


def _ruleset(value: str) -> str:
    return check_choice(value, tuple(RULESETS), "ruleset")


ProductChoice = Annotated[str, AfterValidator(_product), Field(
    description="the product(s) to screen for", json_schema_extra={"enum": list(PRODUCT_CHOICES)},
    examples=["both"])]
RulesetName = Annotated[str, AfterValidator(_ruleset),
                        Field(json_schema_extra={"enum": list(RULESETS)})]
_RULESET_HELP = "ruleset version; default the deployment's (KETAMINE_RULESET)"


class ScreeningRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient: Annotated[str, Field(pattern=f"^(Patient/)?{FHIR_ID_GRAMMAR}$",
                                  description="Patient id on the FHIR server", examples=["123"])]
    as_of: AsOf = Field(None, description="evaluation time (ISO 8601); default now")
    write_back: bool = Field(False, description="write the result to the EHR (ketamine.write)")
    fhir_base: Annotated[str | None, Field(max_length=2048)] = Field(
        None, description="one of the allowed FHIR servers; default the first")
    product: ProductChoice = "both"
    ruleset: RulesetName | None = Field(None, description=_RULESET_HELP)


ProductOut = Literal["ketamine", "esketamine"]
VerdictOut = Literal["contraindicated", "needs-review", "insufficient-data", "suitable"]


class FindingOut(BaseModel):
    kind: Literal["contraindication", "precaution", "interaction", "missing-data", "info"]
    rule: str
    severity: str
    summary: str
    evidence: list[str]
    source: str
    products: list[ProductOut] = Field(description="the products (of those asked) it concerns")


class TrialOut(BaseModel):
    ingredient: str = Field(examples=["sertraline"])
    class_: str = Field(alias="class", examples=["SSRI"],
                        description="SSRI, SNRI, TCA, MAOI or Other")
    start: date
    days: int = Field(ge=0, description="days of exposure in the current episode")
    evidence: list[str] = Field(description="the medication records behind it")
    basis: str = Field(description="how the duration was told: period, supply x repeats, "
                                   "repeated orders, dispense days supply, ongoing")


class ExposureOut(TrialOut):
    reason: str = Field(description="why it is not a counted trial")


class EligibilityOut(BaseModel):
    """REFERENCE, Indication (eligibility): never changes a verdict."""

    status: Literal["trd-documented", "mdsi-pathway", "not-documented"]
    diagnosis: list[str] = Field(description="the active depression diagnosis records")
    trials: list[TrialOut] = Field(description="antidepressant trials counted")
    classes: int = Field(ge=0, description="distinct classes among the trials")
    missing: list[str] = Field(description="what the record lacks (not documented only)")
    summary: str = Field(description="one sentence; says that dose adequacy was not assessed")
    episode_start: date | None = Field(description="the current episode's start, when known")
    other_exposures: list[ExposureOut] = Field(
        description="antidepressant exposures not counted as trials, each with the reason")
    suicidality: list[str] = Field(description="suicidal ideation or behaviour records")
    source: str


class ThresholdsOut(BaseModel):
    """The configured thresholds and windows the result was computed with."""

    model_config = ConfigDict(extra="allow")

    bp_window_days: float
    bp_systolic_uncontrolled: float
    bp_diastolic_uncontrolled: float
    bp_systolic_elevated: float
    bp_diastolic_elevated: float
    bp_systolic_guide_65: float
    bp_diastolic_guide_65: float
    trial_min_days: float | None = None
    eligibility_lookback_days: float | None = None


class VerdictsOut(BaseModel):
    """Product -> verdict, for the products asked."""

    ketamine: VerdictOut | None = None
    esketamine: VerdictOut | None = None


class ScreeningOut(BaseModel):
    patient: str = Field(examples=["Patient/123"])
    as_of: str = Field(examples=["2026-11-27T09:00:00Z"])
    ruleset: str = Field(examples=["v2"])
    products: list[ProductOut] = Field(description="the products asked about")
    verdict: VerdictOut = Field(description="the stricter of the per-product verdicts")
    verdicts: VerdictsOut
    thresholds: ThresholdsOut
    findings: list[FindingOut]
    eligibility: EligibilityOut | None = Field(
        None, description="treatment-resistant depression from the record (ruleset v2)")
    written: list[str] | None = Field(None, description="resources written (write_back only)")


@router.post("", summary="Screen a patient on the FHIR server (ketamine.screen; "
             "ketamine.write for write_back)", response_model=ScreeningOut,
             response_model_exclude_unset=True, operation_id="createScreening",
             openapi_extra={"requestBody": {"content": {"application/json": {
                 "example": SCREENING_REQUEST}}}},
             responses={200: json_example(SCREENING | {"written": [
                            "Observation/501", "Provenance/502"]}),
                        403: {"description": "write_back without ketamine.write"},
                        404: {"description": "no such patient"},
                        422: {"description": "invalid body (an unknown product or ruleset "
                                              "names the allowed values), or fhir_base not "
                                              "allowed"},
                        502: {"description": "the FHIR server failed us"},
                        503: {"description": "the FHIR server is unavailable"},
                        504: {"description": "the FHIR server timed out"}})
async def create_screening(body: ScreeningRequest, caller: RequireScreen,
                           services: Services, access: AuditAccess) -> dict[str, Any]:
    """Reads the patient's conditions, medications, allergies and observations from the FHIR
    server (SMART Backend Services), screens them as of ``as_of`` and answers the JSON
    contract: the verdict per product, each finding with the records behind it and its label
    source, the eligibility summary. With ``write_back`` the result is written to the chart in
    one transaction (sending it again adds nothing) and ``written`` lists what was written."""
    access.patient = body.patient.removeprefix("Patient/")
    if body.write_back:
        access.action = "save"
    if body.write_back and SCOPE_WRITE not in caller.scopes:
        raise BearerError(f"write_back needs the '{SCOPE_WRITE}' scope.", "insufficient_scope",
                          scope=SCOPE_WRITE)
    settings = services.settings
    patient_id = body.patient.removeprefix("Patient/")
    client = await services.fhir.backend(body.fhir_base, write=body.write_back,
                                         request_id=current_request_id.get())
    async with client:
        result, raw = await screen_from_fhir(client, patient_id, as_of=body.as_of,
                                             settings=settings, ruleset=body.ruleset,
                                             products=body.product)
        contract = result.as_contract()
        if body.write_back:
            contract["written"] = await write_screening_result(client, result, raw)
    log.info("screened patient %s for %s: %s", pseudonym(patient_id), caller.subject,
             result.verdict.label)
    return contract


_BUNDLE_EXAMPLE = {"resourceType": "Bundle", "type": "collection", "entry": [
    {"resource": {"resourceType": "Patient", "id": "123", "birthDate": "1980-04-02"}},
    {"resource": {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/123"},
                  "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                       "code": "F33.2"}]}}}]}
_BUNDLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {"type": "string"},
        "entry": {"type": "array", "items": {"type": "object", "properties": {
            "fullUrl": {"type": "string"},
            "resource": {"type": "object", "required": ["resourceType"],
                         "properties": {"resourceType": {"type": "string"}}}}}},
    },
}


@router.post("/$evaluate", summary="Screen the records in a FHIR Bundle, no FHIR server "
             "(ketamine.screen)", response_model=ScreeningOut, response_model_exclude_unset=True,
             operation_id="evaluateBundle",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/fhir+json": {"schema": _BUNDLE_SCHEMA, "example": _BUNDLE_EXAMPLE},
                 "application/json": {"schema": _BUNDLE_SCHEMA}}}},
             responses={200: json_example(SCREENING),
                        413: {"description": "Bundle larger than KETAMINE_MAX_BUNDLE_BYTES "
                                             "(20 MB by default)"},
                        422: {"description": "not JSON, not a Bundle, no usable resource, or "
                                              "an unknown product or ruleset"}})
async def evaluate_bundle(
    request: Request,
    caller: RequireScreen,
    services: Services,
    access: AuditAccess,
    as_of: Annotated[AsOf, Query(description="evaluation time (ISO 8601); default now")] = None,
    patient: Annotated[str | None, Query(pattern=FHIR_ID_PATTERN,
                                         description="which patient, when several")] = None,
    product: Annotated[ProductChoice, Query()] = "both",
    ruleset: Annotated[RulesetName | None, Query(description=_RULESET_HELP)] = None,
) -> dict[str, Any]:
    """Screens the records of one patient sent as a FHIR Bundle (a ``collection`` or a
    ``searchset``, up to ``KETAMINE_MAX_BUNDLE_BYTES``, 20 MB by default): nothing is read from
    or written to a FHIR server. ``patient`` picks the patient when the Bundle holds several."""
    # Bounded as it streams in (service.api.limits): never more than the Bundle limit is held.
    raw_body = await request.body()
    access.patient = patient
    result, _ = await screen_bundle(raw_body, patient_id=patient, as_of=as_of,
                                    settings=services.settings, ruleset=ruleset,
                                    products=product)
    access.patient = result.patient.removeprefix("Patient/")
    return result.as_contract()
