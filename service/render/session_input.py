"""What the clinician records for one dosing session: the input model, its checks and warnings.

The same model checks the clinician's form and the REST body (``POST /api/v1/sessions``). Ranges
refuse typing errors, not abnormal patients. A check that involves two fields reports its error
at the field the clinician should change (so the form can show it there, by location). Esketamine
monitored for less than 120 minutes is a *warning* (the REMS minimum), not a rejection: the record
of what happened must still be writable.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from service.render.session_items import (
    ESKETAMINE_MIN_MONITORING_MINUTES,
    AdverseEventCode,
    ProductCode,
    RouteCode,
)

__all__ = ["AdverseEventInput", "SessionInput", "VitalsInput"]

_FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"


def _invalid(model: type[BaseModel], field: str, value: Any, message: str) -> ValidationError:
    """A ``value_error`` located at ``field`` (a model-level check otherwise has no location)."""
    error = PydanticCustomError("value_error", "Value error, {message}", {"message": message})
    return ValidationError.from_exception_data(
        model.__name__, [InitErrorDetails(type=error, loc=(field,), input=value)])


class VitalsInput(BaseModel):
    """One set of vital signs; ranges refuse typing errors, not abnormal patients."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: AwareDatetime
    systolic: Annotated[float, Field(ge=50, le=260, description="mmHg")]
    diastolic: Annotated[float, Field(ge=30, le=160, description="mmHg")]
    heart_rate: Annotated[float, Field(ge=20, le=250, description="beats/min")]
    spo2: Annotated[float | None, Field(ge=50, le=100, description="%")] = None

    @model_validator(mode="after")
    def _pressure_order(self) -> VitalsInput:
        if self.diastolic >= self.systolic:
            raise _invalid(VitalsInput, "diastolic", self.diastolic,
                           "diastolic pressure must be lower than systolic pressure")
        return self


class AdverseEventInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    code: AdverseEventCode
    text: Annotated[str | None, Field(max_length=2000)] = None

    @model_validator(mode="after")
    def _other_needs_text(self) -> AdverseEventInput:
        if self.code == "other" and not self.text:
            raise _invalid(AdverseEventInput, "text", self.text,
                           "an adverse event coded 'other' needs a text")
        return self


class SessionInput(BaseModel):
    """What the clinician records for one dosing session (UI form and REST body)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    session_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                                     description="unique per patient; makes the write idempotent")]
    patient_id: Annotated[str, Field(pattern=_FHIR_ID)]
    practitioner_id: Annotated[str | None, Field(pattern=_FHIR_ID)] = None
    product: ProductCode
    route: RouteCode
    dose_at: AwareDatetime
    dose_mg: Annotated[float, Field(ge=0, le=500)]
    dose_mg_per_kg: Annotated[float | None, Field(ge=0, le=5)] = None
    pre_dose: VitalsInput
    at_40_min: VitalsInput
    discharge: VitalsInput
    moaas: Annotated[int, Field(ge=0, le=5, description="deepest sedation seen (MOAA/S)")]
    cadss_total: Annotated[int | None, Field(ge=0, le=92)] = None
    adverse_events: Annotated[list[AdverseEventInput], Field(max_length=30)] = []
    monitoring_minutes: Annotated[int, Field(ge=0, le=600)]
    ready_to_leave: bool

    @model_validator(mode="after")
    def _consistent(self) -> SessionInput:
        if not self.pre_dose.at <= self.dose_at <= self.at_40_min.at <= self.discharge.at:
            raise _invalid(SessionInput, "dose_at", self.dose_at.isoformat(),
                           "times must run pre-dose vitals <= dose <= ~40 min vitals <= "
                           "discharge vitals")
        if self.route == "IV" and self.dose_mg_per_kg is None:
            raise _invalid(SessionInput, "dose_mg_per_kg", None,
                           "an IV dose needs dose_mg_per_kg")
        return self

    def warnings(self) -> list[str]:
        """Things to tell the clinician that do not stop the record being written."""
        found: list[str] = []
        if (self.product == "esketamine"
                and self.monitoring_minutes < ESKETAMINE_MIN_MONITORING_MINUTES):
            found.append(f"esketamine needs at least {ESKETAMINE_MIN_MONITORING_MINUTES} minutes "
                         f"of monitoring (SPRAVATO-REMS); {self.monitoring_minutes} recorded")
        after = (self.at_40_min.at - self.dose_at).total_seconds() / 60
        if not 30 <= after <= 60:
            found.append(f"the ~40 minute vitals were taken {after:.0f} minutes after the dose")
        if self.product == "esketamine" and self.route != "intranasal":
            found.append("esketamine (Spravato) is labelled for intranasal use only")
        if not self.ready_to_leave:
            found.append("the patient was not recorded as ready to leave")
        return found
