"""The read-side projection against fhir.resources, on every resource shape we have.

For each resource: the projection (from bytes and from a dict) holds, for every projected element,
the value fhir.resources reads; screening a Bundle through either gives the same contract. A
record malformed in an element we read is a problem naming the element and never the value; one
malformed only elsewhere is read.

The shapes: every builder method, the demo Bundles, tests/data/synthea (Synthea-shaped, ours), a
hand-written resource per type with every projected element, tests.synthea_like patients. Real
Synthea R4 patients (smart-on-fhir/generated-sample-data, ``R4/SYNTHEA``, Apache-2.0) are
read from ``KETAMINE_SYNTHEA_DIR`` when it names a folder of their Bundle files; the project does
not ship them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.fhir import record
from service.fhir.bundle import parse_bundle
from service.fhir.primitives import DATE_PATTERN, DATETIME_PATTERN, INSTANT_PATTERN
from service.fhir.projection import as_json, decode_resource
from service.fhir.read_bundle import decode_bundle
from service.screening.engine import screen
from tests.builders import AS_OF, PatientBuilder
from tests.fhir import oracle
from tests.fhir.oracle import parse_resource
from tests.fhir.pages import search_result
from tests.synthea_like import population

ROOT = Path(__file__).parents[2]
FILES = [*sorted((ROOT / "service" / "demo").glob("*.json")),
         *sorted((ROOT / "tests" / "data" / "synthea").glob("*.json"))]


def builder_patients() -> list[PatientBuilder]:
    """Every builder method and medication form, including the unusual ones."""
    p = PatientBuilder("shape1")
    p.condition("F33.1", "Major depressive disorder, recurrent, moderate")
    p.condition(text="aneurysm", clinical=None, verification="entered-in-error")
    p.condition("I10", system="http://snomed.info/sct", clinical="resolved")
    p.allergy("7980", "penicillin G")
    p.allergy(text="ketamine", verification="entered-in-error")
    p.medication("36437", "sertraline 50 MG Oral Tablet", period_end="2025-06")
    p.medication(text="lorazepam", form="contained")
    p.medication("6809", "metformin", form="referenced", request=True)
    p.medication("161", "acetaminophen", status="completed", request=True)
    p.bp(150, 95, days_ago=2, unit=None)
    p.bp(118, 72, status="amended", unit="mmHg")
    p.single("8480-6", 131)
    p.weight(81.5)
    p.pregnancy_status("LA15173-0", "Pregnant")
    p.phq9(19)
    p.condition("F32.2", "Severe depression", onset="2024-01", abatement="2025-02-03",
                note="in remission", recorded=None)
    p.medication("312938", "sertraline 100 MG Oral Tablet", request=True, supply_days=30,
                 repeats=3, as_needed=True, reason="depression", dosage="one daily",
                 note="well tolerated", intent="plan")
    p.medication("312938", "sertraline", start="2025-01-01", period_end="2025-06-30",
                 asserted=None, reason="depression")
    p.dispense("312938", "sertraline 100 MG Oral Tablet", handed_over="2026-05-02",
               days_supply=30)
    p.dispense(text="esketamine", handed_over="2026-06-01T10:00:00Z", days_supply=None)
    return [p, PatientBuilder("shape2", normal_vitals=False)]


SUBJECT = {"reference": "Patient/every1", "display": "Every element"}
RXNORM_CC = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                         "code": "197901", "display": "lorazepam 1 MG Oral Tablet"}],
             "text": "lorazepam"}
DOSAGE = [{"text": "1 tablet at night as needed", "asNeededBoolean": True,
           "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006"}]}},
          {"asNeededCodeableConcept": {"text": "anxiety"}}]
EVERY_ELEMENT = [  # the projected elements no builder writes, each at least once
    {"resourceType": "Patient", "id": "every1", "meta": {"versionId": "3"}, "gender": "other",
     "birthDate": "1980-02", "name": [{"use": "usual", "text": "E. Element", "family": "Element",
                                       "given": ["Every", "E."]}],
     "identifier": [{"type": {"text": "MRN"}, "system": "urn:oid:1.2.3", "value": "mrn-1"}]},
    {"resourceType": "Condition", "id": "every-c1", "subject": SUBJECT,
     "code": {"text": "aneurysm"}, "onsetPeriod": {"start": "2019", "end": "2020-06-01"},
     "abatementPeriod": {"start": "2021-01-01T00:00:00+01:00"},
     "note": [{"text": "family history only"}]},
    {"resourceType": "Condition", "id": "every-c2", "subject": SUBJECT,
     "code": {"text": "asthma"}, "onsetDateTime": "2010-05-05T10:00:00.123456Z",
     "abatementDateTime": "2012-11-30T23:59:60Z"},
    {"resourceType": "Condition", "id": "every-c3", "subject": SUBJECT,
     "code": {"text": "croup"}, "abatementString": "in childhood"},
    {"resourceType": "Condition", "id": "every-c4", "subject": SUBJECT,
     "code": {"text": "eczema"}, "abatementRange": {"low": {"value": 5, "unit": "a"},
                                                    "high": {"value": 7, "unit": "a"}}},
    {"resourceType": "Condition", "id": "every-c5", "subject": SUBJECT,
     "code": {"text": "colic"}, "abatementAge": {"value": 1, "unit": "a",
                                                 "system": "http://unitsofmeasure.org",
                                                 "code": "a"}},
    {"resourceType": "AllergyIntolerance", "id": "every-a1", "patient": SUBJECT,
     "code": {"text": "ketamine"}, "onsetPeriod": {"end": "2024-12"},
     "recordedDate": "2024-02-29", "note": [{"text": "rash"}],
     "reaction": [{"substance": RXNORM_CC, "manifestation": [{"text": "hives"}]},
                  {"manifestation": [{"text": "itch"}]}]},
    {"resourceType": "Observation", "id": "every-o1", "status": "preliminary",
     "code": {"text": "x"}, "subject": SUBJECT,
     "effectivePeriod": {"start": "2026-06-01T10:00:00Z", "end": "2026-06-01T10:05:00Z"},
     "issued": "2026-06-01T10:06:00.5+02:00",
     "component": [{"code": {"text": "answer"}, "valueCodeableConcept": {"text": "yes"}}]},
    {"resourceType": "Observation", "id": "every-o2", "status": "final", "code": {"text": "y"},
     "subject": SUBJECT, "effectiveInstant": "2026-06-01T10:00:00-05:00",
     "valueQuantity": {"value": 0.1, "unit": "g", "system": "http://unitsofmeasure.org",
                       "code": "g"}},
    {"resourceType": "Medication", "id": "every-m1", "code": RXNORM_CC,
     "form": {"text": "tablet"},
     "ingredient": [{"itemCodeableConcept": {"text": "lorazepam"}},
                    {"itemReference": {"reference": "Substance/s1", "display": "lactose"}}]},
    {"resourceType": "MedicationStatement", "id": "every-s1", "status": "active",
     "subject": SUBJECT, "medicationReference": {"reference": "Medication/every-m1"},
     "effectiveDateTime": "2025-01", "dateAsserted": "2025-02-01T08:00:00Z", "dosage": DOSAGE,
     "reasonCode": [{"text": "insomnia"}],
     "note": [{"text": "takes it rarely"}]},
    {"resourceType": "MedicationRequest", "id": "every-r1", "status": "active",
     "intent": "order", "subject": SUBJECT, "medicationCodeableConcept": RXNORM_CC,
     "authoredOn": "2026-05-01T09:30:00Z", "dosageInstruction": DOSAGE,
     "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "197480006"}]}],
     "dispenseRequest": {"validityPeriod": {"start": "2026-05-01", "end": "2026-08-01"},
                         "numberOfRepeatsAllowed": 2,
                         "expectedSupplyDuration": {"value": 30, "unit": "days",
                                                    "system": "http://unitsofmeasure.org",
                                                    "code": "d"}}},
    {"resourceType": "MedicationDispense", "id": "every-d1", "status": "completed",
     "subject": SUBJECT, "contained": [
         {"resourceType": "Medication", "id": "med", "code": RXNORM_CC},
         {"resourceType": "Practitioner", "id": "pharmacist", "name": [{"family": "Rx"}]}],
     "medicationReference": {"reference": "#med"}, "quantity": {"value": 30, "unit": "tablet"},
     "daysSupply": {"value": 30, "unit": "day", "system": "http://unitsofmeasure.org",
                    "code": "d"},
     "whenPrepared": "2026-05-02T10:00:00Z", "whenHandedOver": "2026-05-02",
     "dosageInstruction": DOSAGE[:1], "note": [{"text": "counselled"}]},
]


def bundles() -> Iterator[tuple[str, dict[str, Any]]]:
    for p in builder_patients():
        yield p.pid, p.bundle()
    yield "every-element", {"resourceType": "Bundle", "type": "collection",
                            "entry": [{"resource": r} for r in EVERY_ELEMENT]}
    for path in FILES:
        yield path.name, json.loads(path.read_text(encoding="utf-8"))
    for resources in population(3, observations=40):
        yield resources[0]["id"], {"resourceType": "Bundle", "type": "collection",
                                   "entry": [{"resource": r} for r in resources]}
    folder = os.environ.get("KETAMINE_SYNTHEA_DIR")
    for path in sorted(Path(folder).glob("*.json")) if folder else []:
        data = json.loads(path.read_text(encoding="utf-8"))
        if any(e["resource"]["resourceType"] == "Patient" for e in data["entry"]):
            yield path.name, data  # (the folder also holds practitioners and hospitals)


BUNDLES = dict(bundles())


def resources() -> Iterator[dict[str, Any]]:
    for data in BUNDLES.values():
        for entry in data["entry"]:
            yield entry["resource"]


# -- Same values as fhir.resources -------------------------------------------------------------


def same(ours: object, theirs: object, where: str) -> None:
    """``ours`` (the projection) holds what ``theirs`` (a fhir.resources model) holds."""
    if ours is None or theirs is None:
        assert ours is None and (theirs is None or theirs == []), where
    elif isinstance(ours, msgspec.Struct):
        for name in ours.__struct_fields__:
            if name == "resourceType":
                assert getattr(ours, name) == theirs.get_resource_type(), where  # type: ignore[attr-defined]
                continue
            same(getattr(ours, name), getattr(theirs, name, None), f"{where}.{name}")
    elif isinstance(ours, list | tuple):  # (a CodeableConcept's codings are a tuple)
        assert isinstance(theirs, list) and len(ours) == len(theirs), where
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            same(a, b, f"{where}[{index}]")
    elif isinstance(theirs, datetime):
        assert isinstance(ours, str), where
        parsed = datetime.fromisoformat(ours)
        assert parsed == theirs and parsed.utcoffset() == theirs.utcoffset(), where
    elif isinstance(theirs, date):
        assert isinstance(ours, str) and date.fromisoformat(ours) == theirs, where
    elif isinstance(theirs, Decimal):
        assert isinstance(ours, float) and ours == float(theirs), where
    else:
        assert ours == theirs and type(ours) is type(theirs), (where, ours, theirs)


@pytest.mark.parametrize("resource", list(resources()),
                         ids=lambda r: f"{r['resourceType']}/{r.get('id')}")
def test_every_projected_element_holds_what_fhir_resources_reads(
        resource: dict[str, Any]) -> None:
    theirs, problem = parse_resource(resource)
    assert problem is None and theirs is not None
    from_dict, no_problem = decode_resource(resource)
    from_bytes, none_either = decode_resource(json.dumps(resource).encode())
    assert no_problem is None and none_either is None
    assert from_dict == from_bytes
    assert from_dict is not None and from_dict.get_resource_type() == theirs.get_resource_type()
    same(from_dict, theirs, from_dict.get_resource_type())


def contract(raw: Any) -> dict[str, Any]:
    return screen(raw, AS_OF + timedelta(days=1)).as_contract()


@pytest.mark.parametrize("name", list(BUNDLES))
def test_screening_through_the_projection_gives_the_same_contract(name: str) -> None:
    expected = contract(oracle.parse_bundle(BUNDLES[name], name))  # through fhir.resources
    assert contract(parse_bundle(json.dumps(BUNDLES[name]).encode(), name)) == expected
    assert contract(parse_bundle(json.loads(json.dumps(BUNDLES[name])), name)) == expected


@pytest.mark.parametrize("name", list(BUNDLES))
def test_the_bundle_decoder_reads_what_the_bundle_reader_reads(name: str) -> None:
    body = json.dumps(BUNDLES[name]).encode()
    decoded = decode_bundle(body, name)
    assert decoded.problems == []
    assert [(e.fullUrl, e.resource) for e in decoded.entries] == [
        (entry.get("fullUrl"), decode_resource(entry["resource"])[0])
        for entry in BUNDLES[name]["entry"]]


def test_search_assembly_takes_projected_resources() -> None:
    p = PatientBuilder("srv1")
    p.medication("6809", "metformin", form="referenced")
    p.condition("I71.4", "Abdominal aortic aneurysm")
    records = [r for r in p.resources if r["resourceType"] != "Medication"]
    results = {"Patient": decode_resource(p.patient()),
               "Condition": search_result([
                   r for r in records if r["resourceType"] == "Condition"]),
               "MedicationStatement": search_result(
                   [r for r in records if r["resourceType"] == "MedicationStatement"],
                   includes=[r for r in p.resources if r["resourceType"] == "Medication"]),
               "Observation:bp": search_result([
                   r for r in records if r["resourceType"] == "Observation"])}
    data = record.assemble("srv1", results)
    assert data.problems == []
    assert sorted(f"{r.get_resource_type()}/{r.id}" for r in data.resources) == sorted(
        f"{r['resourceType']}/{r['id']}" for r in records)
    assert list(data.medications) == ["Medication/srv1-med2"]
    assert screen(data, AS_OF).verdict.label == "contraindicated"


def test_patient_as_json_keeps_what_the_banner_reads() -> None:
    resource = population(1)[0][0]
    patient, _ = decode_resource(resource)
    assert patient is not None
    assert as_json(patient) == {key: resource[key] for key in (
        "resourceType", "id", "identifier", "name", "gender", "birthDate")} | {
        "name": [{k: v for k, v in resource["name"][0].items() if k != "prefix"}]}


# -- Malformed elements ------------------------------------------------------------------------

OBS = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"},
       "subject": {"reference": "Patient/p"}}
MED = {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
       "subject": {"reference": "Patient/p"}, "medicationCodeableConcept": {"text": "x"}}

MALFORMED = [  # (resource, element, the problem after "not valid FHIR R4: ", the bad value)
    (OBS | {"valueQuantity": {"value": "abc"}}, "valueQuantity.value: expected a number", "abc"),
    (OBS | {"component": [{"code": {"text": "s"}, "valueQuantity": {"value": 120}},
                          {"code": {"text": "d"}, "valueQuantity": {"value": True}}]},
     "component[1].valueQuantity.value: expected a number", "True"),
    (OBS | {"effectiveDateTime": "2024-02-30T10:00:00Z"},
     "effectiveDateTime: not a valid dateTime", "2024-02-30"),
    (OBS | {"effectiveDateTime": "2024-03-05T10:11:12"},
     "effectiveDateTime: not a valid dateTime", "10:11:12"),
    (OBS | {"effectiveInstant": "2024-03-05"}, "effectiveInstant: not a valid instant",
     "2024-03-05"),
    (OBS | {"issued": "2023-02-29T10:00:00Z"}, "issued: not a valid instant", "2023-02-29"),
    (OBS | {"status": "fin al "}, "status: not a valid code", "fin al"),
    (OBS | {"code": {"coding": [{"system": "http://loinc.org", "code": " 8480-6"}]}},
     "code.coding[0].code: not a valid code", "8480-6"),
    (OBS | {"code": {"coding": {"code": "8480-6"}}}, "code.coding: expected an array", "8480-6"),
    (OBS | {"code": {"text": 5150}}, "code.text: expected a string", "5150"),
    (OBS | {"code": {"coding": [{"display": ""}]}},
     "code.coding[0].display: expected a non-empty string", '""'),
    (OBS | {"valueCodeableConcept": ["LA15173-0"]}, "valueCodeableConcept: expected an object",
     "LA15173-0"),
    (OBS | {"meta": {"versionId": "v 2"}}, "meta.versionId: not a valid id", "v 2"),
    (OBS | {"subject": {"reference": 42}}, "subject.reference: expected a string", "42"),
    ({"resourceType": "Condition", "id": "c1", "subject": SUBJECT, "recordedDate": "yesterday"},
     "recordedDate: not a valid dateTime", "yesterday"),
    ({"resourceType": "Condition", "id": "c1", "subject": SUBJECT,
      "onsetPeriod": {"start": "1900-02-29"}},
     "onsetPeriod.start: not a valid dateTime", "1900-02-29"),
    ({"resourceType": "Condition", "id": "c1", "subject": SUBJECT, "note": [{"text": 7}]},
     "note[0].text: expected a string", "7"),
    ({"resourceType": "Patient", "id": "p1", "birthDate": "1980-13-01"},
     "birthDate: not a valid date", "1980-13"),
    ({"resourceType": "Patient", "id": "p1", "name": [{"given": ["Ann", ""]}]},
     "name[0].given[1]: expected a non-empty string", "Ann"),
    ({"resourceType": "AllergyIntolerance", "id": "a1", "patient": SUBJECT,
      "reaction": [{"substance": {"coding": [{"code": "a\tb"}]}}]},
     "reaction[0].substance.coding[0].code: not a valid code", "a\\tb"),
    (MED | {"dispenseRequest": {"numberOfRepeatsAllowed": 1.5}},
     "dispenseRequest.numberOfRepeatsAllowed: expected an integer", "1.5"),
    (MED | {"dispenseRequest": {"numberOfRepeatsAllowed": -1}},
     "dispenseRequest.numberOfRepeatsAllowed: number out of range", "-1"),
    (MED | {"dispenseRequest": {"expectedSupplyDuration": {"value": "30"}}},
     "dispenseRequest.expectedSupplyDuration.value: expected a number", "30"),
    (MED | {"dosageInstruction": [{"asNeededBoolean": "yes"}]},
     "dosageInstruction[0].asNeededBoolean: expected a boolean", "yes"),
    (MED | {"authoredOn": "2024-3-5"}, "authoredOn: not a valid dateTime", "2024-3-5"),
    (MED | {"medicationCodeableConcept": None, "medicationReference": {"reference": "#m"},
            "contained": [{"resourceType": "Medication", "id": "m",
                           "code": {"coding": [{"code": "x y "}]}}]},
     "contained[0].code.coding[0].code: not a valid code", "x y"),
    ({"resourceType": "MedicationDispense", "id": "d1", "daysSupply": {"value": [30]}},
     "daysSupply.value: expected a number", "30"),
    ({"resourceType": "MedicationStatement", "id": "s1", "dateAsserted": "2024-06-31"},
     "dateAsserted: not a valid dateTime", "2024-06-31"),
    # Elements R4 requires, and choice elements given in two forms.
    ({"resourceType": "Observation", "id": "o1", "status": "final"}, "code: required", "final"),
    (OBS | {"component": [{"valueQuantity": {"value": 120}}]}, "component[0].code: required",
     "120"),
    ({"resourceType": "Condition", "id": "c1", "code": {"text": "asthma"}}, "subject: required",
     "asthma"),
    ({"resourceType": "AllergyIntolerance", "id": "a1", "code": {"text": "nuts"}},
     "patient: required", "nuts"),
    ({k: v for k, v in MED.items() if k != "intent"}, "intent: required", "active"),
    ({k: v for k, v in MED.items() if k != "medicationCodeableConcept"},
     "medication[x]: required", "active"),
    (MED | {"medicationReference": {"reference": "Medication/m"}},
     "medication[x]: more than one form given", "Medication/m"),
    (OBS | {"effectiveDateTime": "2024", "effectivePeriod": {"start": "2024"}},
     "effective[x]: more than one form given", "2024"),
    (OBS | {"component": [{"code": {"text": "c"}, "valueQuantity": {"value": 1},
                           "valueCodeableConcept": {"text": "single"}}]},
     "component[0].value[x]: more than one form given", "single"),
    ({"resourceType": "Condition", "id": "c1", "subject": SUBJECT, "onsetDateTime": "2020",
      "onsetPeriod": {"start": "2020"}}, "onset[x]: more than one form given", "2020"),
    ({"resourceType": "Medication", "id": "m1", "ingredient": [{"strength": {}}]},
     "ingredient[0].item[x]: required", "strength"),
    ({"resourceType": "Condition", "id": "c1", "subject": SUBJECT, "abatementString": "2019",
      "abatementDateTime": "2019"}, "abatement[x]: more than one form given", "2019"),
    ({"resourceType": "Condition", "id": "c1", "subject": SUBJECT,
      "abatementRange": {"low": {"value": "5"}}}, "abatementRange.low.value: expected a number",
     "5"),
    (MED | {"reasonCode": {"text": "pain"}}, "reasonCode: expected an array", "pain"),
]

LAX = {"dispenseRequest.expectedSupplyDuration.value", "abatementRange.low.value",
       "dosageInstruction[0].asNeededBoolean"}
"""What fhir.resources (pydantic's lax mode) took and FHIR's JSON form does not: a number
written as a string ("30"), a boolean written as a word ("yes")
(https://hl7.org/fhir/R4/json.html#primitive)."""


@pytest.mark.parametrize(("resource", "problem", "value"), MALFORMED,
                         ids=[problem.split(":")[0] for _, problem, _ in MALFORMED])
def test_a_malformed_element_we_read_names_the_element_and_never_the_value(
        resource: dict[str, Any], problem: str, value: str) -> None:
    ref = f"{resource['resourceType']}/{resource['id']}"
    for form in (resource, json.dumps(resource).encode(), json.dumps(resource)):
        decoded, found = decode_resource(form)
        assert decoded is None
        assert found is not None and (found.reference, found.problem) == (
            ref, f"not valid FHIR R4: {problem}")
        assert value not in found.problem
    lax = problem.split(":")[0] in LAX
    assert (parse_resource(resource)[1] is None) is lax  # fhir.resources refuses the others too


UNREAD = [  # malformed, but in elements screening never reads
    OBS | {"encounter": 5, "category": "vital-signs", "interpretation": {"coding": 1},
           "valueString": 7, "text": {"div": 3}, "extension": "x", "_status": [1]},
    {"resourceType": "Condition", "id": "c2", "subject": SUBJECT,
     "encounter": {"reference": ["x"]}, "stage": "II", "evidence": [{"detail": 5}]},
    MED | {"requester": "Dr", "dosageInstruction": [{"timing": {"repeat": {"period": "x"}}}],
           "contained": [{"resourceType": "Practitioner", "id": "pr", "name": "Dr X"}]},
    {"resourceType": "Patient", "id": "p2", "telecom": {"value": 5}, "address": "somewhere",
     "deceasedBoolean": "no"},
    {"resourceType": "Encounter", "id": "e1", "class": 5, "period": {"start": "soon"}},
]


@pytest.mark.parametrize("resource", UNREAD, ids=lambda r: r["resourceType"])
def test_a_record_malformed_only_where_we_never_read_is_read(resource: dict[str, Any]) -> None:
    assert parse_resource(resource)[1] is not None  # fhir.resources refused these
    for form in (resource, json.dumps(resource).encode()):
        decoded, problem = decode_resource(form)
        assert problem is None and decoded is not None
        assert decoded.get_resource_type() == resource["resourceType"]
        assert decoded.id == resource["id"]


@pytest.mark.parametrize(("resource", "reference", "problem"), [
    ({"resourceType": "Nope", "id": "n1"}, "Nope/n1", "unknown resource type 'Nope'"),
    ({"resourceType": "Coding", "id": "n2"}, "Coding/n2", "unknown resource type 'Coding'"),
    ({"id": "n3"}, "resource", "resource without resourceType"),
    ({"resourceType": 7, "id": "n4"}, "resource", "resource without resourceType"),
    ({"resourceType": "Encounter", "id": "bad id"}, "Encounter/bad id",
     "not valid FHIR R4: id: not a valid id"),
])
def test_what_is_not_a_resource_we_know(resource: dict[str, Any], reference: str,
                                        problem: str) -> None:
    for form in (resource, json.dumps(resource).encode()):
        assert decode_resource(form) == (None, type(decode_resource(form)[1])(reference, problem))


def test_not_json_and_not_an_object() -> None:
    assert decode_resource(b"{x")[1] == type(decode_resource(b"[]")[1])("resource", "not JSON")
    problem = decode_resource(b"[1]")[1]
    assert problem is not None and problem.problem == "not a JSON object"
    deep = b'{"resourceType": "Observation", "id": "o", "extension": ' + b"[" * 5000 + b"]" * 5000
    problem = decode_resource(deep + b"}")[1]
    assert problem is not None and problem.problem == "not JSON (nested too deeply)"


# -- Bundles -----------------------------------------------------------------------------------


def test_one_bad_entry_costs_only_itself() -> None:
    good = PatientBuilder("b1").bundle()
    entries = [*good["entry"],
               {"fullUrl": "urn:uuid:1", "resource": OBS | {"valueQuantity": {"value": "x"}}},
               {"fullUrl": "urn:uuid:2", "resource": {"resourceType": "Encounter", "id": "e"}},
               {"fullUrl": "urn:uuid:3"}, 7, {"resource": {"id": "untyped"}},
               {"search": {"mode": "include"}, "resource": {"resourceType": "Medication",
                                                             "id": "m9"}}]
    decoded = decode_bundle(json.dumps(good | {"entry": entries}), "test")
    first = len(good["entry"])
    assert [(p.reference, p.problem) for p in decoded.problems] == [
        ("Observation/o1", "not valid FHIR R4: valueQuantity.value: expected a number"),
        ("urn:uuid:3", "entry has no resource"),
        (f"entry[{first + 3}]", "entry has no resource"),
        (f"entry[{first + 4}]", "resource without resourceType")]
    kept = [(e.resource.get_resource_type() if e.resource else None, e.mode)
            for e in decoded.entries]
    assert kept == [(e["resource"]["resourceType"], "match") for e in good["entry"]] + [
        ("Encounter", "match"), ("Medication", "include")]


def test_a_search_page_gives_its_next_link_total_and_modes() -> None:
    page = {"resourceType": "Bundle", "type": "searchset", "total": 2,
            "link": [{"relation": "self", "url": "http://x/fhir/Observation"},
                     {"relation": "next", "url": "http://x/fhir?_getpages=1"}],
            "entry": [{"fullUrl": "http://x/fhir/Observation/o1", "resource": OBS,
                       "search": {"mode": "match"}},
                      {"resource": {"resourceType": "OperationOutcome", "id": "w"},
                       "search": {"mode": "outcome"}}]}
    decoded = decode_bundle(json.dumps(page).encode(), "search")
    assert (decoded.type, decoded.total, decoded.next_url) == (
        "searchset", 2, "http://x/fhir?_getpages=1")
    assert [e.mode for e in decoded.entries] == ["match", "outcome"]
    assert decoded.problems == []


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "test: not JSON (line 1, column 2)"),
    (b"", "test: not JSON (ends too early)"),
    (b'{"resourceType": "Patient", "id": "1"}',
     "test: not a FHIR Bundle (resourceType is 'Patient')"),
    (b'{"resourceType": "Bundle", "entry": 5}', "test: Bundle.entry is not a list"),
    (b"[1, 2]", "test: not a FHIR Bundle (resourceType is 'list')"),
    (b"9" * 5000, "test: not JSON (integer value out of range)"),
    (b"[" * 100_000, "test: not JSON (nested too deeply)"),
    (b'{"a":\n  x}', "test: not JSON (line 2, column 3)"),
])
def test_whole_body_problems_raise_as_the_bundle_reader_does(body: bytes, message: str) -> None:
    from service.errors import BundleError

    with pytest.raises(BundleError) as caught:
        decode_bundle(body, "test")
    assert str(caught.value) == message


