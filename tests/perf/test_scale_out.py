"""Two service PROCESSES sharing Redis: a SMART launch begun on one completes on the other.

tests/auth/test_state.py proves the same with two app objects in one process; this runs two real
uvicorn processes (separate memory, as two replicas behind a load balancer would be) configured
only through the environment, against a real redis-server and the SMART test server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from joserfc.jwk import ECKey, RSAKey

from tests.auth.conftest import CLIENT_ID, CLIENT_SECRET, register_client
from tests.auth.flow import authorize, callback
from tests.auth.smart_server import SmartTestServer
from tests.perf.service_proc import ServiceProcess, free_port

pytestmark = pytest.mark.integration

os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture(scope="module")
def smart() -> Iterator[SmartTestServer]:
    server = SmartTestServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replicas(redis_url: str, smart: SmartTestServer,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServiceProcess]]:
    port_a, port_b = free_port(), free_port()
    redirect = f"http://127.0.0.1:{port_a}/callback"  # one registered redirect for both
    register_client(smart, RSAKey.generate_key(2048), ECKey.generate_key("P-384"), [redirect])
    env = {"KETAMINE_ENVIRONMENT": "test", "KETAMINE_CLIENT_ID": CLIENT_ID,
           "KETAMINE_CLIENT_SECRET": CLIENT_SECRET, "KETAMINE_ALLOWED_ISSUERS": smart.fhir_base,
           "KETAMINE_REDIRECT_URI": redirect, "KETAMINE_COOKIE_SECURE": "false",
           "KETAMINE_REDIS_URL": redis_url, "AUTHLIB_INSECURE_TRANSPORT": "1",
           "KETAMINE_SESSION_KEYS": Fernet.generate_key().decode()}
    logs = tmp_path_factory.mktemp("replicas")
    started: list[ServiceProcess] = []
    try:
        for port, name in ((port_a, "a"), (port_b, "b")):
            started.append(ServiceProcess(env, port=port, log=Path(logs / f"{name}.log")).start())
        yield started
    finally:
        for replica in started:
            replica.stop()


@pytest.mark.slow
async def test_a_launch_begun_on_one_process_completes_on_the_other(
        replicas: list[ServiceProcess], smart: SmartTestServer) -> None:
    first, second = replicas
    assert first.process is not None and second.process is not None
    assert first.process.pid != second.process.pid
    async with (httpx.AsyncClient(base_url=first.base_url, timeout=30) as a,
                httpx.AsyncClient(base_url=second.base_url, timeout=30) as b,
                httpx.AsyncClient(timeout=30) as browser):
        cb, _ = await authorize(a, browser, "/launch",
                                {"iss": smart.fhir_base, "launch": smart.new_launch("pt-proc")})
        b.cookies.update(a.cookies)  # the same browser, balanced onto the other process
        done = await callback(b, cb)
        assert done.status_code == 303, done.text
        a.cookies.update(b.cookies)
        before = len(smart.state.fhir_requests)
        page = await a.get(done.headers["location"], headers={"Accept": "text/html"})
        assert page.status_code == 502  # the SMART server has no FHIR data behind it
        # ...but the first process read the patient of the launch the second one completed,
        # with the access token the second one obtained: the session came through Redis.
        reads = smart.state.fhir_requests[before:]
        assert any("pt-proc" in path and authorised for _, path, authorised in reads), reads
        replay = await callback(a, cb)  # the state was consumed once, for both processes
        assert replay.status_code == 400
    ready = [httpx.get(f"{r.base_url}/readyz", timeout=10).json() for r in replicas]
    assert all(r["checks"].get("store") == "ok" for r in ready)
