"""Population screening at scale: a 1,000-patient Synthea-shaped population, ``screen --all``.

Run: ``.venv/bin/python -m bench.population`` (also ``make bench-population``, part of
``make bench``). Uses ``FHIR_SANDBOX_URL`` when set (the population is loaded once: a server that
already holds it is not loaded again), else starts a HAPI sandbox of its own with a larger heap
(the population is ~171,000 resources in HAPI's in-memory database) set up for bulk loading
(``SANDBOX_BULK_LOAD=1``: no request validation, which was most of the load's time, HAPI's mass
ingestion mode, no history rows; the tests' sandbox never sets it).

1. **Load**: ``POPULATION`` patients from :mod:`tests.synthea_like` (150 Observations, 10
   Conditions, 10 MedicationRequests each, one in five an allergy), PUT with client ids in
   transactions of ``PATIENTS_PER_TRANSACTION`` patients, ``LOAD_CONCURRENCY`` at a time; a Group
   ``bench-pop250`` of the first 250 patients.
2. **Engine alone**: the export's NDJSON (read once with the service's own Bulk Data client into
   the on-disk spill ``screen --all`` uses) screened in this process, one core, no I/O but the
   spill's SQLite: patients/s for the spill walk alone, + decoding, + screening (min / median /
   max of ``ENGINE_ROUNDS`` walks).
3. **End to end**: ``ketamine-screen screen --all --format json`` (and ``--group bench-pop250``)
   as a child process: wall time, patients/s, and its peak RSS (``wait4``'s ``ru_maxrss``), so
   that memory can be compared between 250 and 1,000 patients.

Goals (issue 12): engine >= 1,000 patients/s on one core; memory flat in the population's size.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec

from bench import goals
from service.config import Settings
from service.fhir.bulk import start_export
from service.fhir.bundle import parse_bundle
from service.fhir.client import FhirClient
from service.fhir.spill import Spill
from service.screening.engine import screen
from tests.builders import AS_OF, iso
from tests.synthea_like import population

POPULATION = int(os.environ.get("BENCH_POPULATION", "1000"))
GROUP = "bench-pop250"
GROUP_SIZE = 250
PATIENTS_PER_TRANSACTION = 10
"""About 1,700 resources a transaction (validation off: HAPI takes them in one go)."""
LOAD_CONCURRENCY = 2
ENGINE_ROUNDS = 3
GOAL_PATIENTS_PER_S = 1000
HEAP = ("-Xmx8g", "-XX:+UseParallelGC", "-Xshare:auto")
"""The sandbox's own flags give 1 GiB, too little for the population in memory."""


def fhir_server() -> tuple[str, Callable[[], None]]:
    url = os.environ.get("FHIR_SANDBOX_URL")
    if url:
        return url.rstrip("/"), lambda: None
    import tests.sandbox.manage as manage

    folder = Path(tempfile.mkdtemp(prefix="bench-population-"))
    jar = folder / "hapi-sandbox.jar"
    shutil.copy(manage.ensure_built(), jar)
    manage.JVM_FLAGS = HEAP  # this process's sandbox only
    os.environ["SANDBOX_BULK_LOAD"] = "1"  # (the child JVM reads it; see the docstring)
    sandbox = manage.Sandbox(jar=jar, log_path=folder / "sandbox.log").start()

    def stop() -> None:
        sandbox.stop()
        shutil.rmtree(folder, ignore_errors=True)

    return sandbox.base_url, stop


# -- 1. load ---------------------------------------------------------------------------------------


def patient_count(base: str) -> int:
    answer = httpx.get(f"{base}/Patient", params={"_summary": "count"}, timeout=120)
    answer.raise_for_status()
    return int(answer.json()["total"])


