"""The HAPI sandbox for integration tests: ``FHIR_SANDBOX_URL`` if set, else started once.

One sandbox per test process (CPU is scarce): :func:`sandbox_url` starts it on first use and stops
it at exit, whichever test module asks first. When it cannot start, the test FAILS with the reason.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

MANAGE = Path(__file__).resolve().parents[1] / "sandbox" / "manage.py"

_state: dict[str, Any] = {}


def _manage() -> ModuleType:
    if not MANAGE.exists():
        pytest.fail(f"FHIR sandbox unavailable: {MANAGE} does not exist and FHIR_SANDBOX_URL is "
                    "not set", pytrace=False)
    spec = importlib.util.spec_from_file_location("sandbox_manage", MANAGE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("sandbox_manage", module)
    spec.loader.exec_module(module)
    return module


def sandbox_url() -> str:
    if "url" in _state:
        return str(_state["url"])
    if "error" in _state:
        pytest.fail(str(_state["error"]), pytrace=False)
    url = os.environ.get("FHIR_SANDBOX_URL")
    try:
        if not url:
            manage = _manage()
            manage.ensure_built()
            sandbox = manage.start()
            atexit.register(sandbox.stop)
            url = str(sandbox.base_url)
        response = httpx.get(url.rstrip("/") + "/metadata", timeout=60)
        response.raise_for_status()
    except pytest.fail.Exception:
        raise
    except Exception as exc:
        _state["error"] = f"FHIR sandbox unavailable ({url or 'not started'}): {exc!r}"
        pytest.fail(_state["error"], pytrace=False)
    _state["url"] = url.rstrip("/")
    return str(_state["url"])
