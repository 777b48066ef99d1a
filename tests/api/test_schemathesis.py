"""Property-based tests of the REST and CDS Hooks API from its own OpenAPI document.

Schemathesis generates valid and invalid requests for each operation and calls the app
in-process (ASGI) with real credentials; no input may produce a 5xx. Operations that need no FHIR
server run as unit tests; ``POST /api/v1/screenings`` and ``/api/v1/sessions`` run against the HAPI
sandbox (integration). Figures are written to stderr at the end (``pytest -s``).
"""

from __future__ import annotations

import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from service.main import create_app
from tests.api.conftest import BOTH_SCOPES, build_settings
from tests.auth.smart_server import SmartTestServer
from tests.cds.conftest import mint_cds_jwt

UNIT_PATHS = r"^/(api/v1/ruleset|api/v1/screenings/\$evaluate|cds-services)"
SANDBOX_PATHS = r"^/api/v1/(screenings|sessions)$"
CALLS: Counter[str] = Counter()
STATUSES: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if CALLS:
        lines = [f"  {op}: {n} cases" for op, n in sorted(CALLS.items())]
        lines.append("  statuses: " + ", ".join(f"{k}x{v}" for k, v in sorted(STATUSES.items())))
        sys.stderr.write("\nschemathesis:\n" + "\n".join(lines) + "\n")


def _app(server: SmartTestServer, **overrides: Any) -> FastAPI:
    return create_app(build_settings(server, fhir_max_retries=0, **overrides))


@pytest.fixture(scope="module")
def unit_schema(token_server: SmartTestServer) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", _app(token_server)) \
        .include(path_regex=UNIT_PATHS)


@pytest.fixture(scope="module")
def sandbox_schema(token_server: SmartTestServer, fhir_base_url: str) -> Any:
    app = _app(token_server, allowed_issuers=[fhir_base_url], fhir_timeout_seconds=60)
    return schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=SANDBOX_PATHS)


def _headers(case: Any, server: SmartTestServer) -> dict[str, str]:
    path: str = case.operation.path
    if path.startswith("/cds-services/"):
        service = str((case.path_parameters or {}).get("service_id", ""))
        suffix = "/feedback" if path.endswith("/feedback") else ""
        token = mint_cds_jwt(server, service, aud=f"http://testserver/cds-services/{service}"
                             f"{suffix}", jti=uuid.uuid4().hex)
    else:
        token = server.mint_api_token(scope=BOTH_SCOPES)
    return {**(case.headers or {}), "Authorization": f"Bearer {token}"}


def _run(case: Any, server: SmartTestServer) -> None:
    response = case.call(headers=_headers(case, server))
    CALLS[f"{case.operation.method.upper()} {case.operation.path}"] += 1
    STATUSES[str(response.status_code)] += 1
    case.validate_response(response, checks=[not_a_server_error])


def _fuzz(schema: Any, server: SmartTestServer, max_examples: int) -> list[str]:
    """Positive and negative cases for every operation; the failures found, one per line."""
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in GenerationMode:
            @settings(deadline=None, max_examples=max_examples, derandomize=True,
                      database=None, suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                _run(case, server)

            try:
                run()
            except Unsatisfiable:
                continue  # nothing to vary (e.g. no parameters to make invalid)
            except Exception as exc:
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): "
                                f"{type(exc).__name__}: {str(exc)[:500]}")
    return failures


@pytest.mark.slow
def test_no_server_error_without_fhir(unit_schema: Any, token_server: SmartTestServer) -> None:
    failures = _fuzz(unit_schema, token_server, max_examples=60)
    assert not failures, "\n".join(failures)


@pytest.mark.integration
def test_no_server_error_against_the_sandbox(sandbox_schema: Any,
                                             token_server: SmartTestServer) -> None:
    failures = _fuzz(sandbox_schema, token_server, max_examples=20)
    assert not failures, "\n".join(failures)
