"""The pure parts of service.fhir.record: search plans, assembly, Medication references.

No server here: search results are pages decoded as the client decodes a server's answer
(tests.fhir.pages). What HAPI answers to the plans is tested in test_client_read.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service.fhir.capabilities import Capabilities
from service.fhir.projection import decode_resource
from service.fhir.record import (
    add_medications,
    assemble,
    plan_searches,
    unavailable_types,
    unresolved_medications,
)
from service.fhir.references import MEDICATION_REQUEST_INTENTS
from tests.fhir.pages import search_result
from tests.fhir.seed import AS_OF, LOINC

BASE = "https://ehr.example/fhir/"
SUBJECT = {"reference": "Patient/p1"}
PATIENT = decode_resource({"resourceType": "Patient", "id": "p1"})


def statement(params: dict[str, list[str]], includes: dict[str, list[str]]) -> dict[str, Any]:
    return {"resourceType": "CapabilityStatement", "rest": [{"mode": "server", "resource": [
        {"type": rtype, "searchParam": [{"name": n, "type": "token"} for n in names],
         "searchInclude": includes.get(rtype, [])} for rtype, names in params.items()]}]}


FULL = Capabilities.from_statement(statement(
    {"Condition": ["patient"], "AllergyIntolerance": ["patient"],
     "MedicationStatement": ["patient"], "MedicationRequest": ["patient"],
     "Observation": ["patient", "code", "date"]},
    {"MedicationStatement": ["MedicationStatement:medication"], "MedicationRequest": ["*"]}))


def test_plan_uses_loinc_tokens_and_a_date_bound_for_bp_only() -> None:
    plan = plan_searches(FULL, "p1", AS_OF - timedelta(days=30))
    bp = dict(plan["Observation:bp"][1])
    other = dict(plan["Observation:other"][1])
    assert bp["date"] == "ge2026-05-16T12:00:00Z"
    assert "http://loinc.org|85354-9" in bp["code"].split(",")
    assert "date" not in other
    assert set(other["code"].split(",")) >= {f"{LOINC}|{c}" for c in ("8867-4", "44261-6")}
    assert ("_include", "MedicationStatement:medication") in plan["MedicationStatement"][1]
    assert ("_include", "MedicationRequest:medication") in plan["MedicationRequest"][1]  # by *


def test_an_empty_statement_plans_standard_searches_without_includes() -> None:
    plan = plan_searches(Capabilities(), "p1", AS_OF)
    assert set(plan) == {"Condition", "AllergyIntolerance", "MedicationStatement",
                         "MedicationRequest", "Observation:bp", "Observation:other"}
    assert all(dict(params).get("patient") == "Patient/p1" for _, params in plan.values())
    assert all("_include" not in dict(params) for _, params in plan.values())


def test_medication_dispense_is_searched_only_where_the_statement_lists_it() -> None:
    assert "MedicationDispense" not in plan_searches(FULL, "p1", AS_OF)
    listed = Capabilities.from_statement(statement(
        {"Condition": ["patient"], "AllergyIntolerance": ["patient"],
         "MedicationStatement": ["patient"], "MedicationRequest": ["patient"],
         "MedicationDispense": ["patient", "status"], "Observation": ["patient", "code"]},
        {"MedicationDispense": ["MedicationDispense:medication"]}))
    rtype, params = plan_searches(listed, "p1", AS_OF)["MedicationDispense"]
    assert rtype == "MedicationDispense"
    # Every status: eligibility needs stopped and completed records.
    assert params == [("patient", "Patient/p1"), ("_include", "MedicationDispense:medication")]
    assert all("status" not in dict(p) for _, p in plan_searches(listed, "p1", AS_OF).values())


def test_unparseable_resource_becomes_a_problem_without_its_values() -> None:
    bad = {"resourceType": "Condition", "id": "bad", "subject": SUBJECT,
           "recordedDate": "yesterday"}
    good = {"resourceType": "Condition", "id": "ok", "subject": SUBJECT,
            "meta": {"versionId": "4"}}
    data = assemble("p1", {"Patient": PATIENT, "Condition": search_result([bad, good, good])})
    assert [p.reference for p in data.problems] == ["Condition/bad"]
    assert "recordedDate" in data.problems[0].problem
    assert "yesterday" not in data.problems[0].problem
    assert [f"Condition/{r.id}" for r in data.resources] == ["Condition/ok"]  # and once only
    assert data.versions == {"Condition/ok": "4"}


def test_observation_all_keeps_only_the_codes_the_rules_read() -> None:
    def obs(oid: str, code: str) -> dict[str, Any]:
        return {"resourceType": "Observation", "id": oid, "status": "final", "subject": SUBJECT,
                "code": {"coding": [{"system": LOINC, "code": code}]}}

    data = assemble("p1", {"Patient": PATIENT, "Observation:all": search_result([
                               obs("bp", "85354-9"), obs("chol", "2093-3")])})
    assert [r.id for r in data.resources] == ["bp"]


def test_medication_references_on_this_server_are_resolved_others_flagged() -> None:
    def statement_of(mid: str, ref: str) -> dict[str, Any]:
        return {"resourceType": "MedicationStatement", "id": mid, "status": "active",
                "subject": SUBJECT, "medicationReference": {"reference": ref}}

    results = {"Patient": PATIENT,
               "MedicationStatement": search_result([
                   statement_of("ms1", "Medication/m1"),
                   statement_of("ms2", f"{BASE}Medication/m2"),  # absolute, same server
                   statement_of("ms3", "https://elsewhere.example/fhir/Medication/m3"),
                   statement_of("ms4", "#contained"),
                   statement_of("ms5", "Medication/m1")])}
    data = assemble("p1", results)
    assert unresolved_medications(data, results, BASE) == ["m1", "m2"]
    assert [p.reference for p in data.problems] == ["MedicationStatement/ms3"]
    add_medications(data, ["m1", "m2"],
                    search_result([{"resourceType": "Medication", "id": "m1"}]))
    assert set(data.medications) == {"Medication/m1"}
    assert [p.reference for p in data.problems] == ["MedicationStatement/ms3", "Medication/m2"]


def test_a_type_listed_without_parameters_gets_the_standard_search() -> None:
    """Issue 14: Condition listed with search-type but no searchParam used to stop the screen."""
    bare = Capabilities.from_statement(statement(
        {"Condition": [], "AllergyIntolerance": [], "MedicationStatement": [],
         "MedicationRequest": [], "Observation": []}, {}))
    plan = plan_searches(bare, "p1", AS_OF - timedelta(days=30))
    assert plan["Condition"] == ("Condition", [("patient", "Patient/p1")])
    assert plan["MedicationRequest"] == ("MedicationRequest", [
        ("patient", "Patient/p1"), ("intent", MEDICATION_REQUEST_INTENTS)])
    assert dict(plan["Observation:bp"][1])["date"] == "ge2026-05-16T12:00:00Z"
    assert unavailable_types(bare) == []


def test_types_a_statement_leaves_out_are_not_searched() -> None:
    partial = Capabilities.from_statement(statement(
        {"Condition": ["patient"], "AllergyIntolerance": ["patient"],
         "MedicationRequest": ["patient", "intent"]}, {}))
    assert unavailable_types(partial) == ["MedicationStatement", "Observation"]
    assert set(plan_searches(partial, "p1", AS_OF)) == {
        "Condition", "AllergyIntolerance", "MedicationRequest"}
    assert unavailable_types(Capabilities()) == []  # no statement: standard search assumed


def test_intent_is_left_out_where_the_statement_lists_parameters_without_it() -> None:
    params = plan_searches(FULL, "p1", AS_OF)["MedicationRequest"][1]
    assert "intent" not in dict(params)
