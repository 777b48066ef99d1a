"""The FHIR server is killed (SIGKILL) in the middle of a write-back, then started again.

A dedicated sandbox (from a copy of the jar, so a rebuild cannot pull it away) sits behind the
fault proxy, which forwards the transaction's head and half its body and then holds it: the
server is inside the request. Then:

1. counted on the server while the request is in flight: nothing of the transaction is visible;
2. the JVM is killed with SIGKILL and the proxy lets go; the client gets ``FhirUnavailable``
   (its retry finds nobody listening) within a bound, not a hang;
3. the server is started again. Its H2 database lives in memory, so the restarted server is
   empty (the test shows that): what a crash does to committed data cannot be shown with this
   sandbox. What can: the service works against the restarted server without a restart of its
   own, and writing the screening twice there leaves exactly one set.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.errors import FhirUnavailable
from tests.faults.conftest import BASE_DELAY, new_patient
from tests.faults.proxy import FaultProxy
from tests.faults.test_faults_sandbox import screen_and_write, state
from tests.sandbox.manage import Sandbox, ensure_built

pytestmark = pytest.mark.integration


@pytest.fixture
def jar(tmp_path: Path) -> Path:
    copy = tmp_path / "hapi-sandbox.jar"
    shutil.copy(ensure_built(), copy)
    return copy


@pytest.fixture
def sandboxes(jar: Path, tmp_path: Path) -> Iterator[list[Sandbox]]:
    """Started sandboxes, stopped at the end (only one runs at a time)."""
    started: list[Sandbox] = []
    yield started
    for sandbox in started:
        sandbox.stop()


def start(jar: Path, log: Path, started: list[Sandbox]) -> Sandbox:
    sandbox = Sandbox(jar=jar, log_path=log)
    started.append(sandbox)
    return sandbox.start()


@pytest.mark.slow
async def test_server_killed_mid_write_back(jar: Path, tmp_path: Path,
                                            sandboxes: list[Sandbox]) -> None:
    server = start(jar, tmp_path / "first.log", sandboxes)
    pid = new_patient(server.base_url)
    proxy = FaultProxy(server.base_url).start()
    try:
        proxy.add("hold", method="POST", times=1)
        waits: list[float] = []
        write = asyncio.create_task(
            screen_and_write(proxy.base_url, pid, timeout=60.0, retries=1, waits=waits))
        holding = asyncio.ensure_future(asyncio.to_thread(proxy.holding.wait))
        done, _ = await asyncio.wait({write, holding}, return_when=asyncio.FIRST_COMPLETED)
        if write in done:
            proxy.holding.set()  # lets the waiting thread go
            pytest.fail(f"the write-back ended before it reached the server: {write.exception()}")
        assert await state(server.base_url, pid) == "none"  # in flight: nothing visible

        assert server.process is not None
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=30)
        proxy.release()
        with pytest.raises(FhirUnavailable, match=r"unreachable: POST /fhir/"):
            await write
        # One retry after one backoff of at most 0.2 s, then it gives up.
        assert len(waits) == 1 and waits[0] <= BASE_DELAY
        assert proxy.count("POST") == 2
    finally:
        proxy.stop()

    again = start(jar, tmp_path / "second.log", sandboxes)
    gone = httpx.get(f"{again.base_url}/Patient/{pid}", timeout=30)
    assert gone.status_code == 404  # H2 in memory: the restarted server starts empty
    new_patient_id = new_patient(again.base_url)
    proxy = FaultProxy(again.base_url).start()
    try:
        for _ in range(2):
            written = await screen_and_write(proxy.base_url, new_patient_id)
            assert len(written) == 3  # no Device since issue 14
    finally:
        proxy.stop()
    assert await state(again.base_url, new_patient_id) == "one"
