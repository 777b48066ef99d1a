"""read_patient_data against the HAPI sandbox: search planning, fallbacks, includes, paging.

HAPI supports every search this client can ask for, so the fallbacks are reached by handing the
client a narrower CapabilityStatement (the ``capabilities`` seam): HAPI's own statement with a
parameter or an ``_include`` taken out. The client then plans its fallback searches and HAPI
really answers them. Each test checks both the outcome and the requests sent; the requests are
*recorded* by an httpx event hook, nothing is stood in for.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest

from service.fhir import capabilities
from service.fhir.capabilities import Capabilities
from service.fhir.client import FhirClient
from service.fhir.record import add_medications
from service.fhir.references import MEDICATION_REQUEST_INTENTS
from service.screening.engine import screen
from service.screening.model import RawPatientData
from tests.fhir.seed import AS_OF, LOINC, load

pytestmark = pytest.mark.integration

MEDICATION_SEARCHES = ("MedicationStatement", "MedicationRequest", "MedicationDispense")
"""HAPI lists MedicationDispense, so it is searched too (eligibility reads dispenses)."""


@pytest.fixture(autouse=True)
def _fresh_capabilities() -> Iterator[None]:
    capabilities.clear_cache()
    yield
    capabilities.clear_cache()


# -- The record -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    pid: str
    tag: str

    def ref(self, rtype: str, name: str) -> str:
        return f"{rtype}/{name}-{self.tag}"

    @property
    def expected(self) -> set[str]:
        """What a full-capability read returns: the old BP and the cholesterol are left out."""
        return {self.ref("Condition", "c1"), self.ref("MedicationStatement", "ms1"),
                self.ref("MedicationRequest", "mr1"), self.ref("AllergyIntolerance", "a1"),
                self.ref("Observation", "bp-recent"), self.ref("Observation", "bp-recent2"),
                self.ref("Observation", "wt")}

    @property
    def medications(self) -> set[str]:
        return {self.ref("Medication", "m1"), self.ref("Medication", "m2")}


def _obs(tag: str, name: str, code: str, days_ago: float, pid: str) -> dict[str, Any]:
    when = AS_OF - timedelta(days=days_ago)
    return {"resourceType": "Observation", "id": f"{name}-{tag}", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "valueQuantity": {"value": 1}}


def _resources(tag: str) -> list[dict[str, Any]]:
    pid, other = f"rd-{tag}", f"rd2-{tag}"
    subject = {"reference": f"Patient/{pid}"}
    return [
        {"resourceType": "Patient", "id": pid, "birthDate": "1980-01-01"},
        {"resourceType": "Patient", "id": other, "birthDate": "1990-01-01"},
        {"resourceType": "Condition", "id": f"c1-{tag}", "subject": subject,
         "code": {"text": "aortic aneurysm"}},
        {"resourceType": "Medication", "id": f"m1-{tag}", "code": {"text": "midazolam"}},
        {"resourceType": "Medication", "id": f"m2-{tag}", "code": {"text": "oxycodone"}},
        {"resourceType": "MedicationStatement", "id": f"ms1-{tag}", "status": "active",
         "subject": subject, "medicationReference": {"reference": f"Medication/m1-{tag}"}},
        {"resourceType": "MedicationRequest", "id": f"mr1-{tag}", "status": "active",
         "intent": "order", "subject": subject,
         "medicationReference": {"reference": f"Medication/m2-{tag}"}},
        {"resourceType": "AllergyIntolerance", "id": f"a1-{tag}", "patient": subject,
         "clinicalStatus": {"coding": [{
             "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
             "code": "active"}]},
         "code": {"text": "ketamine"}},
        _obs(tag, "bp-recent", "85354-9", 3, pid),
        _obs(tag, "bp-recent2", "85354-9", 5, pid),
        _obs(tag, "bp-old", "85354-9", 90, pid),
        _obs(tag, "wt", "29463-7", 400, pid),
        _obs(tag, "chol", "2093-3", 1, pid),  # no rule reads it
        _obs(tag, "bp-other", "85354-9", 1, other),  # someone else's
    ]


@pytest.fixture(scope="module")
async def record(fhir_base_url: str) -> Record:
    tag = uuid.uuid4().hex[:10]
    await load(fhir_base_url, _resources(tag))
    return Record(f"rd-{tag}", tag)


@pytest.fixture(scope="module")
def statement(fhir_base_url: str) -> dict[str, Any]:
    """HAPI's own CapabilityStatement, to narrow per test."""
    response = httpx.get(f"{fhir_base_url}/metadata", headers={"Accept": "application/fhir+json"},
                         timeout=60)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def narrowed(
    statement: Mapping[str, Any],
    *,
    params: Mapping[str, set[str]] | None = None,
    no_medication_include: bool = False,
) -> Capabilities:
    """``statement`` without the search ``params`` (type -> names), and optionally without
    ``_include`` on the medication searches (both the ``*`` wildcard and the named include)."""
    data = copy.deepcopy(dict(statement))
    for rest in data["rest"]:
        for resource in rest["resource"]:
            rtype = resource["type"]
            drop = (params or {}).get(rtype, set())
            resource["searchParam"] = [p for p in resource.get("searchParam", [])
                                       if p["name"] not in drop]
            if no_medication_include and rtype in MEDICATION_SEARCHES:
                resource["searchInclude"] = [i for i in resource.get("searchInclude", [])
                                             if i not in ("*", f"{rtype}:medication")]
    caps = Capabilities.from_statement(data)
    for rtype, names in (params or {}).items():  # the narrowing really took
        assert not names & caps.search_params[rtype]
    return caps


