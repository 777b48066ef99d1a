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
so every tool asks HAPI the same questions; peers do not screen, ours does. Each tool keeps one
client for the whole run (connections reused). Figures: min / median / max wall ms of ``ROUNDS``
reads after a warm-up, the rounds of the three tools interleaved (so that machine load falls on
all alike); ratio = ours / peer, of the medians (below 1: ours is faster). Goal (issue 12): ours
faster than both at every size, screening included.
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

from bench import goals
from service.config import Settings
from service.fhir.capabilities import Capabilities
from service.fhir.client import FhirClient
from service.fhir.record import plan_searches
from service.workflow import screen_from_fhir
from tests.builders import AS_OF

SIZES = (50, 500, 5000)
ROUNDS = {50: 15, 500: 9, 5000: 5}
SETTINGS = Settings(fhir_timeout_seconds=300)
"""The service's own defaults (page size included), with a long timeout for the 5,000."""


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
        medicationdispense,
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
        "MedicationDispense": medicationdispense.MedicationDispense,
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


Row = tuple[int, list[float], list[float], list[float]]
"""(records, ours ms, fhirclient ms, fhirpy ms): one sample per round."""


async def _timed(fn: Callable[[], Awaitable[object]]) -> float:
    began = time.perf_counter()
    await fn()
    return (time.perf_counter() - began) * 1000


async def run(base: str) -> list[Row]:
    caps = Capabilities.from_statement(httpx.get(f"{base}/metadata", timeout=120).json())
    fhirclient_read = with_fhirclient(base, caps)
    fhirpy_read = with_fhirpy(base, caps)
    rows: list[Row] = []
    async with FhirClient(base, settings=SETTINGS, capabilities=caps) as client:
        for size in SIZES:
            pid = f"bench{size}"
            tools: list[Callable[[], Awaitable[object]]] = [
                lambda: ours(client, pid),  # noqa: B023
                lambda: asyncio.to_thread(fhirclient_read, pid),  # noqa: B023
                lambda: fhirpy_read(pid)]  # noqa: B023
            for tool in tools:
                await tool()  # warm-up (and the first page of HAPI's search cache)
            samples: list[list[float]] = [[], [], []]
            for _ in range(ROUNDS[size]):
                for index, tool in enumerate(tools):
                    samples[index].append(await _timed(tool))
            rows.append((size, *samples))
            print(f"peers: {size} records done", flush=True)
    record_goals(rows)
    return rows


def _spread(samples: list[float]) -> str:
    return f"{min(samples):.0f}/{statistics.median(samples):.0f}/{max(samples):.0f}"


def record_goals(rows: list[Row]) -> None:
    for size, mine, sync, other in rows:
        m = statistics.median(mine)
        for name, theirs in (("fhirclient", sync), ("fhirpy", other)):
            t = statistics.median(theirs)
            goals.record("peers", f"ours vs {name}, {size} records (median)",
                         f"{m / t:.2f}x ({m:.0f} vs {t:.0f} ms)", "< 1.00x (faster)", m < t)


def table(rows: list[Row]) -> str:
    header = (f"{'records':>8} {'ours min/med/max':>18} {'fhirclient':>16} {'fhirpy':>16} "
              f"{'ours/fhirclient':>16} {'ours/fhirpy':>12} {'goal':>7}")
    lines = [header, "-" * len(header)]
    for size, mine, sync, other in rows:
        m, s, o = (statistics.median(x) for x in (mine, sync, other))
        met = "met" if m < s and m < o else "missed"
        lines.append(f"{size:>8} {_spread(mine):>18} {_spread(sync):>16} {_spread(other):>16} "
                     f"{m / s:>15.2f}x {m / o:>11.2f}x {met:>7}")
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
    print("\nPeers, same patients, same HAPI, same searches (wall ms; ours screens too)")
    print(table(rows))


if __name__ == "__main__":
    main()
