"""Faults between the service and a REAL FHIR server, end to end, with the damage counted.

Each test runs the screening workflow the REST API runs (``screen_from_fhir`` then
``write_screening_result``) through :class:`FaultProxy` in front of the HAPI sandbox, and checks
three things: the error is the documented ``FhirError`` with a message naming the request; the
call gives up after the attempts and waits the retry policy allows (counted at the proxy and
recorded by the client's sleep seam, so it cannot hang, and no wall clock is read); and,
counted on the sandbox itself afterwards, the write-back is there exactly once or not at all,
never partial and never duplicated.
"""

from __future__ import annotations

from collections import Counter

import pytest

from service.config import Settings
from service.errors import FhirProtocolError, FhirTimeout, FhirUnavailable
from service.fhir.client import FhirClient
from service.screening.model import RawPatientData, ScreeningResult
from service.workflow import screen_from_fhir, write_screening_result
from tests.builders import AS_OF
from tests.faults.conftest import BASE_DELAY, fhir_client, write_state
from tests.faults.proxy import FaultProxy

pytestmark = pytest.mark.integration

SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]
OUTCOME = (b'{"resourceType":"OperationOutcome","issue":[{"severity":"error",'
           b'"code":"exception","diagnostics":"injected failure"}]}')


async def screen_and_write(base_url: str, pid: str, *, waits: list[float] | None = None,
                           **client: float) -> list[str]:
    async with fhir_client(base_url, waits=waits, **client) as fhir:  # type: ignore[arg-type]
        result, raw = await screen_from_fhir(fhir, pid, as_of=AS_OF, settings=SETTINGS)
        return await write_screening_result(fhir, result, raw)


async def reference(base_url: str, pid: str) -> tuple[ScreeningResult, RawPatientData]:
    """The screening as read straight from the sandbox: what the write-back keys derive from."""
    async with FhirClient(base_url) as fhir:
        return await screen_from_fhir(fhir, pid, as_of=AS_OF, settings=SETTINGS)


async def state(base_url: str, pid: str) -> object:
    return write_state(base_url, *(await reference(base_url, pid)))


def attempts(proxy: FaultProxy, method: str) -> int:
    """The most times any one URL was asked for with ``method``."""
    return max(Counter(t for m, t, _ in proxy.seen if m == method).values(), default=0)


# -- the EHR is slow -------------------------------------------------------------------------

async def test_slow_reads_time_out_and_nothing_is_written(
        fhir_base_url: str, proxy: FaultProxy, patient: str) -> None:
    proxy.add("delay", method="GET", seconds=4.0, times=None)
    waits: list[float] = []
    with pytest.raises(FhirTimeout, match=r"did not answer in time: GET /fhir/"):
        await screen_and_write(proxy.base_url, patient, timeout=1.0, retries=1, waits=waits)
    # No read asked more than twice, each retry after one backoff of at most 0.2 s.
    assert attempts(proxy, "GET") == 2
    assert waits and all(w <= BASE_DELAY for w in waits)
    assert proxy.count("POST") == 0
    assert await state(fhir_base_url, patient) == "none"


async def test_a_write_whose_answer_is_late_is_replayed_into_one_set(
        fhir_base_url: str, proxy: FaultProxy, patient: str) -> None:
    # The server commits the transaction; its answer arrives after the client gave up.
    proxy.add("delay-answer", method="POST", seconds=4.0, times=1)
    written = await screen_and_write(proxy.base_url, patient, timeout=2.0, retries=2)
    assert proxy.count("POST") == 2
    assert len(written) == 3  # Observation, DetectedIssue, Provenance: no Device (issue 14)
    assert await state(fhir_base_url, patient) == "one"


async def test_writes_that_never_answer_in_time_still_leave_one_set(
        fhir_base_url: str, proxy: FaultProxy, patient: str) -> None:
    proxy.add("delay-answer", method="POST", seconds=4.0, times=None)
    waits: list[float] = []
    with pytest.raises(FhirTimeout, match=r"POST /fhir/"):
        await screen_and_write(proxy.base_url, patient, timeout=1.5, retries=2, waits=waits)
    assert len(waits) == 2 and waits[0] <= BASE_DELAY and waits[1] <= 2 * BASE_DELAY
    assert proxy.count("POST") == 3  # each replay reached the server...
    assert await state(fhir_base_url, patient) == "one"  # ...and matched the first commit


# -- 429 Too Many Requests -------------------------------------------------------------------

async def test_429_with_retry_after_is_waited_out(
        fhir_base_url: str, proxy: FaultProxy, patient: str) -> None:
    proxy.add("status", method="GET", path_contains="/Condition", status=429,
              headers={"Retry-After": "1"}, times=2)
    waits: list[float] = []
    written = await screen_and_write(proxy.base_url, patient, timeout=5.0, retries=3,
                                     waits=waits)
    assert waits == [1.0, 1.0]  # both Retry-After: 1 were honoured
    assert proxy.count("GET", "status") == 2
    assert len(written) == 3  # Observation, DetectedIssue, Provenance: no Device (issue 14)
    assert await state(fhir_base_url, patient) == "one"


