"""HTTP faults injected with httpx.MockTransport: each maps to its error class, in bounded time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from service.config import Settings
from service.errors import (
    FhirAuthError,
    FhirNotFound,
    FhirProtocolError,
    FhirRejected,
    FhirTimeout,
    FhirUnavailable,
)
from service.fhir import capabilities
from service.fhir.client import FhirClient
from service.fhir.http import RetryPolicy, retry_after_seconds
from tests.fhir.fake_server import BASE, FakeFhir, outcome

AS_OF = datetime(2026, 6, 15, 12, tzinfo=UTC)
FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.05, retry_after_cap=0.3)


@pytest.fixture(autouse=True)
def _fresh_capabilities() -> Iterator[None]:
    capabilities.clear_cache()
    yield
    capabilities.clear_cache()


def patient(pid: str = "p1") -> dict[str, object]:
    return {"resourceType": "Patient", "id": pid, "meta": {"versionId": "3"},
            "name": [{"family": "Zzyzx-Secret"}], "birthDate": "1980-01-01"}


def client(fake: FakeFhir, retry: RetryPolicy = FAST) -> FhirClient:
    return FhirClient(BASE, settings=Settings(fhir_timeout_seconds=1.0), retry=retry,
                      transport=fake.transport())


async def read(fake: FakeFhir, pid: str = "p1") -> tuple[object, float]:
    started = time.perf_counter()
    async with client(fake) as fhir:
        try:
            return await fhir.read_patient_data(pid, as_of=AS_OF, bp_window_days=30), \
                time.perf_counter() - started
        except Exception as exc:
            exc.elapsed = time.perf_counter() - started  # type: ignore[attr-defined]
            raise


def on_path(
    path: str, answer: httpx.Response | Exception, times: int | None = None
) -> Callable[[httpx.Request], httpx.Response | None]:
    """A fail hook answering ``answer`` for requests whose path ends with ``path``."""
    count = {"n": 0}

    def hook(request: httpx.Request) -> httpx.Response | None:
        if not request.url.path.endswith(path):
            return None
        if times is not None and count["n"] >= times:
            return None
        count["n"] += 1
        if isinstance(answer, Exception):
            raise answer
        return answer

    return hook


async def test_timeout_becomes_fhir_timeout_after_bounded_retries() -> None:
    fake = FakeFhir()
    fake.add(patient())
    fake.fail = on_path("/Patient/p1", httpx.ReadTimeout("slow"))
    with pytest.raises(FhirTimeout, match="did not answer in time") as info:
        await read(fake)
    assert info.value.elapsed < 2  # type: ignore[attr-defined]
    assert sum(r.url.path.endswith("/Patient/p1") for r in fake.requests) == 1 + FAST.max_retries


async def test_429_honours_retry_after_then_succeeds() -> None:
    fake = FakeFhir()
    fake.add(patient())
    fake.fail = on_path("/Patient/p1", httpx.Response(429, headers={"Retry-After": "1"}), times=1)
    data, elapsed = await read(fake)
    assert data.patient is not None  # type: ignore[attr-defined]
    # Retry-After: 1 is capped to 0.3 s by the policy: waited at least that, not a full second.
    assert 0.3 <= elapsed < 1.0


async def test_429_forever_becomes_unavailable() -> None:
    fake = FakeFhir()
    fake.add(patient())
    fake.fail = on_path("/Patient/p1", httpx.Response(429, headers={"Retry-After": "120"}))
    with pytest.raises(FhirUnavailable) as info:
        await read(fake)
    assert info.value.status == 429
    assert info.value.elapsed < 1.5  # type: ignore[attr-defined]  # two capped waits of 0.3 s


async def test_500_is_not_retried() -> None:
    fake = FakeFhir()
    fake.add(patient())
    fake.fail = on_path("/Patient/p1", outcome(500, "NullPointerException"))
    with pytest.raises(FhirUnavailable, match="500") as info:
        await read(fake)
    assert info.value.elapsed < 1  # type: ignore[attr-defined]
    assert sum(r.url.path.endswith("/Patient/p1") for r in fake.requests) == 1


async def test_connection_reset_is_retried_then_unavailable() -> None:
    fake = FakeFhir()
    fake.add(patient())
    fake.fail = on_path("/Patient/p1", httpx.ReadError("Connection reset by peer"))
    with pytest.raises(FhirUnavailable, match="ReadError") as info:
        await read(fake)
    assert info.value.elapsed < 2  # type: ignore[attr-defined]


async def test_one_connection_reset_is_absorbed() -> None:
    fake = FakeFhir()
    fake.add(patient())
    fake.fail = on_path("/Condition", httpx.ConnectError("reset"), times=1)
    data, _ = await read(fake)
    assert data.patient is not None  # type: ignore[attr-defined]


async def test_malformed_json_is_a_protocol_error() -> None:
    fake = FakeFhir()
    fake.add(patient())
    fake.fail = on_path("/Patient/p1", httpx.Response(200, content=b"{not json"))
    with pytest.raises(FhirProtocolError, match="malformed JSON"):
        await read(fake)


async def test_unknown_patient_is_not_found() -> None:
    fake = FakeFhir()
    with pytest.raises(FhirNotFound) as info:
        await read(fake, "nobody")
    assert str(info.value).startswith("patient not found: Patient/nobody")
    assert info.value.status == 404


async def test_401_carries_the_server_diagnostics() -> None:
    fake = FakeFhir()
    fake.add(patient())
    fake.fail = on_path("/Patient/p1", outcome(401, "token expired at 12:00"))
    with pytest.raises(FhirAuthError, match="token expired at 12:00") as info:
        await read(fake)
    assert info.value.status == 401


async def test_a_failed_page_fails_the_whole_read() -> None:
    fake = FakeFhir()
    fake.add(patient())
    for n in range(30):
        fake.add({"resourceType": "Observation", "id": f"bp{n}", "status": "final",
                  "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                  "subject": {"reference": "Patient/p1"},
                  "effectiveDateTime": (AS_OF - timedelta(days=1, minutes=n)).isoformat()})

    def second_page_down(request: httpx.Request) -> httpx.Response | None:
        return outcome(503, "down") if "_offset" in str(request.url) else None

    fake.fail = second_page_down
    async with FhirClient(BASE, settings=Settings(), retry=FAST, page_size=10,
                          transport=fake.transport()) as fhir:
        with pytest.raises(FhirUnavailable, match="503"):
            await fhir.read_patient_data("p1", as_of=AS_OF, bp_window_days=30)


async def test_a_next_link_to_another_host_is_refused() -> None:
    fake = FakeFhir()
    fake.add(patient())

    def evil(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/Condition"):
            return httpx.Response(200, json={
                "resourceType": "Bundle", "type": "searchset",
                "link": [{"relation": "next", "url": "https://evil.example/fhir?page=2"}]})
        return None

    fake.fail = evil
    with pytest.raises(FhirProtocolError, match="leaves the server"):
        await read(fake)


async def test_rejected_transaction_carries_the_outcome() -> None:
    fake = FakeFhir()
    fake.fail = lambda request: outcome(422, "Observation.status: minimum required = 1") \
        if request.method == "POST" else None
    async with client(fake) as fhir:
        with pytest.raises(FhirRejected, match="minimum required"):
            await fhir.transaction({"resourceType": "Bundle", "type": "transaction"}, retry=True)
    assert len(fake.requests) == 1


async def test_transaction_replayed_after_a_network_error() -> None:
    fake = FakeFhir()
    answer = {"resourceType": "Bundle", "type": "transaction-response", "entry": []}
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response | None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response")
        return httpx.Response(200, json=answer)

    fake.fail = flaky
    async with client(fake) as fhir:
        assert await fhir.transaction({"resourceType": "Bundle", "type": "transaction"},
                                      retry=True) == answer
        assert fhir.requests_sent == 2


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
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeFhir()
    fake.add(patient())
    fake.fail = on_path("/Condition", httpx.ReadError("reset"), times=1)
    with caplog.at_level(logging.DEBUG, logger="service"):
        await read(fake)
    assert all(r.headers.get("X-Request-ID") for r in fake.requests)
    assert "Zzyzx-Secret" not in caplog.text
    assert "Patient/p1" in caplog.text  # ids are fine
