"""The thin vertical slice over HTTP: load a patient into the sandbox, screen it with the CLI,
write the result back, and read the screening Observation back from the server."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest

from service.cli import main
from service.fhir.codesystems import CS_SCREENING
from tests.builders import PatientBuilder

pytestmark = pytest.mark.integration


def _load(base: str, p: PatientBuilder) -> None:
    entries = [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
               for r in [p.patient(), *p.resources]]
    response = httpx.post(base, json={"resourceType": "Bundle", "type": "transaction",
                                      "entry": entries}, timeout=60)
    assert response.status_code == 200, response.text


def _screenings(base: str, pid: str) -> list[dict[str, Any]]:
    found = httpx.get(f"{base}/Observation", params={
        "patient": pid, "code": f"{CS_SCREENING}|screening-result"}, timeout=30).json()
    return [e["resource"] for e in found.get("entry", [])]


def test_screen_over_http_write_back_and_read_back(fhir_base_url: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    p = PatientBuilder("slice-1")
    aneurysm = p.condition("I71.4", "Abdominal aortic aneurysm, without rupture")
    lorazepam = p.medication("6470", "lorazepam 1 MG Oral Tablet")
    _load(fhir_base_url, p)

    args = ["screen", "--fhir-base", fhir_base_url, "--patient", "slice-1",
            "--as-of", "2026-06-15T12:00:00Z", "--format", "json", "--write-back"]
    out = io.StringIO()
    assert main(args, out=out) == 0
    contract = json.loads(out.getvalue())
    assert contract["verdict"] == "contraindicated"
    cited = {ref for f in contract["findings"] for ref in f["evidence"]}
    assert {aneurysm, lorazepam} <= cited
    assert "wrote" in capsys.readouterr().err

    written = _screenings(fhir_base_url, "slice-1")
    assert len(written) == 1
    observation = written[0]
    assert observation["status"] == "final"
    assert observation["valueCodeableConcept"]["coding"][0]["code"] == "contraindicated"
    assert observation["effectiveDateTime"].startswith("2026-06-15T12:00:00")

    # The same screen written again is recognised, not duplicated.
    assert main(args, out=io.StringIO()) == 0
    assert len(_screenings(fhir_base_url, "slice-1")) == 1


def test_unknown_patient_is_a_clear_error(fhir_base_url: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["screen", "--fhir-base", fhir_base_url, "--patient", "no-such-patient"],
                out=io.StringIO())
    err = capsys.readouterr().err
    assert code == 1
    assert "patient not found: Patient/no-such-patient" in err
    assert "Traceback" not in err


def test_publish_codesystems_is_idempotent(fhir_base_url: str) -> None:
    first, second = io.StringIO(), io.StringIO()
    assert main(["publish-codesystems", "--fhir-base", fhir_base_url], out=first) == 0
    assert main(["publish-codesystems", "--fhir-base", fhir_base_url], out=second) == 0
    assert first.getvalue() == second.getvalue()
    assert first.getvalue().count("CodeSystem/") == 4
