"""SMART Backend Services inside a scope-enforcing EHR (issue 14): the REST API screens, writes
back and documents a session over the test EHR's enforcing proxy in front of the HAPI sandbox.

The proxy's log of (type, interaction) checks says what the backend used; the test demands it is
covered by what the app asks for (service.auth.scopes.backend_scopes), names what is asked for
and not used here, and shows a withheld write scope refusing the whole write-back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import ECKey, RSAKey

from service.auth.scopes import SCOPE_SCREEN, SCOPE_WRITE, backend_scopes
from service.config import Settings
from service.fhir.codesystems import identifier_system
from service.main import create_app
from tests.auth.conftest import APP_ORIGIN, register_client
from tests.auth.smart_scopes import granted_permissions
from tests.auth.smart_server import SmartTestServer
from tests.builders import AS_OF, PatientBuilder, iso
from tests.render.test_session import session_body
from tests.ui.fhir_seed import count, put_resources

pytestmark = pytest.mark.integration
Used = set[tuple[str, str]]

UNUSED: dict[tuple[str, str], str] = {
    **{(rtype, "r"): "asked with s for Bulk $export, which needs read on each exported type; "
                     "a population run is not exercised here"
       for rtype in ("Condition", "MedicationStatement", "MedicationRequest", "MedicationDispense",
                     "AllergyIntolerance", "Observation")},
    ("Patient", "s"): "a population run without $export pages Patient?_count= (not run here)",
    ("Medication", "s"): "the Medication?_id= search replaces _include where a server lists no "
                         "_include (HAPI lists it)",
}


def asked(scope: str) -> Used:
    return {(rtype, letter) for rtype, letters in granted_permissions(scope.split()).items()
            for letter in letters}


@pytest.fixture(scope="module")
def ehr(fhir_base_url: str, client_rsa_key: RSAKey,
        client_ec_key: ECKey) -> Iterator[SmartTestServer]:
    server = SmartTestServer(fhir_upstream=fhir_base_url).start()
    register_client(server, client_rsa_key, client_ec_key, [f"{APP_ORIGIN}/callback"])
    yield server
    server.stop()


def _seed(fhir_base_url: str) -> tuple[str, str]:
    """A patient with an aneurysm (a finding to write) and a referenced Medication; a doctor."""
    tag = uuid.uuid4().hex[:10]
    patient = PatientBuilder(f"bk-{tag}")
    patient.condition("I71.4", "Abdominal aortic aneurysm")
    patient.medication("2670", "codeine", request=True, form="referenced")
    resources = [patient.patient(), {"resourceType": "Practitioner", "id": f"bk-dr-{tag}"},
                 *patient.resources]
    resources.sort(key=lambda r: r["resourceType"] not in ("Patient", "Practitioner",
                                                           "Medication"))
    put_resources(fhir_base_url, resources)
    return patient.pid, f"bk-dr-{tag}"


def _app(make_settings: Callable[..., Settings], ehr: SmartTestServer,
         key_files: dict[str, Path]) -> httpx.AsyncClient:
    settings = make_settings(ehr, client_secret=None, private_key_file=key_files["RS384"],
                             fhir_max_retries=0)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings)),
                             base_url=APP_ORIGIN, timeout=60)


def _bearer(ehr: SmartTestServer, scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ehr.mint_api_token(scope=scope)}"}


async def test_the_backend_uses_what_it_asks_for(
        ehr: SmartTestServer, fhir_base_url: str, key_files: dict[str, Path],
        make_settings: Callable[..., Settings]) -> None:
    pid, dr = _seed(fhir_base_url)
    mark = len(ehr.state.scope_checks)
    async with _app(make_settings, ehr, key_files) as api:
        body = {"patient": pid, "as_of": iso(AS_OF)}
        screened = await api.post("/api/v1/screenings", json=body,
                                  headers=_bearer(ehr, SCOPE_SCREEN))
        assert screened.status_code == 200, screened.text
        assert screened.json()["verdict"] == "contraindicated"
        written = await api.post("/api/v1/screenings", json={**body, "write_back": True},
                                 headers=_bearer(ehr, f"{SCOPE_SCREEN} {SCOPE_WRITE}"))
        assert written.status_code == 200, written.text
        session = await api.post("/api/v1/sessions", headers=_bearer(ehr, SCOPE_WRITE), json=(
            session_body(patient_id=pid, practitioner_id=dr, session_id=f"S-{pid}")))
        assert session.status_code == 200, session.text
    checks = ehr.state.scope_checks[mark:]
    assert all(ok for _, _, ok in checks), checks
    used = {(t, i) for t, i, _ in checks}
    requested = asked(backend_scopes(write=True))
    assert sorted(used - requested) == [], "used but not asked for"
    assert sorted(requested - used) == sorted(UNUSED), sorted(requested - used)
    assert {("Task", "c"), ("DetectedIssue", "c"), ("Provenance", "c"), ("Medication", "r"),
            ("Observation", "c")} <= used


async def test_a_withheld_backend_write_scope_refuses_the_whole_write_back(
        ehr: SmartTestServer, fhir_base_url: str, key_files: dict[str, Path],
        make_settings: Callable[..., Settings]) -> None:
    pid, _ = _seed(fhir_base_url)
    subject = f"Patient/{pid}"

    def on_server() -> tuple[int, int]:
        return (count(fhir_base_url, "DetectedIssue", patient=subject),
                count(fhir_base_url, "Observation", patient=subject,
                      identifier=f"{identifier_system('screening')}|"))

    before = on_server()
    ehr.state.withhold_scopes = {"system/DetectedIssue.c"}
    try:
        async with _app(make_settings, ehr, key_files) as api:
            refused = await api.post(
                "/api/v1/screenings", json={"patient": pid, "as_of": iso(AS_OF),
                                            "write_back": True},
                headers=_bearer(ehr, f"{SCOPE_SCREEN} {SCOPE_WRITE}"))
    finally:
        ehr.state.withhold_scopes = set()
    assert refused.status_code == 502, refused.text
    problem = refused.json()
    assert problem["type"] == "urn:ketamine-screen:problem:fhir-forbidden"
    assert "scope system/DetectedIssue.c is required for POST DetectedIssue" in problem["detail"]
    assert "Nothing was written: a FHIR transaction is all or nothing." in problem["detail"]
    assert "grant system/DetectedIssue.c to this app" in problem["detail"]
    assert on_server() == before == (0, 0)  # the Observation was refused with the DetectedIssue
