"""One ketamine / esketamine treatment session as FHIR R4 Observations (written in one transaction).

What is recorded follows the reference (Session observations), from the FDA Spravato REMS Patient
Monitoring Form and APA-2017: BP and heart rate before dosing, at about 40 minutes and at discharge,
SpO2, dose (mg, and mg/kg for IV), route, sedation (MOAA/S), dissociation (CADSS total), adverse
events, monitoring time and readiness to leave. Vital signs use the R4 vital-signs / US Core shapes
(https://hl7.org/fhir/R4/observation-vitalsigns.html: BP panel 85354-9 with components 8480-6 /
8462-4 in mm[Hg], heart rate 8867-4 in /min, SpO2 59408-5 + 2708-6 in %); the rest uses the
project's CodeSystems. Everything hangs off one session Observation through ``hasMember``.

Identifiers derive from the patient and the session identifier, so submitting a session twice
leaves one set. Esketamine monitored for less than 120 minutes is a *warning* (the REMS minimum),
not a rejection: the record of what happened must still be writable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Literal

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.observation import Observation, ObservationComponent
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from service.fhir.codesystems import CS_MOAAS, CS_SESSION, IDENTIFIER_BASE, display
from service.fhir.transaction import TransactionResult, TxEntry, build_transaction, submit
from service.render.writeback import (
    OBSERVATION_CATEGORY,
    app_device_entry,
    provenance_entry,
)

if TYPE_CHECKING:
    from fhir.resources.R4B.bundle import Bundle

    from service.fhir.client import FhirClient

__all__ = [
    "ESKETAMINE_MIN_MONITORING_MINUTES",
    "AdverseEventInput",
    "SessionInput",
    "SessionWrite",
    "SessionWriteResult",
    "VitalsInput",
    "build_session_write",
    "write_session",
]

ESKETAMINE_MIN_MONITORING_MINUTES = 120
"""SPRAVATO-REMS: monitor for at least 2 hours after each dose."""

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
_FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"

ROUTES: dict[str, tuple[str, str]] = {
    "IV": ("47625008", "Intravenous route"),
    "IM": ("78421000", "Intramuscular route"),
    "intranasal": ("46713006", "Nasal route"),
    "oral": ("26643006", "Oral route"),
    "subcutaneous": ("34206005", "Subcutaneous route"),
}
"""SNOMED CT route of administration concepts (descendants of 284009009)."""

AdverseEventCode = Literal[
    "dissociation", "dizziness", "nausea", "vomiting", "sedation", "vertigo", "hypoesthesia",
    "anxiety", "lethargy", "blood-pressure-increased", "feeling-drunk", "headache",
    "respiratory-depression", "psychotic-symptoms", "other",
]


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
            raise ValueError("diastolic pressure must be lower than systolic pressure")
        return self


class AdverseEventInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    code: AdverseEventCode
    text: Annotated[str | None, Field(max_length=2000)] = None

    @model_validator(mode="after")
    def _other_needs_text(self) -> AdverseEventInput:
        if self.code == "other" and not self.text:
            raise ValueError("an adverse event coded 'other' needs a text")
        return self


class SessionInput(BaseModel):
    """What the clinician records for one dosing session (UI form and REST body)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    session_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                                     description="unique per patient; makes the write idempotent")]
    patient_id: Annotated[str, Field(pattern=_FHIR_ID)]
    practitioner_id: Annotated[str | None, Field(pattern=_FHIR_ID)] = None
    product: Literal["ketamine", "esketamine"]
    route: Literal["IV", "IM", "intranasal", "oral", "subcutaneous"]
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
            raise ValueError("times must run pre-dose vitals <= dose <= ~40 min vitals <= "
                             "discharge vitals")
        if self.route == "IV" and self.dose_mg_per_kg is None:
            raise ValueError("an IV dose needs dose_mg_per_kg")
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


@dataclass(frozen=True, slots=True)
class SessionWrite:
    entries: list[TxEntry]
    warnings: list[str]

    def bundle(self) -> Bundle:
        return build_transaction(self.entries)


@dataclass(frozen=True, slots=True)
class SessionWriteResult:
    result: TransactionResult
    warnings: list[str]


def _cc(system: str, code: str, display_text: str, text: str | None = None) -> CodeableConcept:
    return CodeableConcept(coding=[Coding(system=system, code=code, display=display_text)],
                           text=text)


def _category(code: str) -> list[CodeableConcept]:
    names = {"vital-signs": "Vital Signs", "survey": "Survey", "therapy": "Therapy"}
    return [_cc(OBSERVATION_CATEGORY, code, names[code])]


def _qty(value: float, unit: str, code: str) -> Quantity:
    return Quantity(value=value, unit=unit, system=UCUM, code=code)


def _session(code: str) -> CodeableConcept:
    return _cc(CS_SESSION, code, display(CS_SESSION, code))


