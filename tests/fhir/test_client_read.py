"""read_patient_data against the in-memory fake: search planning, fallbacks, parsing, paging."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from service.config import Settings
from service.fhir import capabilities
from service.fhir.capabilities import Capabilities
from service.fhir.client import FhirClient
from service.fhir.http import RetryPolicy
from service.fhir.paging import plan_searches
from tests.fhir.fake_server import ALL_PARAMS, BASE, FakeFhir, capability_statement

AS_OF = datetime(2026, 6, 15, 12, tzinfo=UTC)
LOINC = "http://loinc.org"


@pytest.fixture(autouse=True)
def _fresh_capabilities() -> Iterator[None]:
    capabilities.clear_cache()
    yield
    capabilities.clear_cache()


def obs(oid: str, code: str, days_ago: float, pid: str = "p1") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "meta": {"versionId": "2"},
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": (AS_OF - timedelta(days=days_ago)).isoformat()}


def record() -> FakeFhir:
    fake = FakeFhir()
    fake.add(
        {"resourceType": "Patient", "id": "p1", "birthDate": "1980-01-01"},
        {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
         "code": {"text": "aortic aneurysm"}},
        {"resourceType": "Medication", "id": "m1", "code": {"text": "midazolam"}},
        {"resourceType": "Medication", "id": "m2", "code": {"text": "oxycodone"}},
        {"resourceType": "MedicationStatement", "id": "ms1", "status": "active",
         "subject": {"reference": "Patient/p1"}, "medicationReference": {"reference":
                                                                          "Medication/m1"}},
        {"resourceType": "MedicationRequest", "id": "mr1", "status": "active", "intent": "order",
         "subject": {"reference": "Patient/p1"},
         "medicationReference": {"reference": f"{BASE}/Medication/m2"}},
        {"resourceType": "AllergyIntolerance", "id": "a1", "patient": {"reference": "Patient/p1"},
         "code": {"text": "ketamine"}},
        obs("bp-recent", "85354-9", 3), obs("bp-old", "85354-9", 90), obs("wt", "29463-7", 400),
        obs("chol", "2093-3", 1),  # not needed by any rule
        obs("other-patient", "85354-9", 1, pid="p2"),
    )
    return fake


def ids(data: Any) -> set[str]:
    return {f"{r.get_resource_type()}/{r.id}" for r in data.resources}


async def read(fake: FakeFhir, **kwargs: Any) -> Any:
    async with FhirClient(BASE, settings=Settings(), transport=fake.transport(),
                          retry=RetryPolicy(max_retries=0), **kwargs) as fhir:
        data = await fhir.read_patient_data("p1", as_of=AS_OF, bp_window_days=30)
        return data, fhir.requests_sent


async def test_reads_everything_the_rules_need_with_includes() -> None:
    data, sent = await read(record())
    assert ids(data) == {"Condition/c1", "MedicationStatement/ms1", "MedicationRequest/mr1",
                         "AllergyIntolerance/a1", "Observation/bp-recent", "Observation/wt"}
    assert set(data.medications) == {"Medication/m1", "Medication/m2"}
    assert data.patient.birthDate.isoformat() == "1980-01-01"
    assert data.versions["Observation/bp-recent"] == "2"
    assert data.problems == []
    assert sent == 8  # metadata + Patient + 6 searches; Medications came by _include


async def test_without_include_medications_come_by_id_search() -> None:
    fake = record()
    fake.statement = capability_statement(includes=False)
    data, _ = await read(fake)
    assert set(data.medications) == {"Medication/m1", "Medication/m2"}
    med_searches = [r for r in fake.requests if r.url.path.endswith("/Medication")]
    assert len(med_searches) == 1
    assert set(med_searches[0].url.params["_id"].split(",")) == {"m1", "m2"}


async def test_without_include_or_id_search_medications_come_by_batch() -> None:
    fake = record()
    params = dict(ALL_PARAMS)
    params["Medication"] = ["code"]
    fake.statement = capability_statement(params, includes=False)
    del fake.resources["Medication/m2"]
    data, _ = await read(fake)
    assert set(data.medications) == {"Medication/m1"}
    assert [p.reference for p in data.problems] == ["Medication/m2"]
    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == 1 and json.loads(posts[0].content)["type"] == "batch"


async def test_without_patient_param_uses_subject() -> None:
    fake = record()
    params = {k: [p for p in v if p != "patient"] for k, v in ALL_PARAMS.items()}
    params["AllergyIntolerance"] = ["patient"]  # AllergyIntolerance has no subject
    fake.statement = capability_statement(params)
    data, _ = await read(fake)
    assert "Condition/c1" in ids(data)
    searches = [r for r in fake.requests if r.url.path.endswith("/Observation")]
    assert all("subject" in r.url.params and "patient" not in r.url.params for r in searches)


async def test_without_code_param_observations_are_filtered_here() -> None:
    fake = record()
    params = dict(ALL_PARAMS)
    params["Observation"] = ["patient"]
    fake.statement = capability_statement(params)
    data, _ = await read(fake)
    observations = {i for i in ids(data) if i.startswith("Observation/")}
    # no date filter either: the old BP comes too (the rules apply the window); cholesterol not
    assert observations == {"Observation/bp-recent", "Observation/bp-old", "Observation/wt"}


async def test_capabilities_are_read_once_per_server() -> None:
    fake = record()
    await read(fake)
    await read(fake)
    assert sum(r.url.path.endswith("/metadata") for r in fake.requests) == 1


async def test_unparseable_resource_becomes_a_problem() -> None:
    fake = record()
    fake.add({"resourceType": "Condition", "id": "bad", "subject": {"reference": "Patient/p1"},
              "recordedDate": "yesterday"})
    data, _ = await read(fake)
    assert [p.reference for p in data.problems] == ["Condition/bad"]
    assert "recordedDate" in data.problems[0].problem
    assert "yesterday" not in data.problems[0].problem
    assert "Condition/bad" not in ids(data)


async def test_missing_medication_becomes_a_problem() -> None:
    fake = record()
    del fake.resources["Medication/m1"]
    fake.statement = capability_statement(includes=False)
    data, _ = await read(fake)
    assert [p.reference for p in data.problems] == ["Medication/m1"]


async def test_paging_follows_next_links() -> None:
    fake = record()
    for n in range(95):
        fake.add(obs(f"bp{n}", "8480-6", 1 + n / 10))
    data, sent = await read(fake, page_size=10)
    assert sum(i.startswith("Observation/bp") and i[14:].isdigit() for i in ids(data)) == 95
    assert sent > 10


def test_plan_uses_loinc_tokens_and_a_date_bound_for_bp_only() -> None:
    caps = Capabilities.from_statement(capability_statement())
    plan = plan_searches(caps, "p1", AS_OF - timedelta(days=30))
    bp = dict(plan["Observation:bp"][1])
    other = dict(plan["Observation:other"][1])
    assert bp["date"] == "ge2026-05-16T12:00:00Z"
    assert "http://loinc.org|85354-9" in bp["code"].split(",")
    assert "date" not in other
    assert set(other["code"].split(",")) >= {f"{LOINC}|{c}" for c in ("8867-4", "44261-6")}
    assert ("_include", "MedicationStatement:medication") in plan["MedicationStatement"][1]


async def test_sequential_and_concurrent_reads_agree() -> None:
    fake = record()
    async with FhirClient(BASE, settings=Settings(), transport=fake.transport()) as fhir:
        one = await fhir.read_patient_data("p1", as_of=AS_OF, bp_window_days=30)
        two = await fhir.read_patient_data("p1", as_of=AS_OF, bp_window_days=30,
                                           concurrent=False)
    assert ids(one) == ids(two)
    assert one.versions == two.versions


async def test_bearer_auth_is_sent() -> None:
    fake = record()

    class Bearer(httpx.Auth):
        def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
            request.headers["Authorization"] = "Bearer abc"
            yield request

    await read(fake, auth=Bearer())
    assert all(r.headers["Authorization"] == "Bearer abc" for r in fake.requests)
