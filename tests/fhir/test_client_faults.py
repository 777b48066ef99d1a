"""HTTP faults injected with respx: each maps to its error class, after a bounded number of
attempts and waits (the waits are recorded, not slept: the policy's ``sleep`` is the seam).

respx stands in for the network only to break it. Where a fault needs an answer afterwards (a
retry that succeeds, the searches around a failing read) the routes give one canned resource: the
patient, or an empty searchset. There is no search logic here; reading real records is tested
against the HAPI sandbox (test_client_read.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx

from service.config import Settings
from service.errors import (
    FhirAuthError,
    FhirNotFound,
    FhirProtocolError,
    FhirRejected,
    FhirTimeout,
    FhirUnavailable,
    PagingRefused,
)
from service.fhir import capabilities
from service.fhir.capabilities import Capabilities
from service.fhir.client import FhirClient
from service.fhir.http import RetryPolicy, retry_after_seconds
from service.logs import pseudonym
from service.screening.model import RawPatientData

BASE = "https://fhir.test/fhir"
AS_OF = datetime(2026, 6, 15, 12, tzinfo=UTC)
FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.05, retry_after_cap=0.3)
"""Two retries, backoff at most 0.05 s, Retry-After cut to 0.3 s."""
STANDARD = Capabilities()
"""An empty statement: standard search, no ``_include`` (so no /metadata route is needed)."""

PATIENT = {"resourceType": "Patient", "id": "p1", "meta": {"versionId": "3"},
           "name": [{"family": "Zzyzx-Secret"}], "birthDate": "1980-01-01"}
EMPTY = {"resourceType": "Bundle", "type": "searchset", "total": 0}
SEARCHED = ("Condition", "AllergyIntolerance", "MedicationStatement", "MedicationRequest",
            "Observation")


def outcome(status: int, text: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, json={
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": text}]})


@pytest.fixture
def server() -> Iterator[respx.MockRouter]:
    """The patient and empty searches by default; each test overrides the route it breaks.

    Routes are named ``patient`` and by resource type (``server["Condition"]``).
    """
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.get("/Patient/p1", name="patient").respond(200, json=PATIENT)
        for rtype in SEARCHED:
            router.get(f"/{rtype}", name=rtype).respond(200, json=EMPTY)
        yield router


def recorder(waits: list[float]) -> RetryPolicy:
    """FAST, with each wait between attempts appended to ``waits`` instead of slept."""

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return RetryPolicy(max_retries=FAST.max_retries, base_delay=FAST.base_delay,
                       max_delay=FAST.max_delay, retry_after_cap=FAST.retry_after_cap,
                       sleep=sleep)


def client(**kwargs: Any) -> FhirClient:
    kwargs.setdefault("retry", recorder([]))
    return FhirClient(BASE, settings=Settings(fhir_timeout_seconds=1.0), capabilities=STANDARD,
                      **kwargs)


async def read(pid: str = "p1", waits: list[float] | None = None) -> RawPatientData:
    async with client(retry=recorder(waits if waits is not None else [])) as fhir:
        return await fhir.read_patient_data(pid, as_of=AS_OF, bp_window_days=30)


async def test_timeout_becomes_fhir_timeout_after_bounded_retries(
    server: respx.MockRouter,
) -> None:
    server["patient"].side_effect = httpx.ReadTimeout("slow")
    waits: list[float] = []
    with pytest.raises(FhirTimeout, match="did not answer in time"):
        await read(waits=waits)
    assert server["patient"].call_count == 1 + FAST.max_retries
    # one backoff before each retry, within the policy's ceiling (equal jitter: half to all)
    assert len(waits) == FAST.max_retries
    assert 0.005 <= waits[0] <= 0.01 and 0.01 <= waits[1] <= 0.02


async def test_429_honours_retry_after_then_succeeds(server: respx.MockRouter) -> None:
    server["patient"].side_effect = [httpx.Response(429, headers={"Retry-After": "1"}),
                                     httpx.Response(200, json=PATIENT)]
    waits: list[float] = []
    data = await read(waits=waits)
    assert data.patient is not None
    # Retry-After: 1 is capped to 0.3 s by the policy: waited that, not a full second.
    assert waits == [0.3]
    assert server["patient"].call_count == 2


async def test_429_forever_becomes_unavailable(server: respx.MockRouter) -> None:
    server["patient"].respond(429, headers={"Retry-After": "120"})
    waits: list[float] = []
    with pytest.raises(FhirUnavailable) as info:
        await read(waits=waits)
    assert info.value.status == 429
    assert waits == [0.3, 0.3]  # two capped waits


async def test_500_is_not_retried(server: respx.MockRouter) -> None:
    server["patient"].return_value = outcome(500, "NullPointerException")
    waits: list[float] = []
    with pytest.raises(FhirUnavailable, match=r"500.*NullPointerException"):
        await read(waits=waits)
    assert waits == []
    assert server["patient"].call_count == 1


@pytest.mark.parametrize("status", [502, 503])
async def test_gateway_errors_are_retried_then_succeed(
    server: respx.MockRouter, status: int
) -> None:
    server["patient"].side_effect = [httpx.Response(status), outcome(status, "busy"),
                                     httpx.Response(200, json=PATIENT)]
    data = await read()
    assert data.patient is not None and data.patient.id == "p1"
    assert server["patient"].call_count == 3


async def test_connection_reset_is_retried_then_unavailable(server: respx.MockRouter) -> None:
    server["patient"].side_effect = httpx.ReadError("Connection reset by peer")
    waits: list[float] = []
    with pytest.raises(FhirUnavailable, match="ReadError"):
        await read(waits=waits)
    assert len(waits) == FAST.max_retries
    assert server["patient"].call_count == 1 + FAST.max_retries


async def test_one_connection_reset_is_absorbed(server: respx.MockRouter) -> None:
    server["Condition"].side_effect = [httpx.ConnectError("reset"),
                                            httpx.Response(200, json=EMPTY)]
    data = await read()
    assert data.patient is not None
    assert server["Condition"].call_count == 2


async def test_malformed_json_is_a_protocol_error(server: respx.MockRouter) -> None:
    server["patient"].respond(200, content=b"{not json")
    with pytest.raises(FhirProtocolError, match="malformed JSON"):
        await read()


async def test_unknown_patient_is_not_found(server: respx.MockRouter) -> None:
    server.get("/Patient/nobody").return_value = outcome(
        404, "HAPI-2001: Resource Patient/nobody is not known")
    with pytest.raises(FhirNotFound) as info:
        await read("nobody")
    assert str(info.value).startswith("patient not found: Patient/nobody")
    assert info.value.status == 404
    assert info.value.patient == "nobody"  # known as an attribute, not read back from the text


async def test_an_unknown_patient_is_reported_even_when_a_search_fails_first(
        server: respx.MockRouter) -> None:
    # A server without the patient may answer its searches 404 too, and sooner: the patient
    # read is answered only well after the Condition search has failed (the event loop turns
    # 100 times; no time passes).
    failed = asyncio.Event()

    def condition(request: httpx.Request) -> httpx.Response:
        failed.set()
        return outcome(404, "HAPI-0000: unknown resource")

    async def patient(request: httpx.Request) -> httpx.Response:
        await failed.wait()
        for _ in range(100):
            await asyncio.sleep(0)
        return outcome(404, "HAPI-2001: Resource Patient/nobody is not known")

    server["Condition"].side_effect = condition
    server.get("/Patient/nobody").side_effect = patient
    with pytest.raises(FhirNotFound) as info:
        await read("nobody")
    assert info.value.patient == "nobody"
    assert str(info.value).startswith("patient not found: Patient/nobody")


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_refusals_carry_the_server_diagnostics(
    server: respx.MockRouter, status: int
) -> None:
    server["patient"].return_value = outcome(status, "token expired at 12:00")
    with pytest.raises(FhirAuthError, match="token expired at 12:00") as info:
        await read()
    assert info.value.status == status
    assert server["patient"].call_count == 1


async def test_a_failed_page_fails_the_whole_read(server: respx.MockRouter) -> None:
    first = {**EMPTY, "total": 30, "link": [
        {"relation": "next", "url": f"{BASE}?_getpages=abc&_getpagesoffset=10"}],
        "entry": [{"resource": {"resourceType": "Condition", "id": "c1",
                                "subject": {"reference": "Patient/p1"}},
                   "search": {"mode": "match"}}]}
    server["Condition"].respond(200, json=first)
    pages = server.get("", params={"_getpages": "abc"}).respond(503)
    with pytest.raises(FhirUnavailable, match="503"):
        await read()
    assert pages.call_count == 1 + FAST.max_retries


async def test_a_next_link_to_another_host_is_refused(server: respx.MockRouter) -> None:
    server["Condition"].respond(200, json={
        **EMPTY, "link": [{"relation": "next", "url": "https://evil.example/fhir?page=2"}]})
    with pytest.raises(FhirProtocolError, match="leaves the server"):
        await read()


def condition_page(cid: str, next_url: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {**EMPTY, "entry": [{
        "resource": {"resourceType": "Condition", "id": cid,
                     "subject": {"reference": "Patient/p1"}},
        "search": {"mode": "match"}}]}
    if next_url:
        page["link"] = [{"relation": "next", "url": next_url}]
    return page


NEXT = f"{BASE}?_getpages=abc&_getpagesoffset=10"


async def test_a_refused_next_link_starts_the_search_again_once(
    server: respx.MockRouter,
) -> None:
    """An expired paging cursor (HAPI answers 410 once its search cache has gone)."""
    server["Condition"].respond(200, json=condition_page("c1", NEXT))
    second = server.get("", params={"_getpages": "abc"})
    second.side_effect = [outcome(410, "search expired"), httpx.Response(
        200, json=condition_page("c2"))]
    data = await read()
    assert server["Condition"].call_count == 2
    assert second.call_count == 2
    assert sorted(r.id for r in data.resources) == ["c1", "c2"]  # first page not kept twice


async def test_a_next_link_refused_twice_fails_the_read_saying_so(
    server: respx.MockRouter,
) -> None:
    server["Condition"].respond(200, json=condition_page("c1", NEXT))
    server.get("", params={"_getpages": "abc"}).respond(400, json={
        "resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid"}]})
    with pytest.raises(PagingRefused) as info:
        await read()
    assert str(info.value) == ("search Condition: the FHIR server refused its own next-page "
                               "link (HTTP 400); the pages read before it were not screened")
    assert info.value.status == 400
    assert info.value.http_status == 502
    assert server["Condition"].call_count == 2


def refusing(*names: str) -> Any:
    """A search route that answers 400 while any of ``names`` is asked, else one record."""

    def answer(request: httpx.Request) -> httpx.Response:
        if any(name in request.url.params for name in names):
            return outcome(400, "unknown search parameter")
        return httpx.Response(200, json={**EMPTY, "entry": [{
            "resource": {"resourceType": "MedicationRequest", "id": "mr1", "status": "active",
                         "intent": "order", "subject": {"reference": "Patient/p1"},
                         "medicationCodeableConcept": {"text": "sertraline"}},
            "search": {"mode": "match"}}]})

    return answer


async def test_a_refused_parameter_is_relaxed_one_step_at_a_time(
    server: respx.MockRouter,
) -> None:
    server["MedicationRequest"].side_effect = refusing("intent", "patient")
    data = await read()
    sent = [dict(call.request.url.params) for call in server["MedicationRequest"].calls]
    assert [sorted(p) for p in sent] == [["_count", "intent", "patient"],
                                         ["_count", "patient"], ["_count", "subject"]]
    assert sent[-1]["subject"] == "Patient/p1"
    assert [r.id for r in data.resources] == ["mr1"]


async def test_a_search_refused_with_nothing_left_to_relax_fails(
    server: respx.MockRouter,
) -> None:
    server["MedicationRequest"].side_effect = refusing("_count")
    with pytest.raises(FhirRejected, match="unknown search parameter"):
        await read()
    assert server["MedicationRequest"].call_count == 3  # as asked, without intent, by subject


async def test_a_server_error_is_not_taken_for_a_refused_parameter(
    server: respx.MockRouter,
) -> None:
    server["MedicationRequest"].respond(500, json={"resourceType": "OperationOutcome"})
    with pytest.raises(FhirUnavailable):
        await read()
    assert server["MedicationRequest"].call_count == 1


async def test_rejected_transaction_carries_the_outcome(server: respx.MockRouter) -> None:
    post = server.post("/").mock(return_value=outcome(
        422, "Observation.status: minimum required = 1"))
    async with client() as fhir:
        with pytest.raises(FhirRejected, match="minimum required"):
            await fhir.transaction({"resourceType": "Bundle", "type": "transaction"}, retry=True)
    assert post.call_count == 1


async def test_transaction_replayed_after_a_network_error(server: respx.MockRouter) -> None:
    answer = {"resourceType": "Bundle", "type": "transaction-response", "entry": []}
    server.post("/").side_effect = [
        httpx.RemoteProtocolError("Server disconnected without sending a response"),
        httpx.Response(200, json=answer)]
    async with client() as fhir:
        assert await fhir.transaction({"resourceType": "Bundle", "type": "transaction"},
                                      retry=True) == answer
        assert fhir.requests_sent == 2


async def test_transaction_not_replayed_when_not_idempotent(server: respx.MockRouter) -> None:
    post = server.post("/").mock(side_effect=httpx.RemoteProtocolError("disconnected"))
    async with client() as fhir:
        with pytest.raises(FhirUnavailable):
            await fhir.transaction({"resourceType": "Bundle", "type": "transaction"},
                                   retry=False)
    assert post.call_count == 1


async def test_metadata_failure_falls_back_to_standard_search() -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.get("/metadata").respond(404)
        router.get("/Patient/p1").respond(200, json=PATIENT)
        searches = router.get(path__regex=rf"^/({'|'.join(SEARCHED)})$").respond(200, json=EMPTY)
        capabilities.clear_cache()
        try:
            async with FhirClient(BASE, settings=Settings(), retry=recorder([])) as fhir:
                data = await fhir.read_patient_data("p1", as_of=AS_OF, bp_window_days=30)
        finally:
            capabilities.clear_cache()
    assert data.patient is not None
    assert searches.call_count == 6
    assert all("_include" not in call.request.url.params for call in searches.calls)


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=90), usegmt=True),
                               now=now) == 90
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
    assert RetryPolicy(retry_after_cap=30).delay(0, 3600) == 30
    assert 0.25 <= RetryPolicy(base_delay=0.5).delay(0, None) <= 0.5


async def test_requests_carry_an_id_and_logs_carry_no_phi(
    server: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    server["Condition"].side_effect = [httpx.ReadError("reset"),
                                            httpx.Response(200, json=EMPTY)]
    with caplog.at_level(logging.DEBUG, logger="service"):
        await read()
    assert server["Condition"].call_count == 2
    assert server.calls and all(call.request.headers.get("X-Request-ID")
                                for call in server.calls)
    assert "Zzyzx-Secret" not in caplog.text
    # Patient ids appear only as their keyed pseudonym (issue 15); the path is not logged.
    assert "p1" not in caplog.text.replace(pseudonym("p1"), "")
    assert pseudonym("p1") in caplog.text
