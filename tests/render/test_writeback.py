"""Screening write-back builders (unit) and their acceptance by the HAPI sandbox (integration)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from service import __version__
from service.errors import FhirRejected
from service.fhir.client import FhirClient
from service.fhir.codesystems import CS_SCREENING, IDENTIFIER_BASE
from service.fhir.transaction import build_transaction, submit
from service.render.writeback import build_screening_write
from service.screening.model import Finding, ScreeningResult, Verdict
from service.workflow import write_screening

AS_OF = datetime(2026, 6, 15, 12, tzinfo=UTC)
NOW = datetime(2026, 6, 15, 12, 5, tzinfo=UTC)


def result(pid: str, refs: dict[str, str]) -> ScreeningResult:
    return ScreeningResult(
        patient=f"Patient/{pid}", as_of=AS_OF, ruleset="v1", verdict=Verdict.CONTRAINDICATED,
        findings=(
            Finding("contraindication", "aneurysm", "high", "Aneurysmal vascular disease",
                    (refs["condition"],), "SPRAVATO-PI 4"),
            Finding("interaction", "opioids", "major", "Opioid: oxycodone",
                    (refs["medication"],), "KETALAR-PI 7",
                    detail="monitor sedation and breathing"),
            Finding("interaction", "thyroid", "minor", "Thyroid hormone", (refs["medication"],),
                    "CH-KETAMINE"),
            Finding("precaution", "bp-elevated", "moderate", "BP 150/95 mmHg",
                    (refs["bp"],), "SPRAVATO-PI 5.6"),
            Finding("missing-data", "weight", "low", "No body weight", (), "REFERENCE"),
        ))


REFS = {"condition": "Condition/c1", "medication": "MedicationStatement/ms1",
        "bp": "Observation/bp1"}


def dump(write: Any) -> dict[str, Any]:
    return write.bundle().model_dump(mode="json", exclude_none=True)


def test_bundle_shape() -> None:
    bundle = dump(build_screening_write(result("p1", REFS), practitioner="dr1", now=NOW))
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert types == ["Observation", "DetectedIssue", "DetectedIssue", "Provenance"]
    assert all(e["request"]["method"] == "POST" and e["request"]["ifNoneExist"]
               for e in bundle["entry"])
    assert all(e["fullUrl"].startswith("urn:uuid:") for e in bundle["entry"])
    obs = bundle["entry"][0]["resource"]
    assert obs["valueCodeableConcept"]["coding"][0] == {
        "system": CS_SCREENING, "code": "contraindicated", "display": "Contraindicated"}
    assert obs["derivedFrom"] == [{"reference": "Observation/bp1"}]  # only allowed targets
    # One component per finding, then the ruleset (this hand-made result has no per-product
    # verdicts, thresholds or eligibility: see test_screening_components.py).
    assert [c["code"]["coding"][0]["code"] for c in obs["component"]] == [
        "contraindication", "interaction", "interaction", "precaution", "missing-data",
        "ruleset"]
    assert obs["method"]["text"] == "ketamine-screen ruleset v1"
    assert obs["effectiveDateTime"] == "2026-06-15T12:00:00Z"
    issues = [e["resource"] for e in bundle["entry"][1:3]]
    assert [(i["code"]["coding"][0]["code"], i["severity"]) for i in issues] == [
        ("contraindication", "high"), ("DRG", "high")]
    assert issues[1]["implicated"] == [{"reference": "MedicationStatement/ms1"}]
    assert "monitor sedation and breathing" in issues[1]["detail"]
    # The management the clinician commits to by saving; the aneurysm rule here has none.
    assert "mitigation" not in issues[0]
    assert issues[1]["mitigation"] == [{
        "action": {"text": "monitor sedation and breathing"},
        "date": "2026-06-15T12:05:00Z",
        "author": {"reference": "Practitioner/dr1"}}]
    assert issues[0]["evidence"][0]["detail"][0]["reference"] == bundle["entry"][0]["fullUrl"]
    prov = bundle["entry"][3]["resource"]
    assert {t["reference"] for t in prov["target"]} == {e["fullUrl"] for e in bundle["entry"][:3]}
    assert {e["what"]["reference"] for e in prov["entity"]} == set(REFS.values())
    app = {"identifier": {"system": f"{IDENTIFIER_BASE}/app",
                          "value": f"ketamine-screen-{__version__}"},
           "display": f"ketamine-screen {__version__}"}
    assert [a["who"] for a in prov["agent"]] == [app, {"reference": "Practitioner/dr1"}]
    assert issues[0]["author"] == app  # named, not written: no Device (no scope covers one)
    assert all(e["resource"]["resourceType"] != "Device" for e in bundle["entry"])
    assert prov["activity"]["coding"][0]["code"] == "CREATE"


def test_mitigation_without_a_launching_practitioner_has_no_author() -> None:
    bundle = dump(build_screening_write(result("p1", REFS), now=NOW))
    [mitigation] = bundle["entry"][2]["resource"]["mitigation"]
    assert mitigation == {"action": {"text": "monitor sedation and breathing"},
                          "date": "2026-06-15T12:05:00Z"}
    agents = bundle["entry"][3]["resource"]["agent"]
    assert [a["who"].get("reference") for a in agents] == [None]


def test_identifier_is_stable_and_tracks_evidence_versions() -> None:
    one = build_screening_write(result("p1", REFS), versions={"Condition/c1": "1"}, now=NOW)
    again = build_screening_write(result("p1", REFS), versions={"Condition/c1": "1"})
    changed = build_screening_write(result("p1", REFS), versions={"Condition/c1": "2"}, now=NOW)
    assert one.observation.value == again.observation.value
    assert one.observation.full_url == again.observation.full_url
    assert one.observation.value != changed.observation.value
    assert one.observation.system == f"{IDENTIFIER_BASE}/screening"


# -- against the sandbox ----------------------------------------------------------------------


async def seed(base: str) -> tuple[str, dict[str, str]]:
    """A patient with the evidence records the result points at (the server checks references)."""
    tag = uuid.uuid4().hex[:12]
    pid = f"wb-{tag}"
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": pid, "birthDate": "1980-01-01"},
        {"resourceType": "Practitioner", "id": f"dr-{tag}"},
        {"resourceType": "Condition", "id": f"c-{tag}", "subject": {"reference": f"Patient/{pid}"},
         "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I71.4"}]}},
        {"resourceType": "MedicationStatement", "id": f"ms-{tag}", "status": "active",
         "subject": {"reference": f"Patient/{pid}"},
         "medicationCodeableConcept": {"text": "oxycodone"}},
        {"resourceType": "Observation", "id": f"bp-{tag}", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
         "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-06-14"},
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
         "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in resources]}
    async with FhirClient(base) as fhir:
        await fhir.transaction(bundle, retry=False)
    return pid, {"condition": f"Condition/c-{tag}", "medication": f"MedicationStatement/ms-{tag}",
                 "bp": f"Observation/bp-{tag}", "practitioner": f"dr-{tag}"}


async def counts(fhir: FhirClient, write: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    for entry in write.entries:
        param = "_tag" if entry.match == "_tag" else "identifier"
        found[entry.value] = await fhir.count(entry.resource_type,
                                              [(param, f"{entry.system}|{entry.value}")])
    return found


@pytest.mark.integration
async def test_written_twice_gives_one_set(fhir_base_url: str) -> None:
    pid, refs = await seed(fhir_base_url)
    screening = result(pid, refs)
    write = build_screening_write(screening, practitioner=refs["practitioner"])
    async with FhirClient(fhir_base_url) as fhir:
        first = await write_screening(fhir, screening, practitioner=refs["practitioner"])
        second = await write_screening(fhir, screening, practitioner=refs["practitioner"])
        assert first.locations == second.locations
        assert second.created == 0
        assert [s[:3] for s in first.statuses] == ["201"] * len(write.entries)
        assert set((await counts(fhir, write)).values()) == {1}
        obs = await fhir.read(*first.locations[0].split("/"))
        assert obs["subject"]["reference"] == f"Patient/{pid}"
        assert obs["valueCodeableConcept"]["coding"][0]["code"] == "contraindicated"
        interaction = await fhir.read(*first.locations[2].split("/"))
        [mitigation] = interaction["mitigation"]
        assert mitigation["action"]["text"] == "monitor sedation and breathing"
        assert mitigation["author"]["reference"] == f"Practitioner/{refs['practitioner']}"
        assert mitigation["date"]


@pytest.mark.integration
async def test_one_invalid_entry_rejects_the_whole_transaction(
    fhir_base_url: str,
) -> None:
    pid, refs = await seed(fhir_base_url)
    write = build_screening_write(result(pid, refs))
    body = write.bundle().model_dump(mode="json", exclude_none=True)
    # The last DetectedIssue gets a severity outside its required value set.
    body["entry"][2]["resource"]["severity"] = "catastrophic"
    async with FhirClient(fhir_base_url) as fhir:
        with pytest.raises(FhirRejected, match=r"severity|catastrophic"):
            await fhir.transaction(body, retry=True)
        found = await counts(fhir, write)
    assert found == dict.fromkeys([e.value for e in write.entries], 0)


@pytest.mark.integration
async def test_dangling_evidence_is_rejected_not_half_written(
    fhir_base_url: str,
) -> None:
    pid, refs = await seed(fhir_base_url)
    refs = {**refs, "condition": "Condition/does-not-exist"}
    write = build_screening_write(result(pid, refs))
    async with FhirClient(fhir_base_url) as fhir:
        with pytest.raises(FhirRejected):
            await submit(fhir, build_transaction(write.entries))
        assert await fhir.count("Observation", [
            ("identifier", f"{write.observation.system}|{write.observation.value}")]) == 0
