"""One ketamine / esketamine treatment session as FHIR R4 Observations, for one transaction.

What is recorded is :mod:`service.render.session_items` (the reference's Session observations):
BP and heart rate before dosing, at about 40 minutes and at discharge, SpO2, dose (mg, and mg/kg
for IV), route, lot, sedation (MOAA/S), dissociation (CADSS total), adverse events, monitoring
time (with the monitoring clinician as its performer) and readiness to leave, and the rest of the
Spravato REMS Patient Monitoring Form: concomitant benzodiazepines, non-benzodiazepine sedative
hypnotics, psychostimulants and MAOIs (one Observation, a yes/no component each), vitals acceptable
before dosing and at the end, when the patient would have been ready to leave, respiratory
depression and the lowest SpO2, and the healthcare setting. Vital signs use the R4 vital-signs /
US Core shapes (https://hl7.org/fhir/R4/observation-vitalsigns.html: BP panel 85354-9 with
components 8480-6 / 8462-4 in mm[Hg], heart rate 8867-4 in /min, SpO2 59408-5 + 2708-6 in %); the
rest uses the project's CodeSystems. Everything hangs off one session Observation through
``hasMember``. An esketamine session also gets the Task that tracks its REMS form's submission
(:mod:`service.render.rems_form`), in the same transaction.

Identifiers derive from the patient and the session identifier, so submitting a session twice
leaves one set. Building only: the write itself is service.workflow's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.observation import Observation, ObservationComponent
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference

from service.fhir.codesystems import CS_MOAAS, CS_SESSION, IDENTIFIER_BASE, canonical, display
from service.fhir.transaction import TxEntry, build_transaction
from service.render.rems_form import rems_task_entry
from service.render.session_input import SessionInput, VitalsInput
from service.render.session_items import CONCOMITANT, ROUTES, VITALS_STEPS
from service.render.writeback import (
    OBSERVATION_CATEGORY,
    app_agent,
    encounter_reference,
    provenance_entry,
)

if TYPE_CHECKING:
    from fhir.resources.R4B.bundle import Bundle

__all__ = ["LOINC", "SESSION_SYSTEM", "SNOMED", "UCUM", "SessionWrite", "build_session_write"]

SESSION_SYSTEM = f"{IDENTIFIER_BASE}/session"
"""Identifier system of every session Observation: ``Patient/<id>/session/<session>/<item>``."""
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"


@dataclass(frozen=True, slots=True)
class SessionWrite:
    entries: list[TxEntry]
    warnings: list[str]

    def bundle(self) -> Bundle:
        return build_transaction(self.entries)


def _cc(system: str, code: str, display_text: str, text: str | None = None) -> CodeableConcept:
    return CodeableConcept(coding=[Coding(system=system, code=code, display=display_text)],
                           text=text)


def _category(code: str) -> list[CodeableConcept]:
    names = {"vital-signs": "Vital Signs", "survey": "Survey", "therapy": "Therapy"}
    return [_cc(OBSERVATION_CATEGORY, code, names[code])]


def _qty(value: float, unit: str, code: str) -> Quantity:
    return Quantity(value=value, unit=unit, system=UCUM, code=code)


def _spo2_code(text: str) -> CodeableConcept:
    return CodeableConcept(coding=[
        Coding(system=LOINC, code="59408-5",
               display="Oxygen saturation in Arterial blood by Pulse oximetry"),
        Coding(system=LOINC, code="2708-6", display="Oxygen saturation in Arterial blood"),
    ], text=text)


def _session(code: str) -> CodeableConcept:
    return _cc(canonical(CS_SESSION), code, display(CS_SESSION, code))


class _Builder:
    def __init__(self, session: SessionInput, encounter: str | None) -> None:
        self.s = session
        self.encounter = encounter_reference(encounter)
        self.system = canonical(SESSION_SYSTEM)
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
            "subject": self.subject, "encounter": self.encounter, "performer": self.performer,
            **fields})
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
            self.add(f"{label}/spo2", code=_spo2_code("SpO2"),
                     valueQuantity=_qty(vitals.spo2, "%", "%"), **common)

    def rems_items(self, therapy: list[CodeableConcept]) -> None:
        """The REMS form's items beyond vitals, dose, sedation and monitoring time."""
        s = self.s
        if s.lot_number:
            self.add("lot-number", category=therapy, code=_session("lot-number"),
                     effectiveDateTime=s.dose_at, valueString=s.lot_number)
        if s.concomitant:
            self.add("concomitant-medications", category=therapy,
                     code=_session("concomitant-medications"), effectiveDateTime=s.pre_dose.at,
                     component=[ObservationComponent(code=_session(q.code),
                                                     valueBoolean=s.concomitant[q.code])
                                for q in CONCOMITANT if q.code in s.concomitant])
        for item, answer, at in (("vitals-acceptable-pre-dose", s.vitals_ok_pre_dose,
                                  s.pre_dose.at),
                                 ("vitals-acceptable-end", s.vitals_ok_end, s.discharge.at)):
            if answer is not None:
                self.add(item, category=therapy, code=_session(item), effectiveDateTime=at,
                         valueBoolean=answer)
        if s.ready_at is not None:
            self.add("ready-to-leave-at", category=therapy, code=_session("ready-to-leave-at"),
                     effectiveDateTime=s.ready_at, valueDateTime=s.ready_at)
        if s.respiratory_depression is not None:
            self.add("respiratory-depression-observed", category=therapy,
                     code=_session("respiratory-depression-observed"),
                     effectivePeriod=self.period,
                     valueBoolean=s.respiratory_depression)
        if s.lowest_spo2 is not None:
            self.add("lowest-spo2", category=_category("vital-signs"), code=_spo2_code(
                "Lowest SpO2 during monitoring"), effectivePeriod=self.period,
                valueQuantity=_qty(s.lowest_spo2, "%", "%"))
        if s.setting:
            self.add("healthcare-setting", category=therapy, code=_session("healthcare-setting"),
                     effectivePeriod=self.period, valueString=s.setting)

    def build(self) -> list[TxEntry]:
        s = self.s
        for step in VITALS_STEPS:
            self.vitals(step.key, getattr(s, step.field))
        therapy, survey = _category("therapy"), _category("survey")
        self.add("dose-mg", category=therapy, code=_session("dose-mg"),
                 effectiveDateTime=s.dose_at, valueQuantity=_qty(s.dose_mg, "mg", "mg"))
        if s.dose_mg_per_kg is not None:
            self.add("dose-mg-per-kg", category=therapy, code=_session("dose-mg-per-kg"),
                     effectiveDateTime=s.dose_at,
                     valueQuantity=_qty(s.dose_mg_per_kg, "mg/kg", "mg/kg"))
        route = ROUTES[s.route]
        self.add("route", category=therapy, code=_session("route"), effectiveDateTime=s.dose_at,
                 valueCodeableConcept=_cc(SNOMED, route.snomed, route.snomed_display, s.route))
        self.add("moaas", category=survey, code=_session("moaas"), effectivePeriod=self.period,
                 valueCodeableConcept=_cc(canonical(CS_MOAAS), str(s.moaas),
                                          display(CS_MOAAS, str(s.moaas))))
        if s.cadss_total is not None:
            self.add("cadss-total", category=survey, code=_session("cadss-total"),
                     effectivePeriod=self.period, valueInteger=s.cadss_total)
        for n, event in enumerate(s.adverse_events, start=1):
            self.add(f"adverse-event/{n}", category=therapy, code=_session("adverse-event"),
                     effectivePeriod=self.period,
                     valueCodeableConcept=_cc(canonical(CS_SESSION), event.code,
                                              display(CS_SESSION, event.code), event.text))
        # Who monitored may not be who documents: a name, as a display-only reference.
        monitor = [Reference(display=s.monitoring_clinician)] if s.monitoring_clinician else []
        self.add("monitoring-minutes", category=therapy, code=_session("monitoring-minutes"),
                 effectivePeriod=self.period,
                 valueQuantity=_qty(s.monitoring_minutes, "min", "min"),
                 performer=[*(self.performer or []), *monitor] or None)
        self.add("ready-to-leave", category=therapy, code=_session("ready-to-leave"),
                 effectiveDateTime=s.discharge.at, valueBoolean=s.ready_to_leave)
        self.rems_items(therapy)
        members = list(self.members)
        session = self.add(
            "session", category=therapy, code=_session("treatment-session"),
            effectivePeriod=Period(start=s.pre_dose.at, end=s.discharge.at),
            component=[ObservationComponent(code=_session("product"),
                                            valueCodeableConcept=_session(s.product))],
            hasMember=[m.reference() for m in members])
        return [session, *members]


def build_session_write(session: SessionInput, *, now: datetime | None = None,
                        encounter: str | None = None) -> SessionWrite:
    """The transaction entries recording ``session``, and the warnings to show; ``encounter``
    (the launch's Encounter id) goes on every Observation and the REMS form Task."""
    builder = _Builder(session, encounter)
    observations = builder.build()
    recorded = now or datetime.now(UTC)
    if session.product == "esketamine":
        observations.append(rems_task_entry(session, observations[0], builder.system,
                                            builder.key("rems-form"),
                                            now=recorded, encounter=encounter))
    practitioner = session.practitioner_id
    provenance = provenance_entry(
        builder.key("provenance"), observations, app=app_agent(),
        app_role="assembler" if practitioner else "author", practitioner=practitioner,
        practitioner_role="author", recorded=recorded)
    return SessionWrite([*observations, provenance], session.warnings())
