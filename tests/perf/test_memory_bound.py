"""Memory and connections a client can take from a real ``ketamine-screen serve`` process
(issue 16), measured from ``/proc/<pid>/status``: the service's resident memory (VmRSS) and its
peak (VmHWM, reset before each attack through ``/proc/<pid>/clear_refs``).

The attacks are the issue's: anonymous 100 MB POSTs to the CDS, screening and session routes
(one, then six at once, with and without Content-Length); 20 concurrent authenticated 3.7 MB
``$evaluate`` calls; clients that start their headers or their body and never finish. Figures go
to stderr (``pytest -s``). Bounds are on memory, never on time: a slow client is waited for until
the service closes on it (pytest-timeout guards the wait).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.auth.smart_server import SmartTestServer
from tests.builders import PatientBuilder
from tests.perf.service_proc import ServiceProcess

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
ATTACK_BYTES = 100 * MIB
OVERSIZED_PEAK_MIB = 64
"""Peak growth allowed while 100 MB bodies arrive (main: +276 MB for one, +760 MB for six)."""
EVALUATE_PEAK_MIB = 512
"""Peak growth allowed for 20 concurrent 3.7 MB Bundles (main: about +1.9 GB)."""
RETURNED_MIB = 64
"""What may stay resident once the oversized bodies are refused."""
REUSED_MIB = 48
"""What a third round of Bundles may add to what the second left resident."""
FIGURES: list[str] = []


def _rss(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for {pid}")


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS (proc(5))


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if FIGURES:
        sys.stderr.write("\nmemory bound:\n" + "\n".join(f"  {f}" for f in FIGURES) + "\n")


@pytest.fixture(scope="module")
def token_issuer() -> Iterator[SmartTestServer]:
    server = SmartTestServer().start()
    yield server
    server.stop()


def _env(issuer: SmartTestServer, logs: Path, **extra: str) -> dict[str, str]:
    base = issuer.base_url
    return {"KETAMINE_ENVIRONMENT": "test", "KETAMINE_ALLOWED_ISSUERS": "http://127.0.0.1:9/fhir",
            "KETAMINE_API_ISSUER": f"{base}/api", "KETAMINE_API_AUDIENCE": "ketamine-api",
            "KETAMINE_API_JWKS_URL": f"{base}/api/jwks", "KETAMINE_CDS_ALLOWED_ISSUERS": base,
            "KETAMINE_CDS_JWKS_URLS": json.dumps({base: f"{base}/jwks"}),
            "KETAMINE_AUDIT_LOG": str(logs / "audit.jsonl"), **extra}


@pytest.fixture(scope="module")
def service(token_issuer: SmartTestServer,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The service with its default deadlines: a loaded machine may take seconds to send the
    big bodies these tests post, and a deadline met or missed is not what they measure."""
    logs = tmp_path_factory.mktemp("memory")
    with ServiceProcess(_env(token_issuer, logs), serve=True, log=logs / "service.log") as proc:
        yield proc


