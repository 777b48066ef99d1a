"""Fixtures shared by every test folder."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.fhir.sandbox_fixture import sandbox_url


@pytest.fixture(scope="session")
def fhir_base_url() -> str:
    """Base URL of a HAPI FHIR R4 sandbox: ``FHIR_SANDBOX_URL``, else one started for the run."""
    return sandbox_url()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throw-away Debian redis-server on a free loopback port, for the shared-state tests."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: `make test` installs Debian's redis-server",
                    pytrace=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)
