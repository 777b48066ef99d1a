"""What the clinician records for one dosing session: the input model, its checks and warnings.

The same model checks the clinician's form and the REST body (``POST /api/v1/sessions``). Ranges
refuse typing errors, not abnormal patients. A check that involves two fields reports its error
at the field the clinician should change (so the form can show it there, by location). Esketamine
monitored for less than the REMS minimum is a *warning*, not a rejection: the record of what
happened must still be writable. An esketamine session must answer every item of the Spravato
REMS Patient Monitoring Form (lot, concomitant medications, vitals acceptable before and after,
when the patient would have been ready to leave, respiratory depression and the lowest SpO2, the
monitoring clinician and the setting): the form cannot be submitted with a gap. For ketamine they
are optional.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from service.fhir.references import FHIR_ID_PATTERN
from service.render.session_items import (
    CONCOMITANT,
    ESKETAMINE_MIN_MONITORING_MINUTES,
    AdverseEventCode,
    ProductCode,
    RouteCode,
)

__all__ = ["REMS_REQUIRED", "AdverseEventInput", "ConcomitantCode", "SessionInput", "VitalsInput"]

if TYPE_CHECKING:
    ConcomitantCode = str
else:
    ConcomitantCode = Literal[tuple(q.code for q in CONCOMITANT)]


_Found = tuple[str | tuple[str, ...], Any, str, str]
"""(location, input, message, error type) of one located error."""
REMS_REQUIRED = "rems_required"
"""The error type of an item the REMS form asks for and an esketamine session left out."""


def _invalid(model: type[BaseModel], field: str | tuple[str, ...], value: Any,
             message: str) -> ValidationError:
    """A ``value_error`` located at ``field`` (a model-level check otherwise has no location)."""
    return _errors(model, [(field, value, message, "value_error")])


def _errors(model: type[BaseModel], found: list[_Found]) -> ValidationError:
    """Several located errors at once, so the form shows every gap in one pass."""
    details = [InitErrorDetails(
        type=PydanticCustomError(kind, "Value error, {message}", {"message": message}),
        loc=(where,) if isinstance(where, str) else where, input=value)
        for where, value, message, kind in found]
    return ValidationError.from_exception_data(model.__name__, details)


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
    patient_id: Annotated[str, Field(pattern=FHIR_ID_PATTERN)]
    practitioner_id: Annotated[str | None, Field(pattern=FHIR_ID_PATTERN)] = None
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
    # The rest of the Spravato REMS Patient Monitoring Form (required for esketamine).
    lot_number: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ./-]{0,39}$",
                                            description="lot of the product given")] = None
    concomitant: Annotated[dict[ConcomitantCode, bool], Field(
        description="does the patient currently take each kind (REMS form, yes/no)")] = {}
    vitals_ok_pre_dose: Annotated[bool | None, Field(
        description="vital signs acceptable before dosing")] = None
    vitals_ok_end: Annotated[bool | None, Field(
        description="vital signs acceptable at the end of monitoring")] = None
    ready_at: Annotated[AwareDatetime | None, Field(
        description="when the patient would have been ready to leave")] = None
    respiratory_depression: bool | None = None
    lowest_spo2: Annotated[float | None, Field(ge=50, le=100, description="%")] = None
    monitoring_clinician: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    setting: Annotated[str | None, Field(
        min_length=1, max_length=200, description="the REMS-certified healthcare setting")] = None

    @model_validator(mode="after")
    def _consistent(self) -> SessionInput:
        found: list[_Found] = []
        if not self.pre_dose.at <= self.dose_at <= self.at_40_min.at <= self.discharge.at:
            found.append(("dose_at", self.dose_at.isoformat(),
                          "times must run pre-dose vitals <= dose <= ~40 min vitals <= "
                          "discharge vitals", "value_error"))
        if self.route == "IV" and self.dose_mg_per_kg is None:
            found.append(("dose_mg_per_kg", None, "an IV dose needs dose_mg_per_kg",
                          "value_error"))
        if self.ready_at is not None and self.ready_at < self.dose_at:
            found.append(("ready_at", self.ready_at.isoformat(),
                          "the patient cannot be ready to leave before the dose", "value_error"))
        readings = [v.spo2 for v in (self.pre_dose, self.at_40_min, self.discharge)
                    if v.spo2 is not None]
        if self.respiratory_depression and self.lowest_spo2 is None:
            found.append(("lowest_spo2", None, "respiratory depression needs the lowest SpO2",
                          "missing"))
        elif self.lowest_spo2 is not None and readings and self.lowest_spo2 > min(readings):
            found.append(("lowest_spo2", self.lowest_spo2,
                          f"the lowest SpO2 cannot be above a reading taken ({min(readings):g}%)",
                          "value_error"))
        if self.product == "esketamine":
            found += self._rems_gaps()
        if found:
            raise _errors(SessionInput, found)
        return self

    def _rems_gaps(self) -> list[_Found]:
        """The REMS form's items an esketamine session leaves unanswered."""
        names = ["lot_number", "vitals_ok_pre_dose", "vitals_ok_end", "respiratory_depression",
                 "monitoring_clinician", "setting"]
        if not self.respiratory_depression:
            names.append("lowest_spo2")  # else already missing for respiratory depression
        gaps: list[_Found] = [(name, None, f"the Spravato REMS form asks for {name}",
                               REMS_REQUIRED) for name in names if getattr(self, name) is None]
        if self.ready_to_leave and self.ready_at is None:
            gaps.append(("ready_at", None, "the Spravato REMS form asks for ready_at",
                         REMS_REQUIRED))
        gaps += [(("concomitant", q.code), None, f"the Spravato REMS form asks about {q.code}",
                  REMS_REQUIRED) for q in CONCOMITANT if q.code not in self.concomitant]
        return gaps

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
        if self.vitals_ok_pre_dose is False:
            found.append("the vital signs were not acceptable before dosing")
        if self.vitals_ok_end is False:
            found.append("the vital signs were not acceptable at the end of monitoring")
        if self.respiratory_depression:
            found.append(f"respiratory depression was seen (lowest SpO2 {self.lowest_spo2:g}%)")
        return found