# -- Recording what was sent --------------------------------------------------------------------


@dataclass
class Recorder:
    """An httpx request hook that keeps every request sent (it changes nothing)."""

    requests: list[httpx.Request] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> None:
        self.requests.append(request)

    def to(self, rtype: str, method: str = "GET") -> list[httpx.URL]:
        """URLs of the requests to ``[base]/rtype`` (the first page of a search of ``rtype``)."""
        return [r.url for r in self.requests
                if r.method == method and r.url.path.rstrip("/").endswith(f"/fhir/{rtype}")]

    def pages(self) -> list[httpx.URL]:
        """Follow-up pages: HAPI's ``next`` links are ``[base]?_getpages=...``."""
        return [r.url for r in self.requests if "_getpages" in r.url.params]


def ids(data: RawPatientData) -> set[str]:
    return {f"{r.get_resource_type()}/{r.id}" for r in data.resources}


async def read(
    base: str, record: Record, *, caps: Capabilities | None = None, **kwargs: Any
) -> tuple[RawPatientData, Recorder]:
    recorder = Recorder()
    async with FhirClient(base, capabilities=caps, on_request=[recorder], **kwargs) as fhir:
        data = await fhir.read_patient_data(record.pid, as_of=AS_OF, bp_window_days=30)
        assert fhir.requests_sent == len(recorder.requests)
    return data, recorder


# -- Full capabilities ------------------------------------------------------------------------


async def test_reads_everything_the_rules_need_with_includes(
    fhir_base_url: str, record: Record
) -> None:
    data, sent = await read(fhir_base_url, record)
    assert ids(data) == record.expected
    assert set(data.medications) == record.medications
    assert data.patient is not None and data.patient.birthDate == "1980-01-01"  # as written
    assert data.versions[record.ref("Observation", "bp-recent")] == "1"
    assert data.problems == []
    # metadata + Patient + 7 searches; the Medications came by _include, on the first page
    assert len(sent.requests) == 9
    assert len(sent.to("metadata")) == 1
    for rtype in MEDICATION_SEARCHES:
        [url] = sent.to(rtype)
        assert url.params["_include"] == f"{rtype}:medication"
    assert sent.to("Medication") == []
    assert [r for r in sent.requests if r.method == "POST"] == []
    bp = [u for u in sent.to("Observation") if "date" in u.params]
    assert len(bp) == 1 and bp[0].params["date"] == "ge2026-05-16T12:00:00Z"
    assert all(u.params["patient"] == f"Patient/{record.pid}" for u in sent.to("Observation"))


async def test_capabilities_are_read_once_per_server(
    fhir_base_url: str, record: Record
) -> None:
    _, first = await read(fhir_base_url, record)
    _, second = await read(fhir_base_url, record)
    assert len(first.to("metadata")) == 1
    assert second.to("metadata") == []


async def test_sequential_and_concurrent_reads_agree(fhir_base_url: str, record: Record) -> None:
    async with FhirClient(fhir_base_url) as fhir:
        one = await fhir.read_patient_data(record.pid, as_of=AS_OF, bp_window_days=30)
        two = await fhir.read_patient_data(record.pid, as_of=AS_OF, bp_window_days=30,
                                           concurrent=False)
    assert ids(one) == ids(two) == record.expected
    assert one.versions == two.versions
    assert set(one.medications) == set(two.medications)