class _Builder:
    def __init__(self, session: SessionInput) -> None:
        self.s = session
        self.system = f"{IDENTIFIER_BASE}/session"
        self.subject = Reference(reference=f"Patient/{session.patient_id}")
        self.performer = ([Reference(reference=f"Practitioner/{session.practitioner_id}")]
                          if session.practitioner_id else None)
        self.period = Period(start=session.dose_at, end=session.discharge.at)
        self.members: list[TxEntry] = []

    def key(self, item: str) -> str:
        return f"Patient/{self.s.patient_id}/session/{self.s.session_id}/{item}"

    def add(self, item: str, **fields: object) -> TxEntry:
        value = self.key(item)
        observation = Observation.model_validate({
            "identifier": [{"system": self.system, "value": value}], "status": "final",
            "subject": self.subject, "performer": self.performer, **fields})
        entry = TxEntry(observation, self.system, value)
        self.members.append(entry)
        return entry

    def vitals(self, label: str, vitals: VitalsInput) -> None:
        common = {"category": _category("vital-signs"), "effectiveDateTime": vitals.at}
        self.add(f"{label}/bp", code=_cc(LOINC, "85354-9", "Blood pressure panel with all "
                                         "children optional", "Blood pressure"),
                 component=[
                     ObservationComponent(code=_cc(LOINC, "8480-6", "Systolic blood pressure"),
                                          valueQuantity=_qty(vitals.systolic, "mmHg", "mm[Hg]")),
                     ObservationComponent(code=_cc(LOINC, "8462-4", "Diastolic blood pressure"),
                                          valueQuantity=_qty(vitals.diastolic, "mmHg", "mm[Hg]")),
                 ], **common)
        self.add(f"{label}/heart-rate", code=_cc(LOINC, "8867-4", "Heart rate"),
                 valueQuantity=_qty(vitals.heart_rate, "beats/minute", "/min"), **common)
        if vitals.spo2 is not None:
            code = CodeableConcept(coding=[
                Coding(system=LOINC, code="59408-5",
                       display="Oxygen saturation in Arterial blood by Pulse oximetry"),
                Coding(system=LOINC, code="2708-6", display="Oxygen saturation in Arterial blood"),
            ], text="SpO2")
            self.add(f"{label}/spo2", code=code, valueQuantity=_qty(vitals.spo2, "%", "%"),
                     **common)

    def build(self) -> list[TxEntry]:
        s = self.s
        for label, vitals in (("pre-dose", s.pre_dose), ("40-min", s.at_40_min),
                              ("discharge", s.discharge)):
            self.vitals(label, vitals)
        therapy, survey = _category("therapy"), _category("survey")
        self.add("dose-mg", category=therapy, code=_session("dose-mg"),
                 effectiveDateTime=s.dose_at, valueQuantity=_qty(s.dose_mg, "mg", "mg"))
        if s.dose_mg_per_kg is not None:
            self.add("dose-mg-per-kg", category=therapy, code=_session("dose-mg-per-kg"),
                     effectiveDateTime=s.dose_at,
                     valueQuantity=_qty(s.dose_mg_per_kg, "mg/kg", "mg/kg"))
        route_code, route_name = ROUTES[s.route]
        self.add("route", category=therapy, code=_session("route"), effectiveDateTime=s.dose_at,
                 valueCodeableConcept=_cc(SNOMED, route_code, route_name, s.route))
        self.add("moaas", category=survey, code=_session("moaas"), effectivePeriod=self.period,
                 valueCodeableConcept=_cc(CS_MOAAS, str(s.moaas), display(CS_MOAAS, str(s.moaas))))
        if s.cadss_total is not None:
            self.add("cadss-total", category=survey, code=_session("cadss-total"),
                     effectivePeriod=self.period, valueInteger=s.cadss_total)
        for n, event in enumerate(s.adverse_events, start=1):
            self.add(f"adverse-event/{n}", category=therapy, code=_session("adverse-event"),
                     effectivePeriod=self.period,
                     valueCodeableConcept=_cc(CS_SESSION, event.code,
                                              display(CS_SESSION, event.code), event.text))
        self.add("monitoring-minutes", category=therapy, code=_session("monitoring-minutes"),
                 effectivePeriod=self.period,
                 valueQuantity=_qty(s.monitoring_minutes, "min", "min"))
        self.add("ready-to-leave", category=therapy, code=_session("ready-to-leave"),
                 effectiveDateTime=s.discharge.at, valueBoolean=s.ready_to_leave)
        members = list(self.members)
        session = self.add(
            "session", category=therapy, code=_session("treatment-session"),
            effectivePeriod=Period(start=s.pre_dose.at, end=s.discharge.at),
            component=[ObservationComponent(code=_session("product"),
                                            valueCodeableConcept=_session(s.product))],
            hasMember=[m.reference() for m in members])
        return [session, *members]


def build_session_write(session: SessionInput, *, now: datetime | None = None) -> SessionWrite:
    """The transaction entries recording ``session``, and the warnings to show."""
    builder = _Builder(session)
    observations = builder.build()
    device = app_device_entry()
    practitioner = session.practitioner_id
    provenance = provenance_entry(
        builder.key("provenance"), [device, *observations], device=device,
        device_role="assembler" if practitioner else "author", practitioner=practitioner,
        practitioner_role="author", recorded=now or datetime.now(UTC))
    return SessionWrite([device, *observations, provenance], session.warnings())


async def write_session(client: FhirClient, session: SessionInput) -> SessionWriteResult:
    """Write ``session`` as one transaction; sending it again adds nothing."""
    write = build_session_write(session)
    return SessionWriteResult(await submit(client, write.bundle()), write.warnings)