def transactions(base: str, people: list[list[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    for start in range(0, len(people), PATIENTS_PER_TRANSACTION):
        resources = [r for person in people[start:start + PATIENTS_PER_TRANSACTION]
                     for r in person]  # each person's Patient comes first
        yield {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
             "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources]}


async def load(base: str, count: int) -> tuple[int, float]:
    """PUT the population (idempotent: client ids); (resources sent, seconds)."""
    people = population(count)
    bundles = list(transactions(base, people))
    group = {"resourceType": "Group", "id": GROUP, "type": "person", "actual": True,
             "member": [{"entity": {"reference": f"Patient/{p[0]['id']}"}}
                        for p in people[:GROUP_SIZE]]}
    sent = sum(len(b["entry"]) for b in bundles) + 1
    began = time.monotonic()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bundles:
        queue.put_nowait(body)
    async with httpx.AsyncClient(timeout=600) as http:
        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                answer = await http.post(base, content=msgspec.json.encode(body),
                                         headers={"Content-Type": "application/fhir+json"})
                if answer.status_code != 200:
                    raise RuntimeError(f"load failed: {answer.status_code} {answer.text[:500]}")
                done = len(bundles) - queue.qsize()
                if done % 50 == 0:
                    print(f"  loaded {done}/{len(bundles)} transactions "
                          f"({time.monotonic() - began:.0f} s)", flush=True)

        await asyncio.gather(*(worker() for _ in range(LOAD_CONCURRENCY)))
        answer = await http.put(f"{base}/Group/{GROUP}", content=json.dumps(group),
                                headers={"Content-Type": "application/fhir+json"})
        answer.raise_for_status()
    return sent, time.monotonic() - began


# -- 2. the engine alone, from the spill -----------------------------------------------------------


async def export_to_spill(base: str) -> tuple[Spill, float]:
    """The system export's NDJSON in a Spill, as ``screen --all`` builds it; (spill, seconds)."""
    began = time.monotonic()
    spill = Spill()
    async with FhirClient(base, settings=Settings(fhir_timeout_seconds=600)) as client:
        job = await start_export(client, max_poll_interval=2.0)
        if job is None:
            raise RuntimeError("the server offers no $export")
        try:
            manifest = await job.wait()
            for file in manifest.output:
                async for line in job.lines(file, manifest):
                    spill.add(line)
        finally:
            await job.delete()
    spill.finish()
    return spill, time.monotonic() - began


def cpu_rate(spill: Spill, step: Callable[[str, str], object]) -> float:
    """Patients per CPU second for ``step`` over every patient of the spill."""
    began = time.process_time()
    count = 0
    for pid, bundle in spill.patients():
        step(pid, bundle)
        count += 1
    return count / (time.process_time() - began)


def engine_rates(spill: Spill) -> list[tuple[str, list[float]]]:
    def decode(pid: str, data: str) -> object:
        return parse_bundle(data, pid, pid)

    def decode_and_screen(pid: str, data: str) -> object:
        return screen(parse_bundle(data, pid, pid), AS_OF)

    steps: list[tuple[str, Callable[[str, str], object]]] = [
        ("spill walk only (SQLite joins a patient's rows)", lambda p, d: None),
        ("+ decode (one Bundle per patient)", decode),
        ("+ decode + screen: the engine", decode_and_screen)]
    return [(name, [cpu_rate(spill, step) for _ in range(ENGINE_ROUNDS)])
            for name, step in steps]


# -- 3. end to end: the command line --------------------------------------------------------------


def cli(base: str, *scope: str) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, its summary) of one ``screen`` run as a child process."""
    command = [str(Path(sys.executable).with_name("ketamine-screen")), "screen", "--fhir-base",
               base, *scope, "--as-of", iso(AS_OF), "--format", "json"]
    began = time.monotonic()
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        took = time.monotonic() - began
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
    if child.returncode != 0:
        raise RuntimeError(f"screen {' '.join(scope)} failed ({child.returncode}): {text[-2000:]}")
    summary = text[text.find("Population screening"):]
    return took, usage.ru_maxrss / 1024, summary


def summary_figures(summary: str) -> str:
    found = re.search(r"fetch ([\d.]+) s, screening ([\d.]+) s \((\d+) patients/s\)", summary)
    return (f"CLI's own split: fetch {found[1]} s, screening {found[2]} s ({found[3]} patients/s)"
            if found else "CLI summary not found")


def main() -> None:
    began = time.monotonic()
    base, stop = fhir_server()
    try:
        present = patient_count(base)
        load_s = 0.0
        if present < POPULATION:
            print(f"loading {POPULATION} patients into {base} ...", flush=True)
            sent, load_s = asyncio.run(load(base, POPULATION))
            print(f"loaded {sent} resources in {load_s:.0f} s ({sent / load_s:.0f}/s)")
        spill, export_s = asyncio.run(export_to_spill(base))
        try:
            patients = spill.patient_count()
            skipped = spill.skipped
            print(f"export: {spill.lines} NDJSON lines ({spill.bytes / 1e6:.0f} MB), "
                  f"{patients} patients, {export_s:.0f} s", flush=True)
            engine = engine_rates(spill)
        finally:
            spill.close()
        runs = []
        for scope, label in ((("--group", GROUP), f"{GROUP_SIZE} patients (--group)"),
                             (("--all",), f"{patients} patients (--all)")):
            took, rss, summary = cli(base, *scope)
            found = re.search(r"Population screening: (\d+) patients", summary)
            count = int(found[1]) if found else 0
            runs.append((label, took, count / took, rss, summary_figures(summary)))
            print(f"screen {' '.join(scope)} done", flush=True)
    finally:
        stop()
    print(f"\nPopulation screening: {patients} Synthea-shaped patients "
          f"(~171 records each; {skipped} exported Observations no rule reads dropped in the "
          "spill), one core")
    print(f"{'engine alone, from the NDJSON spill':<50} {'patients/s min/median/max':>27}  "
          f"goal >= {GOAL_PATIENTS_PER_S}/s")
    for name, rates in engine:
        median = statistics.median(rates)
        met = ("met" if median >= GOAL_PATIENTS_PER_S else "missed") if "screen" in name else ""
        print(f"  {name:<48} {min(rates):>8.0f} {median:>8.0f} {max(rates):>8.0f}  {met}")
    rates = engine[-1][1]
    median = statistics.median(rates)
    goals.record("population", f"engine alone, {patients} patients from the spill, one core",
                 f"{min(rates):.0f} / {median:.0f} / {max(rates):.0f} patients/s",
                 f">= {GOAL_PATIENTS_PER_S:,} patients/s (median)",
                 median >= GOAL_PATIENTS_PER_S)
    print(f"\n{'end to end: ketamine-screen screen':<34} {'wall s':>8} {'patients/s':>11} "
          f"{'peak RSS MiB':>13}")
    for label, took, rate, rss, split in runs:
        print(f"  {label:<32} {took:>8.1f} {rate:>11.1f} {rss:>13.0f}   {split}")
    small, large = runs[0][3], runs[-1][3]
    flat = large <= small * 1.1
    print(f"memory: {small:.0f} MiB at {GROUP_SIZE} patients, {large:.0f} MiB at {patients} "
          f"({(large - small) / small * 100:+.0f}%): goal flat "
          f"{'met' if flat else 'missed'} (within 10%)")
    goals.record("population", f"peak RSS, {GROUP_SIZE} -> {patients} patients (screen)",
                 f"{small:.0f} -> {large:.0f} MiB ({(large - small) / small * 100:+.0f}%)",
                 "flat (within 10%)", flat)
    goals.record("population", f"end to end, screen --all, {patients} patients (info)",
                 f"{runs[-1][2]:.1f} patients/s, {runs[-1][1]:.0f} s ({runs[-1][4]})",
                 "(no goal)", True)
    print(f"(load {load_s:.0f} s, export {export_s:.0f} s)")
    print(f"(whole run {time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    main()