async def test_paging_follows_next_links_and_keeps_includes(
    fhir_base_url: str, record: Record
) -> None:
    data, sent = await read(fhir_base_url, record, page_size=1)
    assert ids(data) == record.expected
    assert set(data.medications) == record.medications
    # two BPs in the window make two pages; one entry per page otherwise
    [second] = sent.pages()
    assert second.host == httpx.URL(fhir_base_url).host
    assert len(sent.requests) == 9 + 1  # metadata, Patient, 7 searches, 1 next page


async def test_bearer_auth_is_sent(fhir_base_url: str, record: Record) -> None:
    class Bearer(httpx.Auth):
        def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
            request.headers["Authorization"] = "Bearer abc"
            yield request

    _, sent = await read(fhir_base_url, record, auth=Bearer())
    assert sent.requests and all(r.headers["Authorization"] == "Bearer abc"
                                 for r in sent.requests)


# -- Fallbacks ----------------------------------------------------------------------------------


async def test_without_include_medications_come_by_id_search(
    fhir_base_url: str, record: Record, statement: dict[str, Any]
) -> None:
    caps = narrowed(statement, no_medication_include=True)
    data, sent = await read(fhir_base_url, record, caps=caps)
    assert ids(data) == record.expected
    assert set(data.medications) == record.medications
    assert data.problems == []
    assert sent.to("metadata") == []  # the given capabilities were used
    for rtype in MEDICATION_SEARCHES:
        [url] = sent.to(rtype)
        assert "_include" not in url.params
    [search] = sent.to("Medication")
    assert {f"Medication/{i}" for i in search.params["_id"].split(",")} == record.medications


async def test_without_include_or_id_search_medications_come_by_batch(
    fhir_base_url: str, record: Record, statement: dict[str, Any]
) -> None:
    caps = narrowed(statement, params={"Medication": {"_id"}}, no_medication_include=True)
    data, sent = await read(fhir_base_url, record, caps=caps)
    assert ids(data) == record.expected
    assert set(data.medications) == record.medications
    assert sent.to("Medication") == []
    [post] = [r for r in sent.requests if r.method == "POST"]
    batch = httpx.Response(200, content=post.content).json()
    assert batch["type"] == "batch"
    assert {e["request"]["url"] for e in batch["entry"]} == record.medications


async def test_batch_read_reports_a_medication_the_server_lacks(
    fhir_base_url: str, record: Record, statement: dict[str, Any]
) -> None:
    # HAPI keeps references intact, so a dangling one cannot be seeded; ask for it directly.
    caps = narrowed(statement, params={"Medication": {"_id"}})
    wanted = [f"m1-{record.tag}", f"gone-{record.tag}"]
    async with FhirClient(fhir_base_url, capabilities=caps) as fhir:
        found = await fhir._read_medications(caps, wanted)
    data = RawPatientData(patient_id=record.pid)
    add_medications(data, wanted, found)
    assert set(data.medications) == {record.ref("Medication", "m1")}
    assert [p.reference for p in data.problems] == [f"Medication/gone-{record.tag}"]


async def test_without_patient_param_uses_subject(
    fhir_base_url: str, record: Record, statement: dict[str, Any]
) -> None:
    by_subject = ("Condition", "Observation", *MEDICATION_SEARCHES)
    caps = narrowed(statement, params={rtype: {"patient"} for rtype in by_subject})
    data, sent = await read(fhir_base_url, record, caps=caps)
    assert ids(data) == record.expected
    assert set(data.medications) == record.medications
    for rtype in by_subject:
        assert sent.to(rtype)
        assert all(u.params["subject"] == f"Patient/{record.pid}" and "patient" not in u.params
                   for u in sent.to(rtype))
    [allergies] = sent.to("AllergyIntolerance")  # AllergyIntolerance has no subject
    assert allergies.params["patient"] == f"Patient/{record.pid}"


async def test_without_code_param_observations_are_filtered_here(
    fhir_base_url: str, record: Record, statement: dict[str, Any]
) -> None:
    caps = narrowed(statement, params={"Observation": {"code"}})
    data, sent = await read(fhir_base_url, record, caps=caps)
    # No date bound either: the old BP comes too (the rules apply the window); cholesterol not.
    assert ids(data) == record.expected | {record.ref("Observation", "bp-old")}
    [url] = sent.to("Observation")
    assert set(url.params) == {"patient", "_count"}


