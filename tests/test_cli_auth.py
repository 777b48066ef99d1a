"""The command line authenticates to the EHR (issue 15): SMART Backend Services with the
configured client id and key, or a bearer token from KETAMINE_FHIR_TOKEN; without either, the
EHR's refusal is an error line (exit 1). The EHR is the tests' SMART server, whose FHIR proxy in
front of HAPI answers 401 to any request without a token it issued."""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import KeySet, RSAKey

from service.auth.backend import BackendServicesAuth
from service.cli import TOKEN_VARIABLE, main
from service.config import Settings
from tests.auth.conftest import CLIENT_ID  # importing it also allows authlib plain HTTP
from tests.auth.smart_grants import Client
from tests.auth.smart_server import SmartTestServer
from tests.builders import PatientBuilder

pytestmark = pytest.mark.integration

PATIENT = "cli-auth-1"


@pytest.fixture(scope="module")
def ehr(fhir_base_url: str, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[tuple[SmartTestServer, Path]]:
    p = PatientBuilder(PATIENT)
    p.condition("I71.4", "Abdominal aortic aneurysm")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"{fhir_base_url}/{r['resourceType']}/{r['id']}", "resource": r,
         "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in [p.patient(), *p.resources]]}
    assert httpx.post(fhir_base_url, json=bundle, timeout=60).status_code == 200
    key = RSAKey.generate_key(2048)
    key_file = tmp_path_factory.mktemp("cli-auth") / "client.pem"
    key_file.write_bytes(key.as_pem(private=True))
    server = SmartTestServer(fhir_upstream=fhir_base_url)
    server.register_client(Client(CLIENT_ID, [], jwks=KeySet(
        [RSAKey.import_key(key.as_dict(private=False))])))
    server.start()
    yield server, key_file
    server.stop()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KETAMINE_"):
            monkeypatch.delenv(name)


def screen(server: SmartTestServer, *extra: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["screen", "--fhir-base", server.fhir_base, "--patient", PATIENT,
                 "--as-of", "2026-06-15", "--format", "json", *extra], out=out)
    return code, out.getvalue()


def test_backend_services_with_the_configured_key(
        ehr: tuple[SmartTestServer, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    server, key_file = ehr
    monkeypatch.setenv("KETAMINE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("KETAMINE_PRIVATE_KEY_FILE", str(key_file))
    monkeypatch.setenv("KETAMINE_ALLOWED_ISSUERS", server.fhir_base)
    grants = len(server.state.token_requests)
    first = len(server.state.fhir_requests)
    code, out = screen(server, "--write-back")
    assert code == 0, capsys.readouterr().err
    assert json.loads(out)["verdict"] == "contraindicated"
    assert "wrote" in capsys.readouterr().err
    tokens = server.state.token_requests[grants:]
    assert [t["grant_type"] for t in tokens] == ["client_credentials"]  # one token, reused
    assert {"system/Patient.rs", "system/Observation.crs"} <= set(tokens[0]["scope"].split())
    sent = server.state.fhir_requests[first:]
    assert sent and all(ok for _, path, ok in sent if path != "metadata")
    assert ("POST", "", True) in sent  # the write-back transaction, with a token


def test_backend_services_go_only_to_an_allowed_issuer(
        ehr: tuple[SmartTestServer, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    server, key_file = ehr
    monkeypatch.setenv("KETAMINE_PRIVATE_KEY_FILE", str(key_file))
    grants = len(server.state.token_requests)
    code, out = screen(server)
    assert (code, out) == (2, "")
    assert "is not in KETAMINE_ALLOWED_ISSUERS" in capsys.readouterr().err
    assert len(server.state.token_requests) == grants


def test_a_bearer_token_from_the_environment(
        ehr: tuple[SmartTestServer, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    server, key_file = ehr
    issued = Settings(_env_file=None, client_id=CLIENT_ID,  # type: ignore[call-arg]
                      private_key_file=key_file)
    token = asyncio.run(BackendServicesAuth(issued, f"{server.base_url}/token").access_token())
    monkeypatch.setenv(TOKEN_VARIABLE, token)
    grants, first = len(server.state.token_requests), len(server.state.fhir_requests)
    code, out = screen(server)
    assert code == 0, capsys.readouterr().err
    assert json.loads(out)["patient"] == f"Patient/{PATIENT}"
    assert len(server.state.token_requests) == grants  # the token as given, none fetched
    assert all(ok for _, path, ok in server.state.fhir_requests[first:] if path != "metadata")
    assert token not in capsys.readouterr().err


def test_without_credentials_the_refusal_is_one_error_line(
        ehr: tuple[SmartTestServer, Path], capsys: pytest.CaptureFixture[str]) -> None:
    server, _ = ehr
    code, out = screen(server)
    lines = capsys.readouterr().err.splitlines()
    # The failed screen's audit record goes to stderr as well (stdout carries the results).
    [audit] = [json.loads(line) for line in lines if '"log":"audit"' in line]
    assert (audit["action"], audit["outcome"], audit["detail"]) == (
        "screen", "failure", "FhirAuthError")
    err = [line for line in lines if '"log":"audit"' not in line]
    assert (code, out) == (1, "")
    assert err[0].startswith("ketamine-screen: warning: no credentials (KETAMINE_FHIR_TOKEN")
    assert err[1].startswith("ketamine-screen: error: FHIR server refused")
    assert "(401)" in err[1] and len(err) == 2
