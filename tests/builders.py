"""Synthetic FHIR R4 patients for tests: small builders that make valid resources (as dicts).

Everything here is invented. Every resource is shaped so that a strict server (HAPI with base R4
request validation) accepts it, so one table of patients can run through the Bundle path and the
server path alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"

AS_OF = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
EXAMPLE_BASE = "https://ehr.example.org/fhir"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def concept(system: str | None = None, code: str | None = None, display: str | None = None,
            text: str | None = None) -> dict[str, Any]:
    cc: dict[str, Any] = {}
    if code:
        coding: dict[str, Any] = {"system": system, "code": code}
        if display:
            coding["display"] = display
        cc["coding"] = [coding]
    if text:
        cc["text"] = text
    return cc


@dataclass
class PatientBuilder:
    """One patient; ``normal_vitals`` adds a normal BP 3 days before AS_OF, a weight and a
    baseline PHQ-9 total."""

    pid: str
    birth: str = "1980-03-01"
    normal_vitals: bool = True
    resources: list[dict[str, Any]] = field(default_factory=list)
    _n: int = 0

    def __post_init__(self) -> None:
        if self.normal_vitals:
            self.bp(122, 76, days_ago=3, rid=f"{self.pid}-bp-base")
            self.weight(72, rid=f"{self.pid}-wt")
            self.phq9(14, rid=f"{self.pid}-phq9")

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{self.pid}-{prefix}{self._n}"

    @property
    def subject(self) -> dict[str, str]:
        return {"reference": f"Patient/{self.pid}"}

    def patient(self) -> dict[str, Any]:
        return {"resourceType": "Patient", "id": self.pid, "gender": "unknown",
                "birthDate": self.birth}

    def add(self, resource: dict[str, Any]) -> str:
        self.resources.append(resource)
        return f"{resource['resourceType']}/{resource['id']}"

    def condition(self, code: str | None = None, display: str | None = None, *,
                  system: str = ICD, text: str | None = None, clinical: str | None = "active",
                  verification: str | None = "confirmed", recorded: str | None = "2025-01-10",
                  onset: str | None = None, abatement: str | None = None,
                  note: str | None = None) -> str:
        res: dict[str, Any] = {"resourceType": "Condition", "id": self._id("c"),
                               "subject": self.subject,
                               "code": concept(system, code, display, text)}
        if recorded:
            res["recordedDate"] = recorded
        if clinical and verification != "entered-in-error":
            res["clinicalStatus"] = concept(CLINICAL, clinical)
        if verification:
            res["verificationStatus"] = concept(VERIFICATION, verification)
        if onset:
            res["onsetDateTime"] = onset
        if abatement:
            res["abatementDateTime"] = abatement
        if note:
            res["note"] = [{"text": note}]
        return self.add(res)

    def allergy(self, code: str | None = None, display: str | None = None, *,
                system: str = RXNORM, text: str | None = None, clinical: str = "active",
                verification: str = "confirmed", recorded: str = "2024-02-02") -> str:
        res: dict[str, Any] = {"resourceType": "AllergyIntolerance", "id": self._id("a"),
                               "patient": self.subject,
                               "code": concept(system, code, display, text),
                               "verificationStatus": concept(ALLERGY_VERIFICATION, verification),
                               "recordedDate": recorded}
        if verification != "entered-in-error":
            res["clinicalStatus"] = concept(ALLERGY_CLINICAL, clinical)
        return self.add(res)

    def medication(self, code: str | None = None, display: str | None = None, *,
                   system: str = RXNORM, text: str | None = None, status: str = "active",
                   period_end: str | None = None, request: bool = False,
                   form: str = "concept", start: str | None = None,
                   authored: str = "2026-05-01", supply_days: float | None = None,
                   repeats: int | None = None, intent: str = "order",
                   as_needed: bool = False, reason: str | None = None,
                   dosage: str | None = None, note: str | None = None,
                   asserted: str | None = "2026-05-01") -> str:
        """``form``: concept (CodeableConcept), contained, or referenced (a Medication resource).

        A statement has ``effectivePeriod`` [start, period_end] when either is given; a request
        has ``authoredOn`` and, with ``supply_days``, a dispenseRequest."""
        kind = "MedicationRequest" if request else "MedicationStatement"
        res: dict[str, Any] = {"resourceType": kind, "id": self._id("m"), "status": status,
                               "subject": self.subject}
        drug = concept(system, code, display, text)
        if form == "concept":
            res["medicationCodeableConcept"] = drug
        elif form == "contained":
            res["contained"] = [{"resourceType": "Medication", "id": "med", "code": drug}]
            res["medicationReference"] = {"reference": "#med"}
        else:
            med_id = self._id("med")
            self.resources.append({"resourceType": "Medication", "id": med_id, "code": drug})
            res["medicationReference"] = {"reference": f"Medication/{med_id}"}
        dosages: list[dict[str, Any]] = []
        if as_needed or dosage:
            one: dict[str, Any] = {}
            if dosage:
                one["text"] = dosage
            if as_needed:
                one["asNeededBoolean"] = True
            dosages.append(one)
        if reason:
            res["reasonCode"] = [{"text": reason}]
        if note:
            res["note"] = [{"text": note}]
        if request:
            res["intent"] = intent
            res["authoredOn"] = authored
            if supply_days is not None:
                supply: dict[str, Any] = {"expectedSupplyDuration": {
                    "value": supply_days, "unit": "days", "system": UCUM, "code": "d"}}
                if repeats is not None:
                    supply["numberOfRepeatsAllowed"] = repeats
                res["dispenseRequest"] = supply
            if dosages:
                res["dosageInstruction"] = dosages
        else:
            if asserted:
                res["dateAsserted"] = asserted
            if period_end or start:
                period = {"start": start or "2025-01-01"}
                if period_end:
                    period["end"] = period_end
                res["effectivePeriod"] = period
            if dosages:
                res["dosage"] = dosages
        return self.add(res)

    def dispense(self, code: str | None = None, display: str | None = None, *,
                 system: str = RXNORM, text: str | None = None, handed_over: str,
                 days_supply: float | None, status: str = "completed") -> str:
        res: dict[str, Any] = {"resourceType": "MedicationDispense", "id": self._id("d"),
                               "status": status, "subject": self.subject,
                               "medicationCodeableConcept": concept(system, code, display, text),
                               "whenHandedOver": handed_over}
        if days_supply is not None:
            res["daysSupply"] = {"value": days_supply, "unit": "days", "system": UCUM,
                                 "code": "d"}
        return self.add(res)

    def _obs(self, code: str, display: str, when: datetime, status: str,
             rid: str | None) -> dict[str, Any]:
        return {"resourceType": "Observation", "id": rid or self._id("o"), "status": status,
                "code": concept(LOINC, code, display), "subject": self.subject,
                "effectiveDateTime": iso(when)}

    def bp(self, systolic: float, diastolic: float, *, days_ago: float = 1,
           status: str = "final", unit: str | None = "mm[Hg]", rid: str | None = None) -> str:
        res = self._obs("85354-9", "Blood pressure panel", AS_OF - timedelta(days=days_ago),
                        status, rid)
        res["component"] = [
            {"code": concept(LOINC, "8480-6", "Systolic blood pressure"),
             "valueQuantity": _quantity(systolic, unit)},
            {"code": concept(LOINC, "8462-4", "Diastolic blood pressure"),
             "valueQuantity": _quantity(diastolic, unit)},
        ]
        return self.add(res)

    def single(self, code: str, value: float, *, days_ago: float = 1,
               unit: str | None = "mm[Hg]", status: str = "final") -> str:
        res = self._obs(code, "blood pressure", AS_OF - timedelta(days=days_ago), status, None)
        res["valueQuantity"] = _quantity(value, unit)
        return self.add(res)

    def weight(self, kg: float, *, rid: str | None = None) -> str:
        res = self._obs("29463-7", "Body weight", AS_OF - timedelta(days=3), "final", rid)
        res["valueQuantity"] = {"value": kg, "unit": "kg", "system": UCUM, "code": "kg"}
        return self.add(res)

    def phq9(self, total: int, *, days_ago: float = 3, rid: str | None = None) -> str:
        res = self._obs("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score",
                        AS_OF - timedelta(days=days_ago), "final", rid)
        res["valueQuantity"] = {"value": total, "unit": "{score}", "system": UCUM,
                                "code": "{score}"}
        return self.add(res)

    def pregnancy_status(self, answer: str, display: str, *, days_ago: float = 2) -> str:
        res = self._obs("82810-3", "Pregnancy status", AS_OF - timedelta(days=days_ago),
                        "final", None)
        res["valueCodeableConcept"] = concept(LOINC, answer, display)
        return self.add(res)

    def bundle(self) -> dict[str, Any]:
        entries = [self.patient(), *self.resources]
        return {"resourceType": "Bundle", "type": "collection",
                "entry": [{"fullUrl": f"{EXAMPLE_BASE}/{r['resourceType']}/{r['id']}",
                           "resource": r} for r in entries]}


def _quantity(value: float, unit: str | None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value}
    if unit == "mm[Hg]":
        q.update(unit="mmHg", system=UCUM, code="mm[Hg]")
    elif unit:
        q.update(unit=unit, system=UCUM, code=unit)
    return q
