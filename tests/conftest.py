"""Fixtures shared by every test folder, and the tiers of the suite.

A test that uses ``fhir_base_url`` is marked ``integration`` (it needs the HAPI sandbox, so Java),
one that uses ``redis_url`` is marked ``redis``: the markers follow the fixtures, so no test can
forget its own and ``make test-unit`` (no Java, no Redis, no browser) deselects them all. Tests in
the server-starting tiers get a longer pytest-timeout than the unit tier's.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator

import pytest

from service.fhir.codesystems import use_canonical_base
from tests.fhir.sandbox_fixture import sandbox_url

FIXTURE_MARKERS = {"fhir_base_url": "integration", "redis_url": "redis"}
SERVER_TIERS = ("integration", "browser", "redis", "slow")
SERVER_TIER_TIMEOUT = 600
"""Seconds; the first integration test also waits for the sandbox to boot."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, marker in FIXTURE_MARKERS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)
        if item.get_closest_marker("timeout") is None and any(
                item.get_closest_marker(tier) for tier in SERVER_TIERS):
            item.add_marker(pytest.mark.timeout(SERVER_TIER_TIMEOUT))


@pytest.fixture(autouse=True)
def _settings_canonical_base() -> Iterator[None]:
    """Each test starts on the settings' canonical base: ``create_app`` applies its settings'
    base process-wide, so an app a test built with another one must not outlive the test."""
    use_canonical_base(None)
    yield
    use_canonical_base(None)


@pytest.fixture(scope="session")
def fhir_base_url() -> str:
    """Base URL of a HAPI FHIR R4 sandbox: ``FHIR_SANDBOX_URL``, else one started for the run."""
    return sandbox_url()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throw-away Debian redis-server on a free loopback port, for the shared-state tests.

    Ready when it says so on its log (stdout), not after a guessed wait.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: `make test` installs Debian's redis-server",
                    pytrace=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--loglevel", "notice"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Ready to accept connections" in line:
            break
    else:
        pytest.fail(f"redis-server exited with {proc.wait()} before it was ready", pytrace=False)
    yield f"redis://127.0.0.1:{port}/0"  # it logs a few lines more: far less than a pipe holds
    proc.terminate()
    proc.wait(timeout=10)
    proc.stdout.close()
