"""Property-based conformance of the REST and CDS Hooks API to its own OpenAPI document.

Schemathesis generates valid (positive) and invalid (negative) requests for each operation and
calls the app in-process (ASGI) with real credentials; every response must pass schemathesis's
default checks: no 5xx, documented status codes, content types and headers, response bodies
that fit their schemas, invalid data rejected, valid data accepted, authentication not ignored.

Operations that need no FHIR server run as a unit test. The launch routes are left out: they
are browser navigation whose success needs the EHR's authorization (tests/auth walks them).
``POST /api/v1/screenings`` and ``/api/v1/sessions`` run against the HAPI sandbox
(integration), and their positive cases name patients that are on it, so that the success
paths (200) are exercised and not only the refusals. Figures (cases, checks, failures, answers
by status) go to stderr at the end of the module (``pytest -s``).
"""

from __future__ import annotations

import re
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

from service.main import create_app
from tests.api.conftest import BOTH_SCOPES, build_settings, seed
from tests.auth.smart_server import SmartTestServer
from tests.builders import PatientBuilder
from tests.cds.conftest import mint_cds_jwt

UNIT_PATHS = (r"^/(api/v1/(ruleset|whoami|screenings/\$evaluate)|cds-services|healthz|readyz"
              r"|\.well-known/)")
SANDBOX_PATHS = r"^/api/v1/(screenings|sessions)$"
SANDBOX_PATIENTS = [f"st-{uuid.uuid4().hex[:8]}-{n}" for n in range(3)]

FIGURES: Counter[str] = Counter()
STATUSES: Counter[str] = Counter()
load_all_checks()
CHECK_COUNT = len(CHECKS.get_all())


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if FIGURES:
        twos = sum(n for status, n in STATUSES.items() if status.startswith("2"))
        lines = [f"  {key}: {n}" for key, n in sorted(FIGURES.items())]
        lines.append(f"  default checks per case: {CHECK_COUNT}; reached 2xx: {twos} of "
                     f"{sum(STATUSES.values())} cases")
        lines.append("  statuses: " + ", ".join(f"{k}x{v}" for k, v in sorted(STATUSES.items())))
        sys.stderr.write("\nschemathesis:\n" + "\n".join(lines) + "\n")


ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429"]
"""schemathesis's default answers to a schema-valid request (5xx is left out: never fine)."""
SEMANTIC = {
    "/api/v1/screenings/$evaluate": (["422"], "a Bundle can fit the schema and still hold no "
                                     "usable FHIR resource, or several patients and no ?patient="),
    "/cds-services/{service_id}": (["412", "422"], "the hook must be the service's own (422); "
                                   "without a full prefetch the records come from fhirServer, "
                                   "else 412 as CDS Hooks 2.0 asks"),
    "/api/v1/sessions": (["422"], "a session's times must be in order and its dose fit the "
                                  "route: checks across fields that JSON Schema cannot state"),
}
"""Where a schema-valid request may still be refused, and why: JSON Schema cannot say what
FHIR R4 validity is. Every other operation must accept every positive case."""
CONFIG = SchemathesisConfig.from_dict({"operations": [
    {"include-path": path,
     "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED + statuses}}}
    for path, (statuses, _) in SEMANTIC.items()]})


def _app(server: SmartTestServer, **overrides: Any) -> FastAPI:
    return create_app(build_settings(server, fhir_max_retries=0, **overrides))


@pytest.fixture(scope="module")
def unit_schema(token_server: SmartTestServer) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", _app(token_server), config=CONFIG)


@pytest.fixture(scope="module")
async def sandbox_patients(fhir_base_url: str) -> list[str]:
    """Patients on the sandbox for the positive cases: one contraindicated, one with an
    interaction, one with nothing on record."""
    resources: list[dict[str, Any]] = []
    for n, pid in enumerate(SANDBOX_PATIENTS):
        p = PatientBuilder(pid)
        if n == 0:
            p.condition("I71.4", "Abdominal aortic aneurysm")
        elif n == 1:
            p.medication("6470", "lorazepam")
        resources += [p.patient(), *p.resources]
    await seed(fhir_base_url, resources)
    return SANDBOX_PATIENTS


@pytest.fixture(scope="module")
def sandbox_schema(token_server: SmartTestServer, fhir_base_url: str,
                   sandbox_patients: list[str]) -> Any:
    app = _app(token_server, allowed_issuers=[fhir_base_url], fhir_timeout_seconds=60)
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)


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


