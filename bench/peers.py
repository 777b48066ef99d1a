"""Peers in the same run: the same patients read from the same HAPI with fhirclient and fhirpy.

Run: ``.venv/bin/python -m bench.peers`` (``FHIR_SANDBOX_URL`` or a sandbox of its own; it loads
the 50/500/5,000-record patients of bench.service), or from ``bench.service``. Each tool reads what
screening reads, as its users would write it:

- **ours**: :func:`ours` (read every search, parse, screen: the whole pipeline, one call);
- **fhirclient** (SMART's synchronous client, ``requests``): ``Patient.read``, then each search
  with ``Model.where(struct=...).perform_resources_iter`` (pages followed, every resource parsed
  into fhirclient's models), one after another;
- **fhirpy** (async, ``aiohttp``): ``client.resources(type).search(...).limit(n).fetch_all()`` for
  every search at once (``asyncio.gather``), resources as fhirpy's ``AsyncFHIRResource``.

The searches are ours (``plan_searches``: the same codes, date bound, ``_include`` and page size),
so every tool asks HAPI the same questions; peers do not screen, ours does. A second "ours"
column runs the same pipeline with the read-side projection swapped in for fhir.resources
(:func:`projection_preview`), the figure to expect once it is wired in. Each tool keeps one
client for the whole run (connections reused). Figures: median wall ms of ``ROUNDS`` reads after a
warm-up; ratio = ours / peer (below 1: ours is faster).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx

from service.config import Settings
from service.fhir.capabilities import Capabilities
from service.fhir.client import FhirClient
from service.fhir.record import plan_searches
from service.workflow import screen_from_fhir
from tests.builders import AS_OF

SIZES = (50, 500, 5000)
ROUNDS = {50: 15, 500: 9, 5000: 5}
SETTINGS = Settings(fhir_timeout_seconds=300)


async def ours(client: FhirClient, patient_id: str) -> str:
    """Our whole pipeline for one patient: read, parse, screen. The one call to re-point when the
    pipeline moves (the workflow is the orchestrator)."""
    result, _ = await screen_from_fhir(client, patient_id, as_of=AS_OF, settings=SETTINGS)
    return result.verdict.label


def searches(caps: Capabilities, patient_id: str) -> list[tuple[str, dict[str, str]]]:
    since = AS_OF - timedelta(days=SETTINGS.bp_window_days)
    return [(rtype, dict(params)) for rtype, params in
            plan_searches(caps, patient_id, since).values()]


def with_fhirclient(base: str, caps: Capabilities) -> Callable[[str], int]:
    from fhirclient.models import (
        allergyintolerance,
        condition,
        medicationrequest,
        medicationstatement,
        observation,
        patient,
    )
    from fhirclient.server import FHIRServer

    models: dict[str, Any] = {
        "Condition": condition.Condition,
        "AllergyIntolerance": allergyintolerance.AllergyIntolerance,
        "MedicationStatement": medicationstatement.MedicationStatement,
        "MedicationRequest": medicationrequest.MedicationRequest,
        "Observation": observation.Observation}
    server = FHIRServer(None, base_uri=base + "/")

    def read(patient_id: str) -> int:
        count = 1 if patient.Patient.read(patient_id, server) else 0
        for rtype, params in searches(caps, patient_id):
            struct = params | {"_count": str(SETTINGS.fhir_page_size)}
            count += sum(1 for _ in models[rtype].where(struct=struct)
                         .perform_resources_iter(server))
        return count

    return read


def with_fhirpy(base: str, caps: Capabilities) -> Callable[[str], Awaitable[int]]:
    from fhirpy import AsyncFHIRClient

    client = AsyncFHIRClient(base)

    async def read(patient_id: str) -> int:
        async def one(rtype: str, params: dict[str, str]) -> int:
            found = await (client.resources(rtype).search(**params)
                           .limit(SETTINGS.fhir_page_size).fetch_all())
            return len(found)

        jobs = [client.resources("Patient").search(_id=patient_id).fetch(), *(
            one(rtype, params) for rtype, params in searches(caps, patient_id))]
        answers = await asyncio.gather(*jobs)
        return len(answers[0]) + sum(answers[1:])

    return read


def projection_preview() -> Callable[[], None]:
    """Put the read-side projection in place of fhir.resources for the search reads (as
    tests/fhir/test_projection.py does), until it is wired in; returns the undo."""
    from service.fhir import record as paging  # where a server read's resources are parsed
    from service.fhir.projection import decode_resource

    before = paging.parse_resource
    paging.parse_resource = decode_resource  # type: ignore[assignment]

    def undo() -> None:
        paging.parse_resource = before

    return undo


async def _median(fn: Callable[[], Awaitable[object]], rounds: int) -> float:
    await fn()  # warm-up (and the first page of HAPI's search cache)
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


Row = tuple[int, float, float, float, float]
"""(records, ours ms, ours with the projection ms, fhirclient ms, fhirpy ms)."""


async def run(base: str) -> list[Row]:
    caps = Capabilities.from_statement(httpx.get(f"{base}/metadata", timeout=120).json())
    fhirclient_read = with_fhirclient(base, caps)
    fhirpy_read = with_fhirpy(base, caps)
    rows: list[Row] = []
    async with FhirClient(base, settings=SETTINGS, capabilities=caps) as client:
        for size in SIZES:
            pid = f"bench{size}"
            rounds = ROUNDS[size]
            mine = await _median(lambda: ours(client, pid), rounds)  # noqa: B023
            undo = projection_preview()
            try:
                preview = await _median(lambda: ours(client, pid), rounds)  # noqa: B023
            finally:
                undo()
            sync = await _median(lambda: asyncio.to_thread(fhirclient_read, pid),  # noqa: B023
                                 rounds)
            other = await _median(lambda: fhirpy_read(pid), rounds)  # noqa: B023
            rows.append((size, mine * 1000, preview * 1000, sync * 1000, other * 1000))
            print(f"peers: {size} records done", flush=True)
    return rows


def table(rows: list[Row]) -> str:
    header = (f"{'records':>8} {'ours ms':>8} {'fhirclient':>11} {'fhirpy':>8} "
              f"{'ours/fhirclient':>16} {'ours/fhirpy':>12} {'goal':>7}   "
              f"{'projection*':>12} {'/fhirclient':>12} {'/fhirpy':>8}")
    lines = [header, "-" * len(header)]
    for size, mine, preview, sync, other in rows:
        met = "met" if mine < sync and mine < other else "missed"
        lines.append(f"{size:>8} {mine:>8.0f} {sync:>11.0f} {other:>8.0f} "
                     f"{mine / sync:>15.2f}x {mine / other:>11.2f}x {met:>7}   "
                     f"{preview:>12.0f} {preview / sync:>11.2f}x {preview / other:>7.2f}x")
    lines.append("* ours with the read-side projection in place of fhir.resources (a preview: "
                 "not wired in yet)")
    return "\n".join(lines)


def main() -> None:
    from bench.service import fhir_server, records_of
    from tests.fhir.seed import load

    base, stop = fhir_server()
    try:
        async def go() -> list[Row]:
            if not os.environ.get("BENCH_SKIP_LOAD"):
                for size in SIZES:
                    await load(base, records_of(size), chunk=500)
            return await run(base)

        rows = asyncio.run(go())
    finally:
        stop()
    print("\nPeers, same patients, same HAPI, same searches (median wall ms; ours screens too)")
    print(table(rows))


if __name__ == "__main__":
    main()
