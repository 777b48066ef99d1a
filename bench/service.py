"""Service benchmark: the whole service beside the FHIR server's own floor, in one table.

Run: ``make bench`` (or ``.venv/bin/python -m bench.service``). Uses ``FHIR_SANDBOX_URL`` when set,
else starts the HAPI sandbox from a copy of its jar (so a rebuild cannot pull it away). Loads
three synthetic patients (50, 500 and 5,000 records), runs the service as a real uvicorn process
(and then as 2 workers) configured through ``KETAMINE_*`` variables, with API and CDS tokens from
the tests' token server, and measures:

- latency to the floor: ``POST /api/v1/screenings`` end to end, beside the slowest single FHIR
  search that screening needs, timed in the same run with plain httpx (goal p50 ratio <= 1.3);
- CPU per screening: decode + screen + encode a 500-record patient, ``time.process_time`` in this
  process (bench.profile_screening; goals <= 5 ms and <= 2x ``json.loads`` on the same bytes);
- ``$evaluate`` of a 500-record Bundle at 8, 32 and 128 in flight, one process, with ``/healthz``
  latency measured meanwhile (a slow ``/healthz`` means a blocked event loop; goals >= 150 req/s
  and ``/healthz`` p99 <= 50 ms at 128 in flight);
- throughput of FHIR-backed screenings at 8, 32 and 128 in flight, one process and 2 workers;
- memory: peak RSS at 128 in flight; RSS before and after 10,000 ``$evaluate`` calls;
- CDS Hooks ``order-sign`` with everything prefetched (goal p99 <= 20 ms);
- peers (bench.peers): the same reads with fhirclient and fhirpy (goal: ours faster at every size).

Every goal is recorded for bench.goals' table.

Everything runs on one machine: the FHIR server, the service and this load generator share the
cores, so every figure here is indicative.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import goals, peers, profile_screening
from bench.engine import MEDICATIONS
from bench.engine import patient as synthetic_patient
from bench.loadgen import Run, closed_loop, percentile, probe
from service.fhir.capabilities import Capabilities
from service.fhir.record import plan_searches
from tests.auth.smart_server import SmartTestServer
from tests.builders import AS_OF
from tests.cds.conftest import (
    ESKETAMINE,
    SHIFT_DAYS,
    draft_order,
    hook_request,
    mint_cds_jwt,
    prefetch_for,
    recent_patient,
)
from tests.fhir.seed import load
from tests.perf.service_proc import ServiceProcess, free_port

SIZES = (50, 500, 5000)
ITERATIONS = {50: 30, 500: 15, 5000: 5}
THROUGHPUT = ((8, 40), (32, 96), (128, 256))
"""(requests in flight, requests sent) per row."""
EVALUATE_LOAD = ((8, 80), (32, 160), (128, 512))
"""$evaluate of the 500-record Bundle: (in flight, requests sent) per row."""
EVALUATE_REQUESTS = 10_000
CDS_CALLS = 300
EVALUATE_RECORDS = 10
"""A small Bundle for the 10,000-call soak, so it takes about a minute here."""
GOALS = {"ratio": 1.3, "cds_p99_ms": 20.0, "evaluate_rps": 150.0, "healthz_p99_ms": 50.0}
AS_OF_TEXT = AS_OF.isoformat().replace("+00:00", "Z")

PAGE_SIZE = int(os.environ.get("KETAMINE_FHIR_PAGE_SIZE", "200"))
"""The service's page size (its default unless the environment says otherwise): the floor asks
HAPI for the same pages."""

Row = tuple[str, str, float, float, float, str, str]
"""(what, case, p50 ms, p95 ms, p99 ms, value, goal/verdict)."""


def fhir_server() -> tuple[str, Callable[[], None]]:
    url = os.environ.get("FHIR_SANDBOX_URL")
    if url:
        return url.rstrip("/"), lambda: None
    from tests.sandbox.manage import Sandbox, ensure_built

    folder = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    jar = folder / "hapi-sandbox.jar"
    shutil.copy(ensure_built(), jar)
    sandbox = Sandbox(jar=jar, log_path=folder / "sandbox.log").start()

    def stop() -> None:
        sandbox.stop()
        shutil.rmtree(folder, ignore_errors=True)

    return sandbox.base_url, stop


def records_of(size: int) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in synthetic_patient(size, seed=size)["entry"]]


# -- the floor: the searches screening needs, with plain httpx --------------------------------

async def floor_once(http: httpx.AsyncClient, plan: list[tuple[str, list[tuple[str, str]]]],
                     pid: str) -> tuple[float, float]:
    """Seconds of the slowest single search (every page of it), and of all of them, run one at a
    time (the patient read included)."""
    slowest = total = 0.0
    for rtype, params in [("Patient/" + pid, []), *plan]:
        began = time.perf_counter()
        page = (await http.get(rtype, params=[*params, ("_count", str(PAGE_SIZE))]
                               if params else None))
        page.raise_for_status()
        body = page.json()
        while nxt := next((link["url"] for link in body.get("link", [])
                           if link.get("relation") == "next"), None):
            answer = await http.get(nxt)
            answer.raise_for_status()
            body = answer.json()
        slowest = max(slowest, time.perf_counter() - began)
        total += time.perf_counter() - began
    return slowest, total


async def latency_to_floor(base: str, service: str, headers: dict[str, str],
                           caps: Capabilities) -> list[Row]:
    rows: list[Row] = []
    async with (httpx.AsyncClient(base_url=base + "/", timeout=120) as fhir,
                httpx.AsyncClient(base_url=service, timeout=300, headers=headers) as api):
        for size in SIZES:
            pid = f"bench{size}"
            plan = list(plan_searches(caps, pid, AS_OF - timedelta(days=30)).values())
            body = {"patient": pid, "as_of": AS_OF_TEXT}
            ends, floors, sums = Run(), Run(), Run()
            for number in range(ITERATIONS[size] + 2):
                began = time.perf_counter()
                answer = await api.post("/api/v1/screenings", json=body)
                took = time.perf_counter() - began
                if answer.status_code != 200:
                    raise RuntimeError(f"screening failed: {answer.status_code} {answer.text}")
                slowest, together = await floor_once(fhir, plan, pid)
                if number >= 2:  # two warm-up rounds
                    ends.latencies.append(took)
                    floors.latencies.append(slowest)
                    sums.latencies.append(together)
            ratio = ends.ms(50) / floors.ms(50)
            met = "met" if ratio <= GOALS["ratio"] else "missed"
            rows.append(("screening, end to end", f"{size} records", ends.ms(50), ends.ms(95),
                         ends.ms(99), f"{ratio:.2f}x floor", f"<=1.3x {met}"))
            goals.record("service", f"end to end vs floor, {size} records (p50)",
                         f"{ratio:.2f}x ({ends.ms(50):.0f} vs {floors.ms(50):.0f} ms; ends "
                         f"min/max {ends.ms(0):.0f}/{ends.ms(100):.0f})",
                         f"<= {GOALS['ratio']}x", ratio <= GOALS["ratio"])
            rows.append(("  floor: slowest search", f"{size} records", floors.ms(50),
                         floors.ms(95), floors.ms(99),
                         f"n={len(ends.latencies)}; all {len(plan) + 1} in a row "
                         f"{sums.ms(50):.0f} ms", ""))
    return rows


# -- CPU per screening, in this process -------------------------------------------------------

def cpu_per_screening() -> Row:
    ours, floor = profile_screening.cpu_per_screening(profile_screening.body_of(500))
    profile_screening.record_goals(ours, floor)
    median, loads = statistics.median(ours), statistics.median(floor)
    return ("CPU per screening", "500 records", math.nan, math.nan, math.nan,
            f"min {min(ours):.2f} / median {median:.2f} / max {max(ours):.2f} ms; "
            f"{median / loads:.2f}x json.loads", "<=5 ms, <=2x")


# -- throughput, memory, CDS ------------------------------------------------------------------

def limits() -> httpx.Limits:
    return httpx.Limits(max_connections=300, max_keepalive_connections=300)


async def throughput(service: ServiceProcess, headers: dict[str, str], label: str,
                     peak: dict[str, float]) -> list[Row]:
    rows: list[Row] = []
    body = {"patient": "bench50", "as_of": AS_OF_TEXT}

    async def send(client: httpx.AsyncClient, _: int) -> httpx.Response:
        return await client.post("/api/v1/screenings", json=body)

    async with httpx.AsyncClient(base_url=service.base_url, timeout=300, headers=headers,
                                 limits=limits()) as client:
        await closed_loop(client, send, in_flight=4, total=8)  # warm-up
        for in_flight, total in THROUGHPUT:
            stop = asyncio.Event()
            probing = asyncio.create_task(probe(service.base_url, stop))
            run = await closed_loop(client, send, in_flight=in_flight, total=total)
            stop.set()
            health = await probing
            errors = f", errors {run.errors}" if run.errors else ""
            rows.append((f"throughput, {label}", f"{in_flight} in flight", run.ms(50),
                         run.ms(95), run.ms(99),
                         f"{run.rate:.1f} req/s; /healthz p99 "
                         f"{percentile(health, 99) * 1000:.0f} ms{errors}", ""))
            if in_flight == 128:
                peak[label] = service.peak_rss_mib()
    return rows


async def evaluate_load(service: ServiceProcess, headers: dict[str, str]) -> list[Row]:
    """``$evaluate`` of the 500-record Bundle, one process, ``/healthz`` probed meanwhile."""
    rows: list[Row] = []
    bundle = json.dumps(synthetic_patient(500, seed=500)).encode()

    async def send(client: httpx.AsyncClient, _: int) -> httpx.Response:
        return await client.post("/api/v1/screenings/$evaluate", content=bundle,
                                 params={"as_of": AS_OF_TEXT},
                                 headers={"Content-Type": "application/fhir+json"})

    async with httpx.AsyncClient(base_url=service.base_url, timeout=300, headers=headers,
                                 limits=limits()) as client:
        await closed_loop(client, send, in_flight=8, total=32)  # warm-up
        for in_flight, total in EVALUATE_LOAD:
            stop = asyncio.Event()
            probing = asyncio.create_task(probe(service.base_url, stop))
            cpu = service.cpu_seconds()
            run = await closed_loop(client, send, in_flight=in_flight, total=total)
            cpu = service.cpu_seconds() - cpu
            stop.set()
            health = await probing
            health_p99 = percentile(health, 99) * 1000
            errors = f", errors {run.errors}" if run.errors else ""
            # The service's own CPU per request: what its rate would be on a core of its own.
            per_request = cpu / max(1, len(run.latencies)) * 1000  # (/healthz calls included)
            rows.append(("$evaluate 500 records, 1 proc", f"{in_flight} in flight", run.ms(50),
                         run.ms(95), run.ms(99),
                         f"{run.rate:.0f} req/s; /healthz p50 "
                         f"{percentile(health, 50) * 1000:.0f} ms, p99 {health_p99:.0f} ms; "
                         f"service CPU {per_request:.1f} ms/req{errors}", ""))
            if in_flight == 128:
                goals.record("service", "$evaluate 500 records, one process, 128 in flight",
                             f"{run.rate:.0f} req/s (p50 {run.ms(50):.0f} ms){errors}",
                             f">= {GOALS['evaluate_rps']:g} req/s",
                             run.rate >= GOALS["evaluate_rps"] and not run.errors,
                             f"service CPU {per_request:.1f} ms per request: "
                             f"{1000 / per_request:.0f} req/s on a core of its own")
                goals.record("service", "  /healthz meanwhile (p99)",
                             f"{health_p99:.0f} ms (p50 {percentile(health, 50) * 1000:.0f}, "
                             f"n={len(health)})",
                             f"<= {GOALS['healthz_p99_ms']:g} ms",
                             health_p99 <= GOALS["healthz_p99_ms"])
    return rows


async def memory_growth(service: ServiceProcess, headers: dict[str, str]) -> tuple[float, float,
                                                                                    Run]:
    bundle = json.dumps(synthetic_patient(EVALUATE_RECORDS, seed=7)).encode()

    async def send(client: httpx.AsyncClient, _: int) -> httpx.Response:
        return await client.post("/api/v1/screenings/$evaluate", content=bundle,
                                 params={"as_of": AS_OF_TEXT},
                                 headers={"Content-Type": "application/fhir+json"})

    async with httpx.AsyncClient(base_url=service.base_url, timeout=120, headers=headers,
                                 limits=limits()) as client:
        await closed_loop(client, send, in_flight=8, total=200)  # warm-up
        before = service.rss_mib()
        run = await closed_loop(client, send, in_flight=8, total=EVALUATE_REQUESTS)
        after = service.rss_mib()
    return before, after, run


async def cds_order_sign(service: ServiceProcess, token_server: SmartTestServer) -> Row:
    person = recent_patient("bench-cds")  # about 50 records, one contraindication (a card)
    person.condition("F33.1", "Major depressive disorder, recurrent, moderate")
    person.condition("I71.4", "Abdominal aortic aneurysm")
    for k in range(40):
        person.bp(118 + k % 20, 74 + k % 10, days_ago=float(k * 9) - SHIFT_DAYS)
    for code, name in MEDICATIONS:
        person.medication(code, name)
    body = hook_request("bench-cds", [draft_order("bench-cds", ESKETAMINE)], prefetch_for(person))
    audience = f"{service.base_url}/cds-services/ketamine-order-sign"
    tokens = [mint_cds_jwt(token_server, "ketamine-order-sign", aud=audience)
              for _ in range(CDS_CALLS + 10)]

    async def send(client: httpx.AsyncClient, number: int) -> httpx.Response:
        return await client.post("/cds-services/ketamine-order-sign", json=body,
                                 headers={"Authorization": f"Bearer {tokens[number]}"})

    async with httpx.AsyncClient(base_url=service.base_url, timeout=60) as client:
        first = await send(client, CDS_CALLS)
        if first.status_code != 200 or not first.json().get("cards"):
            raise RuntimeError(f"CDS call failed: {first.status_code} {first.text[:300]}")
        run = await closed_loop(client, send, in_flight=1, total=CDS_CALLS)
    met = run.ms(99) <= GOALS["cds_p99_ms"]
    goals.record("service", "CDS order-sign, full prefetch (p99)",
                 f"{run.ms(99):.1f} ms (p50 {run.ms(50):.1f}, max {run.ms(100):.1f}; "
                 f"n={len(run.latencies)})", f"<= {GOALS['cds_p99_ms']:g} ms", met)
    return ("CDS order-sign, prefetched", "1 in flight", run.ms(50), run.ms(95), run.ms(99),
            f"{run.rate:.0f} calls/s", f"p99<=20 ms {'met' if met else 'missed'}")


# -- the run ---------------------------------------------------------------------------------

def service_env(base: str, token_server: SmartTestServer, port: int) -> dict[str, str]:
    return {"KETAMINE_ENVIRONMENT": "test", "KETAMINE_BASE_URL": f"http://127.0.0.1:{port}",
            "KETAMINE_ALLOWED_ISSUERS": base,
            "KETAMINE_API_ISSUER": f"{token_server.base_url}/api",
            "KETAMINE_API_AUDIENCE": "ketamine-api",
            "KETAMINE_API_JWKS_URL": f"{token_server.base_url}/api/jwks",
            "KETAMINE_CDS_ALLOWED_ISSUERS": token_server.base_url,
            "KETAMINE_CDS_JWKS_URLS": json.dumps({token_server.base_url:
                                                  f"{token_server.base_url}/jwks"}),
            "KETAMINE_FHIR_TIMEOUT_SECONDS": "120", "KETAMINE_FHIR_MAX_RETRIES": "1",
            "AUTHLIB_INSECURE_TRANSPORT": "1"}


def table(rows: list[Row]) -> str:
    def ms(value: float) -> str:
        return "" if value != value else f"{value:.0f}" if value >= 10 else f"{value:.1f}"

    header = (f"{'measure':<30} {'case':<14} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  "
              f"{'value':<58} goal")
    lines = [header, "-" * len(header)]
    lines += [f"{what:<30} {case:<14} {ms(p50):>8} {ms(p95):>8} {ms(p99):>8}  {value:<58} {goal}"
              for what, case, p50, p95, p99, value, goal in rows]
    return "\n".join(lines)


async def run(base: str) -> tuple[list[Row], list[peers.Row]]:
    from service.fhir.http import json_body

    started = time.monotonic()
    for size in SIZES:
        await load(base, records_of(size), chunk=500)
    print(f"loaded 3 patients ({sum(SIZES)} records) in {time.monotonic() - started:.0f} s",
          flush=True)
    caps = Capabilities.from_statement(json_body(httpx.get(f"{base}/metadata", timeout=60),
                                                 what="metadata"))
    token_server = SmartTestServer().start()
    try:
        token = token_server.mint_api_token(scope="ketamine.screen", expires_in=3600)
        headers = {"Authorization": f"Bearer {token}"}
        rows = [cpu_per_screening()]
        peak: dict[str, float] = {}
        port = free_port()
        with ServiceProcess(service_env(base, token_server, port), port=port) as one:
            rows += await latency_to_floor(base, one.base_url, headers, caps)
            print("latency to the floor done", flush=True)
            peer_rows = await peers.run(base)
            rows.append(await cds_order_sign(one, token_server))
            rows += await evaluate_load(one, headers)
            print("$evaluate under load done", flush=True)
            rows += await throughput(one, headers, "1 process", peak)
            print("throughput (1 process) done", flush=True)
            before, after, evaluate = await memory_growth(one, headers)
        port = free_port()
        with ServiceProcess(service_env(base, token_server, port), port=port, workers=2) as two:
            rows += await throughput(two, headers, "2 workers", peak)
        rows.append(("memory: peak RSS", "128 in flight", math.nan, math.nan, math.nan,
                     f"{peak['1 process']:.0f} MiB (1 process), "
                     f"{peak['2 workers']:.0f} MiB (2 workers)", ""))
        rows.append(("memory: RSS over $evaluate", f"{EVALUATE_REQUESTS} x {EVALUATE_RECORDS} rec",
                     evaluate.ms(50),
                     evaluate.ms(95), evaluate.ms(99),
                     f"{before:.0f} -> {after:.0f} MiB ({after - before:+.1f}); "
                     f"{evaluate.rate:.0f} req/s", ""))
        return rows, peer_rows
    finally:
        token_server.stop()


def main() -> None:
    began = time.monotonic()
    base, stop = fhir_server()
    try:
        rows, peer_rows = asyncio.run(run(base))
    finally:
        stop()
    print()
    print(f"Service benchmark: {os.cpu_count()} cores; FHIR server, service and load generator "
          "share them.")
    print("Figures are from one noisy machine: compare ratios, not absolute numbers.")
    print(table(rows))
    print(f"(whole run {time.monotonic() - began:.0f} s; latency rows: sequential requests, "
          f"n = {ITERATIONS}; floor = slowest single search incl. paging, plain httpx)")
    print("\nPeers, same patients, same HAPI, same searches (median wall ms; ours screens too)")
    print(peers.table(peer_rows))


if __name__ == "__main__":
    main()
