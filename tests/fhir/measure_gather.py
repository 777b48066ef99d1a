"""Measure reading a 1,200-BP patient from the sandbox, sequential vs concurrent, and the size
of the screening transaction written back.

    FHIR_SANDBOX_URL=http://127.0.0.1:8091/fhir .venv/bin/python -m tests.fhir.measure_gather

Loads the patient first (PUT with fixed ids: a second run reuses it). Prints one line per case.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time

from service.fhir.capabilities import clear_cache
from service.fhir.client import FhirClient
from service.fhir.transaction import submit
from service.render.writeback import build_screening_write
from service.screening.engine import screen
from tests.fhir.seed import AS_OF, big_patient, load

PID = "measure-big-1200"
RUNS = 3


async def _case(base: str, *, concurrent: bool, page_size: int) -> tuple[int, float]:
    times: list[float] = []
    sent = 0
    for _ in range(RUNS):
        clear_cache()  # each run pays for /metadata, as a fresh process would
        async with FhirClient(base, page_size=page_size) as fhir:
            started = time.perf_counter()
            data = await fhir.read_patient_data(PID, as_of=AS_OF, bp_window_days=30,
                                                concurrent=concurrent)
            times.append(time.perf_counter() - started)
            sent = fhir.requests_sent
        assert len(data.resources) > 1200
    return sent, statistics.median(times)


async def main() -> None:
    base = os.environ.get("FHIR_SANDBOX_URL")
    if not base:
        sys.exit("set FHIR_SANDBOX_URL")
    await load(base, big_patient(PID))
    out = sys.stdout
    for page_size in (200, 1000):
        for concurrent in (False, True):
            sent, median = await _case(base, concurrent=concurrent, page_size=page_size)
            mode = "concurrent" if concurrent else "sequential"
            out.write(f"read, page size {page_size:4d}, {mode:10s}: {sent:3d} requests, "
                      f"median {median:.2f} s over {RUNS} runs\n")
    async with FhirClient(base) as fhir:
        data = await fhir.read_patient_data(PID, as_of=AS_OF, bp_window_days=30)
        result = screen(data, AS_OF)
        write = build_screening_write(result, versions=data.versions)
        body = write.bundle().model_dump(mode="json", exclude_none=True)
        size = len(json.dumps(body, separators=(",", ":")).encode())
        started = time.perf_counter()
        written = await submit(fhir, write.bundle())
        took = time.perf_counter() - started
    out.write(f"screening transaction: verdict {result.verdict.label}, "
              f"{len(result.findings)} findings, {len(body['entry'])} entries, {size} bytes; "
              f"written in {took:.2f} s ({written.created} created, {written.matched} "
              "already present)\n")


if __name__ == "__main__":
    asyncio.run(main())
