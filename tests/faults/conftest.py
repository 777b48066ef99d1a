"""Fault fixtures: the fault proxy in front of the HAPI sandbox, a patient, and a write counter.

The counter asks the sandbox itself (never through the proxy), with ``_summary=count``, how many
resources match each entry of the screening's write-back transaction (their identifiers, or the
Provenance's tag, are deterministic): ``none`` (0 of each), ``one`` (1 of each), else the
counts themselves, which is the failure the tests exist to catch (a partial or duplicate write).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.config import Settings
from service.fhir.client import FhirClient
from service.fhir.http import RetryPolicy
from service.render.writeback import build_screening_write
from service.screening.model import RawPatientData, ScreeningResult
from tests.builders import PatientBuilder
from tests.faults.proxy import FaultProxy


@pytest.fixture
def proxy(fhir_base_url: str) -> Iterator[FaultProxy]:
    fault = FaultProxy(fhir_base_url).start()
    yield fault
    fault.stop()


def put(base_url: str, resources: list[dict[str, Any]]) -> None:
    entries = [{"fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}", "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
               for r in resources]
    answer = httpx.post(base_url, json={"resourceType": "Bundle", "type": "transaction",
                                        "entry": entries},
                        headers={"Content-Type": "application/fhir+json"}, timeout=120)
    assert answer.status_code == 200, answer.text[:500]


def new_patient(base_url: str) -> str:
    """A contraindicated patient (aneurysm): a write-back is Observation + DetectedIssue +
    Provenance."""
    pid = f"fault-{uuid.uuid4().hex[:10]}"
    patient = PatientBuilder(pid)
    patient.condition("I71.4", "Abdominal aortic aneurysm")
    put(base_url, [patient.patient(), *patient.resources])
    return pid


@pytest.fixture
def patient(fhir_base_url: str) -> str:
    return new_patient(fhir_base_url)


BASE_DELAY, MAX_DELAY = 0.2, 1.0
"""The fault tests' backoff: attempt n waits at most min(MAX_DELAY, BASE_DELAY * 2**n) s."""


def fhir_client(base_url: str, *, timeout: float = 2.0, retries: int = 2,
                waits: list[float] | None = None) -> FhirClient:
    """A client whose waits between attempts go to ``waits`` instead of being slept."""
    settings = Settings(_env_file=None, fhir_timeout_seconds=timeout,  # type: ignore[call-arg]
                        fhir_max_retries=retries)
    spent = waits if waits is not None else []

    async def sleep(seconds: float) -> None:
        spent.append(seconds)

    return FhirClient(base_url, settings=settings, retry=RetryPolicy(
        max_retries=retries, base_delay=BASE_DELAY, max_delay=MAX_DELAY, sleep=sleep))


def write_state(base_url: str, result: ScreeningResult, raw: RawPatientData) -> str | dict[str,
                                                                                          int]:
    """``none``, ``one``, or {entry: count} when the write is partial or duplicated."""
    write = build_screening_write(result, versions=raw.versions)
    counts: dict[str, int] = {}
    with httpx.Client(timeout=60) as http:
        for entry in [write.observation, *write.issues, write.provenance]:
            answer = http.get(f"{base_url}/{entry.resource_type}", params={
                entry.match: f"{entry.system}|{entry.value}", "_summary": "count"})
            answer.raise_for_status()
            counts[f"{entry.resource_type}|{entry.value[:12]}"] = int(answer.json()["total"])
    if set(counts.values()) == {0}:
        return "none"
    if set(counts.values()) == {1}:
        return "one"
    return counts