@pytest.fixture(scope="module")
def impatient_service(token_issuer: SmartTestServer,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The service with 2 s header and body deadlines, for the slow-client test."""
    logs = tmp_path_factory.mktemp("impatient")
    env = _env(token_issuer, logs, KETAMINE_HEADER_TIMEOUT_SECONDS="2",
               KETAMINE_BODY_TIMEOUT_SECONDS="2")
    with ServiceProcess(env, serve=True, log=logs / "service.log") as proc:
        yield proc


def _pid(service: ServiceProcess) -> int:
    assert service.process is not None
    return service.process.pid


async def _post(port: int, path: str, body: bytes | int, *, chunked: bool = False,
                headers: dict[str, str] | None = None) -> int:
    """POST ``body`` (or that many JSON-looking bytes) as fast as the service takes it, reading
    its answer meanwhile (it may answer, and close, before the body is all sent); the status.

    A plain socket: reading and writing fail separately, so an answer that arrived before the
    service reset the connection is still read (asyncio's streams drop it on a failed write)."""
    loop = asyncio.get_running_loop()
    size = body if isinstance(body, int) else len(body)
    head = {"Host": "127.0.0.1", "Content-Type": "application/json", "Connection": "close",
            **(headers or {})}
    head["Transfer-Encoding" if chunked else "Content-Length"] = \
        "chunked" if chunked else str(size)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)

    async def send_body() -> None:
        await loop.sock_sendall(sock, f"POST {path} HTTP/1.1\r\n".encode() + b"".join(
            f"{k}: {v}\r\n".encode() for k, v in head.items()) + b"\r\n")
        filler = b"[" + b" " * (MIB - 1)
        sent = 0
        while sent < size:
            chunk = (filler if isinstance(body, int) else body[sent:sent + MIB])[:size - sent]
            await loop.sock_sendall(
                sock, f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
            sent += len(chunk)
        if chunked:
            await loop.sock_sendall(sock, b"0\r\n\r\n")

    async def status() -> int:
        answer = b""
        while b"\r\n" not in answer:
            piece = await loop.sock_recv(sock, 4096)
            if not piece:
                break
            answer += piece
        return int(answer.split()[1]) if answer else 0

    sender = asyncio.ensure_future(send_body())
    try:
        return await status()
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        sock.close()


ROUTES = ["/cds-services/ketamine-order-sign", "/api/v1/screenings", "/api/v1/sessions"]


async def test_anonymous_100_mb_bodies_leave_memory_bounded(service: ServiceProcess) -> None:
    """Issue 16: one anonymous 100 MB POST took the service from 179 to 455 MB, six at once to
    939 MB (386 MB retained)."""
    pid = _pid(service)
    for path in ROUTES:  # warm each route up (imports, first parse) before measuring
        assert await _post(service.port, path, 2, chunked=False) in (401, 422)
    before = _rss(pid)
    _reset_peak(pid)
    one = await _post(service.port, ROUTES[0], ATTACK_BYTES, chunked=False)
    peak_one = _rss(pid, "VmHWM") - before
    _reset_peak(pid)
    six = await asyncio.gather(*(
        _post(service.port, path, ATTACK_BYTES, chunked=chunked)
        for path in ROUTES for chunked in (False, True)))
    peak_six = _rss(pid, "VmHWM") - before
    after = _rss(pid) - before
    FIGURES.append(f"anonymous 100 MB bodies: RSS {before:.0f} MiB before; peak +{peak_one:.1f} "
                   f"MiB for one, +{peak_six:.1f} MiB for six at once; +{after:.1f} MiB after")
    assert (one, six) == (413, [413] * 6)
    assert peak_one <= OVERSIZED_PEAK_MIB and peak_six <= OVERSIZED_PEAK_MIB
    assert after <= RETURNED_MIB


def _bundle_of(size: int) -> bytes:
    patient = PatientBuilder("big-bundle", normal_vitals=False)
    count = 0
    while True:
        for _ in range(200):
            count += 1
            patient.bp(120 + count % 30, 80, days_ago=count % 300 + 1)
            patient.condition("F32.9", f"Major depressive disorder, entry {count}")
        data = json.dumps(patient.bundle()).encode()
        if len(data) >= size:
            return data


async def test_concurrent_bundles_are_capped(service: ServiceProcess,
                                             token_issuer: SmartTestServer) -> None:
    """Issue 16: 20 concurrent authenticated 3.7 MB $evaluate calls peaked at 2.1 GB. Now four
    are served at once (``KETAMINE_MAX_HEAVY_REQUESTS``), the others get 503 before their body is
    read. What the four used is not all handed back to the system (the allocator keeps freed
    arenas it cannot release whole), but it is reused: once warm, another round adds nothing."""
    pid = _pid(service)
    bundle = _bundle_of(int(3.7 * 1000 * 1000))
    auth = {"Authorization": f"Bearer {token_issuer.mint_api_token()}"}
    before = _rss(pid)
    rounds = []
    for _ in range(3):
        _reset_peak(pid)
        statuses = await asyncio.gather(*(
            _post(service.port, "/api/v1/screenings/$evaluate", bundle, headers=auth)
            for _ in range(20)))
        rounds.append((_rss(pid, "VmHWM") - before, _rss(pid) - before, sorted(statuses)))
    for peak, after, statuses in rounds:
        FIGURES.append(f"20 concurrent {len(bundle) / 1e6:.1f} MB $evaluate: RSS {before:.0f} "
                       f"MiB before; peak +{peak:.1f} MiB; +{after:.1f} MiB after; "
                       f"{statuses.count(200)} x 200, {statuses.count(503)} x 503")
        assert set(statuses) <= {200, 503} and 200 in statuses
        assert peak <= EVALUATE_PEAK_MIB and after <= EVALUATE_PEAK_MIB
    assert rounds[2][1] - rounds[1][1] <= REUSED_MIB


@pytest.mark.timeout(120)
async def test_slow_clients_are_let_go(impatient_service: ServiceProcess) -> None:
    """Issue 16: slow clients could hold 200 connections open indefinitely. Headers or a body
    that never end: the service closes the connection (after the 2 s configured)."""

    async def slow_headers() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", impatient_service.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never the blank line
        await writer.drain()
        answer = await reader.read()  # b"" once the service has closed the connection
        writer.close()
        return answer

    async def slow_body() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", impatient_service.port)
        writer.write(b"POST /cds-services/ketamine-order-sign/feedback HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 1000\r\n"
                     b"Content-Type: application/json\r\n\r\n{")
        await writer.drain()
        answer = await reader.read()
        writer.close()
        return answer

    heads = await asyncio.gather(*(slow_headers() for _ in range(20)))
    bodies = await asyncio.gather(*(slow_body() for _ in range(5)))
    assert heads == [b""] * 20  # closed without an answer
    assert all(b.startswith(b"HTTP/1.1 408 ") for b in bodies), bodies[0][:200]
    assert await _post(impatient_service.port, ROUTES[1], 2) in (401, 422)  # still serving
