"""We stay on httpx, not httpx2 (issue 15): the guard that fails when authlib switches its
integration underneath us, and the proof that nothing prints a DeprecationWarning at start.

At the pinned versions authlib 1.9 prefers httpx2 and falls back to httpx with a warning, and
starlette's TestClient and schemathesis take either; respx (our fault injection) mocks httpx
only, so the service and its tests stay on httpx (``service.auth.httpx_pin``).
"""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client as AuthlibClient
from authlib.integrations.httpx_client import _compat

from service.auth.httpx_pin import AUTHLIB_HTTPX_FALLBACK, AsyncOAuth2Client


def test_authlib_runs_on_the_httpx_we_pin() -> None:
    assert importlib.util.find_spec("httpx2") is None, (
        "httpx2 is installed: authlib now uses it instead of httpx; move the service (and "
        "replace respx) or remove it")
    assert _compat.httpx2 is httpx
    assert AsyncOAuth2Client is AuthlibClient and issubclass(AsyncOAuth2Client, httpx.AsyncClient)


def test_the_silenced_warning_is_still_the_one_authlib_gives() -> None:
    """If authlib rewords or drops its fallback, the filter in httpx_pin silences nothing."""
    assert repr(AUTHLIB_HTTPX_FALLBACK) in inspect.getsource(_compat).replace('"', "'")


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-W", "error::DeprecationWarning", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_no_deprecation_warning_at_start() -> None:
    app = _python("-c", "from service.config import Settings; from service.main import "
                        "create_app; create_app(Settings(_env_file=None)); print('built')")
    assert (app.returncode, app.stdout, app.stderr) == (0, "built\n", "")
    cli = _python("-m", "service", "demo", "--format", "json")
    assert cli.returncode == 0 and cli.stderr == ""
    assert cli.stdout.count('"verdict"') == 7