# -- The date grammar --------------------------------------------------------------------------


def test_dates_follow_the_calendar() -> None:
    import re

    full = re.compile(DATE_PATTERN)
    stamp = re.compile(DATETIME_PATTERN)
    instant = re.compile(INSTANT_PATTERN)
    for year in (1, 4, 100, 400, 1900, 1999, 2000, 2023, 2024, 2100, 2400, 9999):
        for month in range(1, 13):
            for day in range(1, 33):
                try:
                    date(year, month, day)
                    real = True
                except ValueError:
                    real = False
                text = f"{year:04d}-{month:02d}-{day:02d}"
                assert bool(full.search(text)) is real, text
                assert bool(stamp.search(text + "T23:59:60+14:00")) is real, text
                assert bool(instant.search(text + "T00:00:00.5Z")) is real, text
    for good in ("2024", "2024-02", "2024-02-29T10:00:00-05:30"):
        assert stamp.search(good), good
    for bad in ("0000", "2024-00", "2024-1", "24-01-01", "2024-01-01T24:00:00Z",
                "2024-01-01T10:00Z", "2024-01-01T10:00:00+14:30", "2024-01-01\n", " 2024"):
        assert not stamp.search(bad), bad
    assert not instant.search("2024-01-01") and not full.search("2024-01-01T10:00:00Z")


# -- The code grammar --------------------------------------------------------------------------

CODE_ALPHABET = st.sampled_from(["a", "Z", "0", "-", ".", "|", " ", "\t", "\n", "\r", "\x0b",
                                 "\x0c", "\x1c", "\x85", "\xa0", "\u2003", "\u3000", "é"])


@given(st.text(CODE_ALPHABET, max_size=8) | st.text(max_size=8))
def test_the_code_check_is_the_code_pattern(text: str) -> None:
    import re

    from service.fhir.primitives import CODE_PATTERN, check_code

    try:
        check_code(text, "code")
        checked = True
    except ValueError:
        checked = False
    assert checked is bool(re.search(CODE_PATTERN, text)), repr(text)
