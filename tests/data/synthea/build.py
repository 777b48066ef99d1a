"""Writes the Synthea-shaped test patients in this folder (``python -m tests.data.synthea.build``).

Each patient is written the way Synthea R4 writes one (see README.md): a ``collection`` Bundle
with ``urn:uuid`` fullUrls and references, SNOMED CT-only problem lists whose ``code.text``
repeats the display, RxNorm product (SCD/SBD) codes on MedicationRequests, vital signs as LOINC
panels with UCUM units. The records are ours; the codes, displays and shapes are Synthea's.
``tests/screening/test_synthea.py`` checks that the files equal what this module builds.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
AS_OF = "2020-06-01T12:00:00Z"
"""The evaluation time every expectation is written for."""
_NS = uuid.UUID("5e9c1a52-8d4f-4b55-9b1e-8f0b6f3f1e01")


def _cc(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


@dataclass
class Synthea:
    name: str
    birth: str
    gender: str
    entries: list[dict[str, Any]] = field(default_factory=list)

    def uid(self, label: str) -> str:
        return str(uuid.uuid5(_NS, f"{self.name}/{label}"))

    @property
    def pid(self) -> str:
        return self.uid("patient")

    def _add(self, resource: dict[str, Any]) -> str:
        self.entries.append(resource)
        return f"{resource['resourceType']}/{resource['id']}"

    def condition(self, code: str, display: str, onset: str, *, abated: str | None = None,
                  label: str | None = None) -> str:
        status = "resolved" if abated else "active"
        res: dict[str, Any] = {
            "resourceType": "Condition", "id": self.uid(label or f"c-{code}-{onset}"),
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": status}]},
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "confirmed"}]},
            "code": _cc(SNOMED, code, display),
            "subject": {"reference": f"urn:uuid:{self.pid}"},
            "onsetDateTime": f"{onset}T09:30:00+00:00",
        }
        if abated:
            res["abatementDateTime"] = f"{abated}T09:30:00+00:00"
        res["recordedDate"] = f"{onset}T09:30:00+00:00"
        return self._add(res)

    def medication(self, code: str, display: str, authored: str, *, status: str = "active",
                   as_needed: bool = False) -> str:
        return self._add({
            "resourceType": "MedicationRequest", "id": self.uid(f"m-{code}-{authored}"),
            "status": status, "intent": "order",
            "medicationCodeableConcept": _cc(RXNORM, code, display),
            "subject": {"reference": f"urn:uuid:{self.pid}"},
            "authoredOn": f"{authored}T09:30:00+00:00",
            "dosageInstruction": [{"sequence": 1, "asNeededBoolean": as_needed}]
            if as_needed else [{"sequence": 1, "timing": {"repeat": {
                "frequency": 1, "period": 1, "periodUnit": "d"}}, "asNeededBoolean": False}],
        })

    def allergy(self, code: str, display: str, recorded: str) -> str:
        return self._add({
            "resourceType": "AllergyIntolerance", "id": self.uid(f"a-{code}"),
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "code": "active"}]},
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "code": "confirmed"}]},
            "type": "allergy", "category": ["food"], "criticality": "low",
            "code": _cc(SNOMED, code, display),
            "patient": {"reference": f"urn:uuid:{self.pid}"},
            "recordedDate": f"{recorded}T09:30:00+00:00",
        })

    def _obs(self, code: str, display: str, when: str, **value: Any) -> dict[str, Any]:
        return {"resourceType": "Observation", "id": self.uid(f"o-{code}-{when}"),
                "status": "final",
                "category": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs", "display": "vital-signs"}]}],
                "code": _cc(LOINC, code, display),
                "subject": {"reference": f"urn:uuid:{self.pid}"},
                "effectiveDateTime": f"{when}T09:30:00+00:00",
                "issued": f"{when}T09:30:00.180+00:00", **value}

    def vitals(self, when: str, systolic: float, diastolic: float, kg: float | None) -> None:
        bp = self._obs("55284-4", "Blood Pressure", when)
        bp["component"] = [
            {"code": _cc(LOINC, "8462-4", "Diastolic Blood Pressure"),
             "valueQuantity": {"value": diastolic, "unit": "mm[Hg]", "system": UCUM,
                               "code": "mm[Hg]"}},
            {"code": _cc(LOINC, "8480-6", "Systolic Blood Pressure"),
             "valueQuantity": {"value": systolic, "unit": "mm[Hg]", "system": UCUM,
                               "code": "mm[Hg]"}}]
        self._add(bp)
        if kg is not None:
            self._add(self._obs("29463-7", "Body Weight", when, valueQuantity={
                "value": kg, "unit": "kg", "system": UCUM, "code": "kg"}))

    def phq9(self, when: str, total: int) -> str:
        res = self._obs("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score "
                                   "[Reported]", when,
                        valueQuantity={"value": total, "unit": "{score}", "system": UCUM,
                                       "code": "{score}"})
        res["category"] = [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey", "display": "survey"}]}]
        return self._add(res)

    def bundle(self) -> dict[str, Any]:
        patient = {"resourceType": "Patient", "id": self.pid, "gender": self.gender,
                   "birthDate": self.birth,
                   "name": [{"use": "official", "family": self.name.split("_")[1],
                             "given": [self.name.split("_")[0]]}]}
        return {"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in [patient, *self.entries]]}


def patients() -> list[Synthea]:
    out: list[Synthea] = []

    p = Synthea("Gilberto_Oropeza", "1955-04-08", "male")
    p.condition("5602001", "Opioid abuse (disorder)", "1985-04-08")
    p.condition("127295002", "Traumatic brain injury (disorder)", "1990-02-11")
    p.condition("230265002", "Familial Alzheimer's disease of early onset (disorder)", "2019-10-02")
    p.condition("271737000", "Anemia (disorder)", "2012-05-01")
    p.medication("861467", "Meperidine Hydrochloride 50 MG Oral Tablet", "2018-03-02",
                 status="stopped")
    p.medication("1049221", "Acetaminophen 325 MG / oxyCODONE Hydrochloride 5 MG Oral Tablet",
                 "2020-05-20")
    p.vitals("2020-05-20", 128, 82, 81.2)
    p.phq9("2020-05-20", 6)
    out.append(p)

    p = Synthea("Marcela_Lakin", "1991-07-19", "female")
    p.condition("72892002", "Normal pregnancy", "2019-11-10")
    p.condition("398254007", "Preeclampsia", "2020-05-15")
    p.medication("310325", "ferrous sulfate 325 MG Oral Tablet", "2019-11-10")
    p.vitals("2020-05-28", 152, 96, 74.0)
    p.phq9("2020-05-28", 4)
    out.append(p)

    p = Synthea("Rosalia_Hermann", "1962-02-03", "female")
    p.condition("79586000", "Tubal pregnancy", "1990-12-15")
    p.condition("198992004", "Antepartum eclampsia", "1995-03-02", abated="1995-04-01")
    p.condition("19169002", "Miscarriage in first trimester", "1993-06-10")
    p.condition("62106007", "Concussion with no loss of consciousness", "2011-04-23",
                abated="2011-06-22")
    p.vitals("2020-05-10", 124, 78, 66.5)
    p.phq9("2020-05-10", 3)
    out.append(p)

    p = Synthea("Donnell_Torres", "1940-09-01", "male")
    p.condition("49436004", "Atrial Fibrillation", "2000-07-29")
    p.condition("410429000", "Cardiac Arrest", "2016-04-26")
    p.condition("429007001", "History of cardiac arrest (situation)", "2016-04-26")
    p.condition("22298006", "Myocardial Infarction", "2020-03-14")
    p.condition("399211009", "History of myocardial infarction (situation)", "2020-03-14")
    p.medication("855332", "Warfarin Sodium 5 MG Oral Tablet", "2000-07-29")
    p.medication("197604", "Digoxin 0.125 MG Oral Tablet", "2000-07-29")
    p.medication("309362", "Clopidogrel 75 MG Oral Tablet", "2020-03-14")
    p.medication("705129", "Nitroglycerin 0.4 MG/ACTUAT Mucosal Spray", "2020-03-14")
    p.vitals("2020-05-25", 136, 84, 88.1)
    p.phq9("2020-05-25", 5)
    out.append(p)

    p = Synthea("Alden_Cormier", "1945-01-20", "male")
    p.condition("87433001", "Pulmonary emphysema (disorder)", "1988-07-26")
    p.condition("185086009", "Chronic obstructive bronchitis (disorder)", "2009-05-31")
    p.medication("896209", "60 ACTUAT Fluticasone propionate 0.25 MG/ACTUAT / salmeterol "
                 "0.05 MG/ACTUAT Dry Powder Inhaler", "2009-05-31")
    p.medication("745679", "200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
                 "2009-05-31", as_needed=True)
    p.vitals("2020-05-18", 132, 80, None)
    p.phq9("2020-05-18", 2)
    out.append(p)

    p = Synthea("Ilse_Bergnaum", "1950-06-30", "female")
    p.condition("128613002", "Seizure disorder", "1959-11-28")
    p.condition("84757009", "Epilepsy", "1960-03-05")
    p.condition("230690007", "Stroke", "2015-02-23")
    p.medication("309362", "Clopidogrel 75 MG Oral Tablet", "2015-02-23")
    p.medication("1804799", "Alteplase 100 MG Injection", "2015-02-23", status="stopped")
    p.vitals("2020-05-30", 138, 86, 70.3)
    p.phq9("2020-05-30", 7)
    out.append(p)

    p = Synthea("Shayla_Nolan", "1996-01-15", "female")
    p.condition("72892002", "Normal pregnancy", "2020-02-01")
    p.condition("62106007", "Concussion with no loss of consciousness", "2018-09-03",
                abated="2018-10-20")
    p.medication("313782", "Acetaminophen 325 MG Oral Tablet", "2018-09-03", status="stopped")
    p.vitals("2020-05-29", 112, 70, 61.0)
    p.phq9("2020-05-29", 5)
    out.append(p)

    p = Synthea("Milan_Brekke", "1985-03-12", "female")
    p.condition("370143000", "Major depression disorder", "2018-01-15")
    p.medication("406022", "Fluoxetine 25MG", "2018-01-15", status="stopped")
    p.medication("406022", "Fluoxetine 25MG", "2018-03-15", status="stopped")
    p.medication("328670", "Sertraline 100MG", "2019-01-10")
    p.vitals("2020-05-12", 118, 74, 64.2)
    p.phq9("2020-05-12", 17)
    out.append(p)

    p = Synthea("Sherman_McKenzie", "1975-08-22", "male")
    p.condition("370143000", "Major depression disorder", "2019-09-01")
    p.condition("55680006", "Drug overdose", "2019-08-20")
    p.condition("47505003", "Posttraumatic stress disorder", "2015-04-04")
    p.medication("406022", "Fluoxetine 25MG", "2020-05-10")
    p.vitals("2020-05-21", 144, 88, 92.4)
    out.append(p)

    p = Synthea("Keira_Jast", "1993-10-05", "female")
    p.condition("72892002", "Normal pregnancy", "2021-03-01")
    p.condition("398254007", "Preeclampsia", "2021-07-18")
    p.condition("444814009", "Viral sinusitis (disorder)", "2020-01-10", abated="2020-01-24")
    p.vitals("2020-05-26", 116, 72, 59.8)
    p.phq9("2020-05-26", 3)
    out.append(p)

    p = Synthea("Tyson_Lind", "2008-11-02", "male")
    p.allergy("91935009", "Allergy to peanuts", "2012-04-11")
    p.medication("1870230", "NDA020800 0.3 ML Epinephrine 1 MG/ML Auto-Injector", "2012-04-11")
    p.vitals("2020-05-14", 108, 66, 45.5)
    p.phq9("2020-05-14", 4)
    out.append(p)

    p = Synthea("Hester_Kuvalis", "1935-12-01", "female")
    p.condition("26929004", "Alzheimer's disease (disorder)", "2016-03-25")
    p.medication("997223", "Donepezil hydrochloride 10 MG Oral Tablet", "2016-03-25")
    p.medication("996740", "Memantine hydrochloride 2 MG/ML Oral Solution", "2018-07-02")
    p.medication("1049621", "oxyCODONE Hydrochloride 5 MG Oral Tablet", "2020-05-27")
    p.vitals("2020-05-27", 184, 92, 52.0)
    out.append(p)
    return out


def write() -> list[Path]:
    paths = []
    for p in patients():
        path = HERE / f"{p.name}.json"
        path.write_text(json.dumps(p.bundle(), indent=1) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write():
        print(written.name)  # noqa: T201
