"""The audit trail (issue 16): one record per access with who, which patient, what, when, the
outcome and the request id, in a sink of its own that the operational logs never see; and, when
configured, the same as FHIR AuditEvents on a real server (the HAPI sandbox)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.api.services import services_of
from service.cli import main as cli_main
from service.config import Settings
from service.main import create_app
from tests.api.conftest import APP_ORIGIN, UNREACHABLE_FHIR, seed
from tests.auth.smart_server import SmartTestServer
from tests.builders import PatientBuilder
from tests.cds.conftest import (  # noqa: F401 - cds_auth is a fixture
    ESKETAMINE,
    cds_auth,
    draft_order,
    hook_request,
    prefetch_for,
    recent_patient,
)

Auth = Callable[..., dict[str, str]]


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def audit_file(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture
async def audited(make_settings: Callable[..., Settings],
                  audit_file: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(audit_log=str(audit_file)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=APP_ORIGIN, timeout=60) as client:
        yield client
    await services_of(app).audit.aclose()


async def test_a_rest_screening_is_one_record(audited: httpx.AsyncClient, auth: Auth,
                                              audit_file: Path) -> None:
    resp = await audited.post("/api/v1/screenings", json={"patient": "Patient/p-audit"},
                              headers={**auth(client_id="batch-app"),
                                       "X-Request-ID": "audit-req-0001"})
    assert resp.status_code == 503  # the configured FHIR server is unreachable
    [record] = records(audit_file)
    at = record.pop("at")
    assert at.endswith("Z")
    assert record == {"log": "audit", "action": "screen", "outcome": "failure",
                      "who": "svc-caller (client batch-app)", "who_kind": "client",
                      "patient": "p-audit", "request_id": "audit-req-0001",
                      "route": "POST /api/v1/screenings", "status": 503,
                      "detail": "FhirUnavailable"}


async def test_a_failed_authentication_is_recorded(audited: httpx.AsyncClient, auth: Auth,
                                                   token_server: SmartTestServer,
                                                   audit_file: Path) -> None:
    """Issue 16: failed authentications were not logged."""
    expired = token_server.mint_api_token(expires_in=-600)
    answers = [await audited.get("/api/v1/whoami"),
               await audited.get("/api/v1/whoami", headers={"Authorization": f"Bearer {expired}"}),
               await audited.post("/cds-services/ketamine-order-sign", json={},
                                  headers={"Authorization": "Bearer forged"}),
               await audited.get("/app", params={"ctx": "guessed"})]
    assert [r.status_code for r in answers] == [401, 401, 401, 401]
    found = records(audit_file)
    assert [(r["action"], r["outcome"], r["route"], r["status"], r["who_kind"]) for r in found] \
        == [("authenticate", "failure", route, 401, "unknown") for route in (
            "GET /api/v1/whoami", "GET /api/v1/whoami", "POST /cds-services/{service_id}",
            "GET /app")]
    assert [r["request_id"] for r in found] == [a.headers["x-request-id"] for a in answers]
    # A caller who authenticated but lacks the scope is not a failed authentication:
    denied = await audited.post("/api/v1/sessions", json={}, headers=auth())
    assert denied.status_code == 403
    assert records(audit_file)[-1]["action"] == "session"


async def test_a_cds_call_names_the_client_the_user_and_the_patient(
        audited: httpx.AsyncClient, cds_auth: Any,  # noqa: F811 - the imported fixture
        token_server: SmartTestServer, audit_file: Path) -> None:
    patient = recent_patient("cds-audit")
    body = hook_request(patient.pid, [draft_order(patient.pid, ESKETAMINE)],
                        prefetch_for(patient))
    resp = await audited.post("/cds-services/ketamine-order-sign", json=body, headers=cds_auth())
    assert resp.status_code == 200, resp.text
    [record] = records(audit_file)
    assert (record["action"], record["outcome"], record["who"], record["who_kind"],
            record["patient"], record["on_behalf_of"]) == (
        "cds", "success", token_server.base_url, "client", "cds-audit", "Practitioner/example")


async def test_evaluate_records_the_bundles_patient(audited: httpx.AsyncClient, auth: Auth,
                                                    audit_file: Path) -> None:
    resp = await audited.post("/api/v1/screenings/$evaluate",
                              json=PatientBuilder("bundle-audit").bundle(), headers=auth())
    assert resp.status_code == 200, resp.text
    [record] = records(audit_file)
    assert (record["action"], record["patient"], record["outcome"]) == (
        "screen", "bundle-audit", "success")


async def test_one_record_per_access_and_none_for_health_or_static(
        audited: httpx.AsyncClient, auth: Auth, audit_file: Path) -> None:
    for _ in range(3):
        assert (await audited.get("/api/v1/ruleset", headers=auth())).status_code == 200
    for path in ("/healthz", "/readyz", "/cds-services", "/static/app.css", "/openapi.json",
                 "/nowhere"):
        await audited.get(path)
    assert [(r["action"], r["route"]) for r in records(audit_file)] == \
        [("api", "GET /api/v1/ruleset")] * 3


async def test_the_trail_stays_out_of_the_operational_logs(
        audited: httpx.AsyncClient, auth: Auth, audit_file: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """The audit sink is the one place a real patient id may be written; the logging tree's
    handlers (the operational logs) never receive an audit record."""
    caplog.set_level(logging.DEBUG)
    await audited.post("/api/v1/screenings", json={"patient": "p-private"}, headers=auth())
    assert records(audit_file)[0]["patient"] == "p-private"
    assert not [r for r in caplog.records if "audit" in r.name]
    assert '"log": "audit"' not in caplog.text and '"log":"audit"' not in caplog.text


def test_the_command_line_records_its_access(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A command line screen of a patient on a server is recorded too (stderr when the trail
    goes to stdout: stdout carries the results)."""
    audit = tmp_path / "cli-audit.jsonl"
    monkeypatch.setenv("KETAMINE_AUDIT_LOG", str(audit))
    monkeypatch.setenv("KETAMINE_FHIR_MAX_RETRIES", "0")
    from service.config import get_settings

    get_settings.cache_clear()
    try:
        code = cli_main(["screen", "--fhir-base", UNREACHABLE_FHIR, "--patient", "cli-p1"])
    finally:
        get_settings.cache_clear()
    assert code == 1
    [record] = records(audit)
    assert (record["action"], record["outcome"], record["patient"], record["who_kind"],
            record["detail"]) == ("screen", "failure", "cli-p1", "client", "FhirUnavailable")
    assert "command line" in record["who"]