async def test_429_for_ever_gives_up_after_the_retries(
        fhir_base_url: str, proxy: FaultProxy, patient: str) -> None:
    proxy.add("status", method="GET", path_contains="/Condition", status=429,
              headers={"Retry-After": "1"}, times=None)
    waits: list[float] = []
    with pytest.raises(FhirUnavailable, match=r"failed Condition \(429\)"):
        await screen_and_write(proxy.base_url, patient, timeout=5.0, retries=2, waits=waits)
    assert waits == [1.0, 1.0]
    assert proxy.count("GET", "status") == 3
    assert await state(fhir_base_url, patient) == "none"


# -- 500 ---------------------------------------------------------------------------------------

async def test_500_on_a_read_is_not_retried_and_nothing_is_written(
        fhir_base_url: str, proxy: FaultProxy, patient: str) -> None:
    proxy.add("status", method="GET", path_contains="/AllergyIntolerance", status=500,
              headers={"Content-Type": "application/fhir+json"}, body=OUTCOME, times=None)
    with pytest.raises(FhirUnavailable, match=r"AllergyIntolerance \(500\): injected failure"):
        await screen_and_write(proxy.base_url, patient)
    assert proxy.count("GET", "status") == 1  # a 500 is a server bug: not retried
    assert await state(fhir_base_url, patient) == "none"


async def test_500_on_the_transaction_writes_nothing(
        fhir_base_url: str, proxy: FaultProxy, patient: str) -> None:
    proxy.add("status", method="POST", status=500,
              headers={"Content-Type": "application/fhir+json"}, body=OUTCOME, times=None)
    with pytest.raises(FhirUnavailable, match=r"transaction \(500\): injected failure"):
        await screen_and_write(proxy.base_url, patient)
    assert proxy.count("POST") == 1
    assert await state(fhir_base_url, patient) == "none"


# -- connection reset ------------------------------------------------------------------------

async def test_resets_on_every_read_end_in_unavailable(
        fhir_base_url: str, proxy: FaultProxy, patient: str) -> None:
    proxy.add("reset", method="GET", path_contains="/Observation", times=None)
    waits: list[float] = []
    with pytest.raises(FhirUnavailable, match=r"unreachable: GET /fhir/Observation"):
        await screen_and_write(proxy.base_url, patient, retries=2, waits=waits)
    assert attempts(proxy, "GET") <= 3  # the first try and two retries, no more
    assert waits and all(w <= 2 * BASE_DELAY for w in waits)
    assert await state(fhir_base_url, patient) == "none"


async def test_a_transaction_cut_mid_body_commits_nothing_and_the_retry_one_set(
        fhir_base_url: str, proxy: FaultProxy, patient: str) -> None:
    proxy.add("cut-request", method="POST", times=1)
    with pytest.raises(FhirUnavailable, match=r"unreachable: POST /fhir/"):
        await screen_and_write(proxy.base_url, patient, retries=0)
    assert await state(fhir_base_url, patient) == "none"  # half a Bundle: nothing stored
    await screen_and_write(proxy.base_url, patient, retries=0)
    assert await state(fhir_base_url, patient) == "one"


async def test_a_reset_after_the_commit_leaves_all_and_the_retry_adds_nothing(
        fhir_base_url: str, proxy: FaultProxy, patient: str) -> None:
    proxy.add("reset-after", method="POST", times=1)
    with pytest.raises(FhirUnavailable, match=r"unreachable: POST /fhir/"):
        await screen_and_write(proxy.base_url, patient, retries=0)
    assert await state(fhir_base_url, patient) == "one"  # committed whole before the reset
    written = await screen_and_write(proxy.base_url, patient, retries=0)
    assert len(written) == 3  # Observation, DetectedIssue, Provenance: no Device (issue 14)
    assert await state(fhir_base_url, patient) == "one"


async def test_a_reset_mid_write_is_retried_by_the_client_into_one_set(
        fhir_base_url: str, proxy: FaultProxy, patient: str) -> None:
    proxy.add("reset-after", method="POST", times=1)
    proxy.add("cut-request", method="POST", times=1)
    await screen_and_write(proxy.base_url, patient, retries=3)
    assert proxy.count("POST") == 3
    assert await state(fhir_base_url, patient) == "one"


# -- malformed JSON --------------------------------------------------------------------------

async def test_malformed_search_answer_stops_before_any_write(
        fhir_base_url: str, proxy: FaultProxy, patient: str) -> None:
    proxy.add("garble", method="GET", path_contains="/MedicationStatement", times=None)
    with pytest.raises(FhirProtocolError, match="malformed JSON from the FHIR server for "
                                                "MedicationStatement"):
        await screen_and_write(proxy.base_url, patient)
    assert proxy.count("POST") == 0
    assert await state(fhir_base_url, patient) == "none"


async def test_malformed_transaction_answer_then_a_retry_gives_one_set(
        fhir_base_url: str, proxy: FaultProxy, patient: str) -> None:
    proxy.add("garble", method="POST", times=1)
    with pytest.raises(FhirProtocolError, match=r"malformed JSON .* for transaction"):
        await screen_and_write(proxy.base_url, patient)
    assert await state(fhir_base_url, patient) == "one"  # the server did commit
    await screen_and_write(proxy.base_url, patient)
    assert await state(fhir_base_url, patient) == "one"
