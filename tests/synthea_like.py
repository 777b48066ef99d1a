"""Invented patients shaped like Synthea's R4 output, for the population benchmark and tests.

Synthea (https://github.com/synthetichealth/synthea) writes one record per person: a Patient with
US Core extensions and an MRN, yearly wellness visits with vital signs (height, weight, BMI, a
blood pressure panel with systolic/diastolic components, heart and respiratory rate), lab panels,
a smoking status, conditions coded in SNOMED CT and medication requests coded as RxNorm
products. These patients copy that shape (and its unread extras: narrative, extensions,
categories), not its data: every value here is drawn from a seeded random generator.

Codes: SNOMED CT and LOINC as Synthea uses them; RxNorm product codes as in Synthea's medication
modules, the benzodiazepines and opioids from the CDC Opioid Prescribing Support value sets (CC0).
References are ``Patient/<id>`` (no Encounters: the sandbox enforces referential integrity), so a
patient loads with PUTs in any transaction after its Patient.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from tests.builders import AS_OF, LOINC, RXNORM, SNOMED, UCUM, iso

__all__ = ["CONDITIONS", "DRUGS", "population", "synthea_patient"]

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

CONDITIONS = [  # (SNOMED CT, display, chronic)
    ("38341003", "Hypertension", True), ("15777000", "Prediabetes", True),
    ("44054006", "Diabetes", True), ("55822004", "Hyperlipidemia", True),
    ("162864005", "Body mass index 30+ - obesity (finding)", True),
    ("195662009", "Acute viral pharyngitis (disorder)", False),
    ("10509002", "Acute bronchitis (disorder)", False),
    ("444814009", "Viral sinusitis (disorder)", False),
    ("40055000", "Chronic sinusitis (disorder)", True), ("195967001", "Asthma", True),
    ("271737000", "Anemia (disorder)", True), ("73595000", "Stress (finding)", False),
    ("370143000", "Major depressive disorder (disorder)", True),
    ("36923009", "Major depression, single episode", True),
    ("239873007", "Osteoarthritis of knee", True), ("230690007", "Stroke", True),
    ("22298006", "Myocardial Infarction", True), ("58214004", "Schizophrenia (disorder)", True),
    ("233985008", "Abdominal aortic aneurysm (disorder)", True),
    ("7200002", "Alcoholism", True), ("72892002", "Normal pregnancy", False),
]
COMMON = 13
"""The first ``COMMON`` conditions are drawn often; the rest (what the rules look for) rarely."""

DRUGS = [  # (RxNorm product, display)
    ("314076", "lisinopril 10 MG Oral Tablet"), ("197361", "amlodipine 5 MG Oral Tablet"),
    ("860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet"),
    ("312961", "simvastatin 20 MG Oral Tablet"), ("310965", "ibuprofen 200 MG Oral Tablet"),
    ("313782", "acetaminophen 325 MG Oral Tablet"),
    ("316049", "hydrochlorothiazide 25 MG Oral Tablet"),
    ("312938", "sertraline 100 MG Oral Tablet"), ("310385", "fluoxetine 20 MG Oral Capsule"),
    ("895994", "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler"),
    ("308136", "amlodipine 2.5 MG Oral Tablet"),
    ("197901", "lorazepam 1 MG Oral Tablet"), ("308048", "alprazolam 0.5 MG Oral Tablet"),
    ("1049621", "oxycodone hydrochloride 5 MG Oral Tablet"),
    ("835603", "tramadol hydrochloride 50 MG Oral Tablet"),
]
COMMON_DRUGS = 11

FIRST = ["Abdul", "Adalberto", "Alethea", "Alysa", "Ambrose", "Antionette", "Casandra",
         "Clint", "Delbert", "Elijah", "Ernest", "Fletcher", "Juliette", "Truman", "Willis"]
FAMILY = ["Bergstrom", "Bechtelar", "Champlin", "Crona", "Dickens", "Fritsch", "Hettinger",
          "Jaskolski", "Koepp", "Padberg", "Schinner", "Wiegand", "Zieme"]


def _cc(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _patient(pid: str, rng: random.Random) -> dict[str, Any]:
    first, family = rng.choice(FIRST), rng.choice(FAMILY)
    born = AS_OF - timedelta(days=rng.randint(18 * 365, 85 * 365))
    return {
        "resourceType": "Patient", "id": pid,
        "text": {"status": "generated",
                 "div": '<div xmlns="http://www.w3.org/1999/xhtml">Invented patient</div>'},
        "extension": [
            {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
             "valueCode": rng.choice(["F", "M"])},
            {"url": "http://synthetichealth.github.io/synthea/disability-adjusted-life-years",
             "valueDecimal": round(rng.uniform(0, 5), 6)}],
        "identifier": [{"type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR",
            "display": "Medical Record Number"}], "text": "Medical Record Number"},
            "system": "http://hospital.smarthealthit.org", "value": f"mrn-{pid}"}],
        "name": [{"use": "official", "family": f"{family}{rng.randint(1, 999)}",
                  "given": [f"{first}{rng.randint(1, 999)}"], "prefix": ["Mx."]}],
        "telecom": [{"system": "phone", "value": "555-0100", "use": "home"}],
        "gender": rng.choice(["female", "male"]), "birthDate": born.date().isoformat(),
        "address": [{"city": "Springfield", "state": "MA", "country": "US"}],
    }


def _observation(pid: str, rid: str, code: str, display: str, when: datetime,
                 category: str = "vital-signs") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "category": [{"coding": [{"system": CATEGORY, "code": category,
                                      "display": category}]}],
            "code": _cc(LOINC, code, display), "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": iso(when), "issued": iso(when + timedelta(seconds=1))}


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


VITALS = [  # (LOINC, display, unit, low, high)
    ("8302-2", "Body Height", "cm", 150, 195), ("29463-7", "Body Weight", "kg", 50, 120),
    ("39156-5", "Body Mass Index", "kg/m2", 18, 38), ("8867-4", "Heart rate", "/min", 55, 100),
    ("9279-1", "Respiratory rate", "/min", 12, 20),
    ("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported", "{score}", 0,
     6),
]
LABS = [
    ("2093-3", "Total Cholesterol", "mg/dL", 150, 260), ("2571-8", "Triglycerides", "mg/dL",
                                                         80, 250),
    ("18262-6", "Low Density Lipoprotein Cholesterol", "mg/dL", 70, 180),
    ("2085-9", "High Density Lipoprotein Cholesterol", "mg/dL", 35, 80),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.5, 9),
    ("2339-0", "Glucose", "mg/dL", 70, 180),
]


def _visit(pid: str, n: int, when: datetime, rng: random.Random,
           labs: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for code, display, unit, low, high in VITALS:
        obs = _observation(pid, f"{pid}-o{n}-{code}", code, display, when)
        obs["valueQuantity"] = _quantity(round(rng.uniform(low, high), 1), unit)
        out.append(obs)
    bp = _observation(pid, f"{pid}-o{n}-bp", "85354-9", "Blood Pressure", when)
    bp["component"] = [
        {"code": _cc(LOINC, "8462-4", "Diastolic Blood Pressure"),
         "valueQuantity": _quantity(rng.randint(60, 100), "mm[Hg]")},
        {"code": _cc(LOINC, "8480-6", "Systolic Blood Pressure"),
         "valueQuantity": _quantity(rng.randint(100, 165), "mm[Hg]")}]
    out.append(bp)
    if labs:
        for code, display, unit, low, high in LABS:
            obs = _observation(pid, f"{pid}-o{n}-{code}", code, display, when, "laboratory")
            obs["valueQuantity"] = _quantity(round(rng.uniform(low, high), 1), unit)
            out.append(obs)
    smoking = _observation(pid, f"{pid}-o{n}-smoke", "72166-2", "Tobacco smoking status NHIS",
                           when, "social-history")
    smoking["valueCodeableConcept"] = _cc(SNOMED, *rng.choice(
        [("266919005", "Never smoker"), ("8517006", "Former smoker")]))
    out.append(smoking)
    return out


def _condition(pid: str, k: int, rng: random.Random) -> dict[str, Any]:
    pool = CONDITIONS if rng.random() < 0.08 else CONDITIONS[:COMMON]
    code, display, chronic = rng.choice(pool)
    onset = AS_OF - timedelta(days=rng.randint(30, 20 * 365), seconds=rng.randint(0, 86399))
    res: dict[str, Any] = {
        "resourceType": "Condition", "id": f"{pid}-c{k}",
        "clinicalStatus": {"coding": [{"system": CLINICAL,
                                       "code": "active" if chronic else "resolved"}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
        "code": _cc(SNOMED, code, display), "subject": {"reference": f"Patient/{pid}"},
        "onsetDateTime": iso(onset), "recordedDate": iso(onset)}
    if not chronic:
        res["abatementDateTime"] = iso(onset + timedelta(days=rng.randint(5, 30)))
    return res


def _medication_request(pid: str, k: int, rng: random.Random) -> dict[str, Any]:
    code, display = rng.choice(DRUGS if rng.random() < 0.08 else DRUGS[:COMMON_DRUGS])
    authored = AS_OF - timedelta(days=rng.randint(1, 10 * 365))
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest", "id": f"{pid}-mr{k}",
        "status": rng.choice(["active", "stopped", "completed"]), "intent": "order",
        "medicationCodeableConcept": _cc(RXNORM, code, display),
        "subject": {"reference": f"Patient/{pid}"}, "authoredOn": iso(authored),
        "dosageInstruction": [{"sequence": 1, "timing": {"repeat": {
            "frequency": 1, "period": 1, "periodUnit": "d"}},
            "asNeededBoolean": rng.random() < 0.2,
            "doseAndRate": [{"doseQuantity": {"value": 1}}]}]}
    if rng.random() < 0.5:
        res["dispenseRequest"] = {
            "numberOfRepeatsAllowed": rng.randint(0, 5),
            "expectedSupplyDuration": {"value": 30, "unit": "days",
                                       "system": UCUM, "code": "d"}}
    return res


def synthea_patient(pid: str, seed: int, *, observations: int = 150, conditions: int = 10,
                    medications: int = 10) -> list[dict[str, Any]]:
    """The Patient first, then about ``observations`` Observations (visits of 8 or 14), the
    conditions, the medication requests and, for one in five, an allergy."""
    rng = random.Random(seed)
    resources = [_patient(pid, rng)]
    visits: list[dict[str, Any]] = []
    n = 0
    while len(visits) < observations:
        days = 3 + n * 97 + rng.randint(0, 20)  # about four visits a year, the newest 3+ days ago
        visits += _visit(pid, n, AS_OF - timedelta(days=days, hours=rng.randint(0, 12)), rng,
                         labs=n % 2 == 0)
        n += 1
    resources += visits[:observations]
    resources += [_condition(pid, k, rng) for k in range(conditions)]
    resources += [_medication_request(pid, k, rng) for k in range(medications)]
    if rng.random() < 0.2:
        resources.append({
            "resourceType": "AllergyIntolerance", "id": f"{pid}-a1",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                     "allergyintolerance-clinical",
                                           "code": "active"}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/"
                                                         "CodeSystem/"
                                                         "allergyintolerance-verification",
                                               "code": "confirmed"}]},
            "type": "allergy", "category": ["medication"], "criticality": "low",
            "code": _cc(RXNORM, "7980", "penicillin G"), "patient": {"reference":
                                                                     f"Patient/{pid}"},
            "recordedDate": iso(AS_OF - timedelta(days=rng.randint(100, 5000)))})
    return resources


def population(count: int, prefix: str = "syn", **sizes: int) -> list[list[dict[str, Any]]]:
    """``count`` patients ``<prefix>-0000``... (seeded by their number: the same every run)."""
    return [synthea_patient(f"{prefix}-{n:04d}", seed=n, **sizes) for n in range(count)]