@pytest.mark.integration
async def test_records_become_audit_events_on_a_fhir_server(
        make_settings: Callable[..., Settings], auth: Auth, fhir_base_url: str,
        tmp_path: Path) -> None:
    pid = f"audit-{uuid.uuid4().hex[:10]}"
    patient = PatientBuilder(pid)
    await seed(fhir_base_url, [patient.patient()])
    app = create_app(make_settings(audit_log=str(tmp_path / "a.jsonl"),
                                   audit_fhir_base=fhir_base_url))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=APP_ORIGIN,
                                 timeout=60) as client:
        ok = await client.post("/api/v1/screenings/$evaluate", json=patient.bundle(),
                               headers={**auth(), "X-Request-ID": f"req-{pid}"})
        denied = await client.get("/api/v1/whoami")
    assert (ok.status_code, denied.status_code) == (200, 401)
    trail = services_of(app).audit
    await trail.aclose()
    assert trail.forwarded == 2
    async with httpx.AsyncClient(timeout=60) as http:
        found = (await http.get(f"{fhir_base_url}/AuditEvent",
                                params={"entity": f"Patient/{pid}"})).json()
    [event] = [e["resource"] for e in found.get("entry", [])]
    assert event["action"] == "E" and event["outcome"] == "0"
    assert event["subtype"][0]["code"] == "screen"
    assert event["agent"][0]["who"]["display"] == "client svc-caller"
    assert event["agent"][0]["requestor"] is True
    assert {e["what"].get("reference") for e in event["entity"]} >= {f"Patient/{pid}"}
    ids = [e["what"]["identifier"]["value"] for e in event["entity"] if "identifier" in e["what"]]
    assert ids == [f"req-{pid}"]