def _on_the_sandbox(case: Any, patient: str) -> Any:
    """A positive case about a patient who is on the sandbox, on the sandbox."""
    body = case.body if isinstance(case.body, dict) else None
    if body is None:
        return case
    body.pop("fhir_base", None)
    if case.operation.path == "/api/v1/screenings":
        body["patient"] = patient
    else:
        body["patient_id"] = patient
        body["practitioner_id"] = None
    return case


def _run(case: Any, server: SmartTestServer) -> None:
    FIGURES[f"cases {case.operation.method.upper()} {case.operation.path}"] += 1
    response = case.call(headers=_headers(case, server))
    STATUSES[str(response.status_code)] += 1
    FIGURES["checks run"] += CHECK_COUNT
    case.validate_response(response, headers=_headers(case, server))


def _fuzz(schema: Any, paths: str, server: SmartTestServer, max_examples: int,
          patients: list[str] | None = None) -> list[str]:
    """Positive and negative cases for every operation whose path matches ``paths``; the
    failures found, one per line. (``schema.include`` is not used: with a config it includes
    everything, schemathesis 4.32.)"""
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not re.search(paths, operation.path):
            continue
        for mode in GenerationMode:
            strategy = operation.as_strategy(generation_mode=mode)
            if patients and mode is GenerationMode.POSITIVE:
                strategy = st.builds(_on_the_sandbox, strategy, st.sampled_from(patients))

            @settings(deadline=None, max_examples=max_examples, derandomize=True,
                      database=None, suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def run(case: Any) -> None:
                _run(case, server)

            try:
                run()
            except Unsatisfiable:
                continue  # nothing to vary (e.g. no parameters to make invalid)
            except Exception as exc:
                FIGURES["failures"] += 1
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): "
                                f"{type(exc).__name__}: {str(exc)[:1500]}")
    return failures


@pytest.mark.slow
def test_conformance_without_fhir(unit_schema: Any, token_server: SmartTestServer) -> None:
    failures = _fuzz(unit_schema, UNIT_PATHS, token_server, max_examples=60)
    assert not failures, "\n".join(failures)


def _documented_examples(schema: Any, server: SmartTestServer, patients: list[str]) -> int:
    """The documented request example of each sandbox operation, for each patient on it (the
    generated sessions rarely pass the checks across fields); each must answer 200."""
    answered = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if not re.search(SANDBOX_PATHS, operation.path):
            continue
        example = operation.definition.raw["requestBody"]["content"]["application/json"][
            "example"]
        for n, patient in enumerate(patients):
            body = _on_the_sandbox(operation.Case(body=dict(example),
                                                  media_type="application/json"), patient).body
            if "session_id" in body:
                body["session_id"] = f"S-{patient}-{n}"
            case = operation.Case(body=body, media_type="application/json")
            _run(case, server)
            answered += 1
    return answered


@pytest.mark.integration
def test_conformance_against_the_sandbox(sandbox_schema: Any, token_server: SmartTestServer,
                                         sandbox_patients: list[str]) -> None:
    failures = _fuzz(sandbox_schema, SANDBOX_PATHS, token_server, max_examples=20,
                     patients=sandbox_patients)
    assert not failures, "\n".join(failures)
    before = STATUSES["200"]
    cases = _documented_examples(sandbox_schema, token_server, sandbox_patients)
    assert STATUSES["200"] - before == cases == 2 * len(sandbox_patients)