async def test_without_date_param_the_bp_search_is_unbounded(
    fhir_base_url: str, record: Record, statement: dict[str, Any]
) -> None:
    caps = narrowed(statement, params={"Observation": {"date"}})
    data, sent = await read(fhir_base_url, record, caps=caps)
    assert ids(data) == record.expected | {record.ref("Observation", "bp-old")}
    observations = sent.to("Observation")
    assert len(observations) == 2 and all("date" not in u.params for u in observations)
    assert all("code" in u.params for u in observations)


async def test_a_statement_listing_neither_patient_nor_subject_still_gets_the_search(
    fhir_base_url: str, record: Record, statement: dict[str, Any]
) -> None:
    """It used to fail before sending anything; HAPI answers the standard search."""
    caps = narrowed(statement, params={"Condition": {"patient", "subject"}})
    data, sent = await read(fhir_base_url, record, caps=caps)
    assert ids(data) == record.expected
    [condition] = sent.to("Condition")
    assert condition.params["patient"] == f"Patient/{record.pid}"


# -- Sparse and partial statements (issue 14) ----------------------------------------------------


def sparse(statement: Mapping[str, Any], *, drop_types: frozenset[str] = frozenset()
           ) -> Capabilities:
    """``statement`` as a sparse EHR publishes it: every type listed with its interactions but
    no ``searchParam`` or ``searchInclude`` entries, and ``drop_types`` not listed at all."""
    data = copy.deepcopy(dict(statement))
    for rest in data["rest"]:
        rest.pop("searchParam", None)
        rest["resource"] = [r for r in rest["resource"] if r["type"] not in drop_types]
        for resource in rest["resource"]:
            resource.pop("searchParam", None)
            resource.pop("searchInclude", None)
    return Capabilities.from_statement(data)


async def test_a_type_listed_without_search_params_is_searched_anyway(
    fhir_base_url: str, record: Record, statement: dict[str, Any]
) -> None:
    """It used to fail with "cannot search Condition by patient" before sending anything."""
    data, sent = await read(fhir_base_url, record, caps=sparse(statement))
    assert ids(data) == record.expected
    assert set(data.medications) == record.medications  # by _id search: no include listed
    assert data.problems == []
    [condition] = sent.to("Condition")
    assert condition.params["patient"] == f"Patient/{record.pid}"
    [request] = sent.to("MedicationRequest")
    assert request.params["intent"] == MEDICATION_REQUEST_INTENTS


async def test_a_type_the_statement_does_not_list_is_skipped_and_said(
    fhir_base_url: str, record: Record, statement: dict[str, Any]
) -> None:
    caps = sparse(statement, drop_types=frozenset({"MedicationStatement"}))
    data, sent = await read(fhir_base_url, record, caps=caps)
    assert sent.to("MedicationStatement") == []
    assert ids(data) == {key for key in record.expected
                         if not key.startswith("MedicationStatement/")}
    assert data.problems == []
    assert data.not_offered == ["MedicationStatement"]


async def test_a_screen_on_a_partial_statement_says_what_was_not_read(
    fhir_base_url: str, record: Record, statement: dict[str, Any]
) -> None:
    """No MedicationStatement (read from orders: a note) and no AllergyIntolerance (nothing
    else carries allergies: missing data, so the screen is incomplete)."""
    caps = sparse(statement, drop_types=frozenset({"MedicationStatement", "AllergyIntolerance"}))
    data, sent = await read(fhir_base_url, record, caps=caps)
    assert sent.to("AllergyIntolerance") == []
    result = screen(data, AS_OF).as_contract()
    by_rule = {f["rule"]: f for f in result["findings"]}
    assert by_rule["info-data-partly-offered"]["evidence"] == ["MedicationStatement"]
    assert by_rule["md-data-not-offered"]["evidence"] == ["AllergyIntolerance"]
    assert "md-unreadable-record" not in by_rule
    # The record's contraindication still decides; the missing allergies are listed beside it.
    assert result["verdicts"] == {"ketamine": "contraindicated", "esketamine": "contraindicated"}


async def test_medication_requests_are_searched_by_intent_as_us_core_requires(
    fhir_base_url: str, record: Record
) -> None:
    data, sent = await read(fhir_base_url, record)
    [request] = sent.to("MedicationRequest")
    assert request.params["intent"] == MEDICATION_REQUEST_INTENTS
    assert ids(data) == record.expected  # every intent asked for: nothing lost against before
