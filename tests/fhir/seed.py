"""A synthetic patient with more Observations than one search page, for the sandbox tests and the
gather measurement (``tests/fhir/measure_gather.py``). Everything here is invented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from service.config import Settings
from service.fhir.client import FhirClient

AS_OF = datetime(2026, 6, 15, 12, tzinfo=UTC)
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _bp(pid: str, rid: str, when: datetime, systolic: int, diastolic: int) -> dict[str, Any]:
    def part(code: str, value: int) -> dict[str, Any]:
        return {"code": {"coding": [{"system": LOINC, "code": code}]},
                "valueQuantity": {"value": value, "unit": "mmHg", "system": UCUM,
                                  "code": "mm[Hg]"}}

    return {"resourceType": "Observation", "id": rid, "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs"}]}],
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": _iso(when),
            "component": [part("8480-6", systolic), part("8462-4", diastolic)]}


def big_patient(pid: str, *, bp_in_window: int = 1200, bp_old: int = 40) -> list[dict[str, Any]]:
    """Patient + ``bp_in_window`` BP panels in the last 30 days + ``bp_old`` older ones, a
    weight, a heart rate, a cholesterol (no rule reads it), a Condition and two medications (one
    by a Medication reference)."""
    subject = {"reference": f"Patient/{pid}"}
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": pid, "birthDate": "1975-04-02"}]
    step = timedelta(days=29) / bp_in_window
    for n in range(bp_in_window):
        resources.append(_bp(pid, f"{pid}-bp{n}", AS_OF - step * (n + 1), 110 + n % 40,
                             70 + n % 20))
    for n in range(bp_old):
        resources.append(_bp(pid, f"{pid}-old{n}", AS_OF - timedelta(days=40 + n), 150, 95))

    def simple(rid: str, code: str, value: float, unit: str) -> dict[str, Any]:
        return {"resourceType": "Observation", "id": rid, "status": "final",
                "code": {"coding": [{"system": LOINC, "code": code}]}, "subject": subject,
                "effectiveDateTime": _iso(AS_OF - timedelta(days=100)),
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}

    resources += [
        simple(f"{pid}-wt", "29463-7", 71.5, "kg"),
        simple(f"{pid}-hr", "8867-4", 64, "/min"),
        simple(f"{pid}-chol", "2093-3", 180, "mg/dL"),
        {"resourceType": "Condition", "id": f"{pid}-c1", "subject": subject,
         "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F32.2"}],
                  "text": "Major depressive disorder, single episode, severe"}},
        {"resourceType": "Medication", "id": f"{pid}-med1",
         "code": {"text": "sertraline 50 mg tablet"}},
        {"resourceType": "MedicationStatement", "id": f"{pid}-ms1", "status": "active",
         "subject": subject, "medicationReference": {"reference": f"Medication/{pid}-med1"}},
        {"resourceType": "MedicationRequest", "id": f"{pid}-mr1", "status": "active",
         "intent": "order", "subject": subject,
         "medicationCodeableConcept": {"text": "lorazepam 1 mg tablet"}},
        {"resourceType": "AllergyIntolerance", "id": f"{pid}-a1", "patient": subject,
         "clinicalStatus": {"coding": [{
             "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
             "code": "active"}]},
         "code": {"text": "penicillin"}},
    ]
    return resources


def expected_server_ids(resources: list[dict[str, Any]]) -> set[str]:
    """What read_patient_data must return: all but the old BPs, the cholesterol, the Patient
    and the Medication (those two go elsewhere in RawPatientData)."""
    return {f"{r['resourceType']}/{r['id']}" for r in resources
            if r["resourceType"] not in ("Patient", "Medication")
            and "-old" not in r["id"] and not r["id"].endswith("-chol")}


def as_bundle(base: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r}
                      for r in resources]}


async def load(base_url: str, resources: list[dict[str, Any]], chunk: int = 300) -> None:
    """PUT the resources (client ids, so loading again changes nothing) in a few transactions.

    Validating hundreds of resources is slow on a busy 2-core machine: a generous timeout here.
    """
    # Referenced resources first: a transaction may only point at what exists or is in it.
    async with FhirClient(base_url, settings=Settings(fhir_timeout_seconds=180)) as fhir:
        await _load(fhir, resources, chunk)


async def _load(fhir: FhirClient, resources: list[dict[str, Any]], chunk: int) -> None:
    ordered = sorted(resources, key=lambda r: r["resourceType"] not in ("Patient", "Medication"))
    for start in range(0, len(ordered), chunk):
        part = ordered[start:start + chunk]
        await fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": f"{fhir.base_url}{r['resourceType']}/{r['id']}", "resource": r,
             "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in part]}, retry=True)  # PUTs with fixed ids: replaying is harmless
