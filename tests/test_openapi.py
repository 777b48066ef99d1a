"""The committed OpenAPI document is the one the code generates."""

from __future__ import annotations

import json
from pathlib import Path

from service.openapi import openapi_document, openapi_text

COMMITTED = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def test_committed_openapi_is_current() -> None:
    assert COMMITTED.exists(), "openapi/openapi.json is missing: run `make openapi`"
    assert COMMITTED.read_text(encoding="utf-8") == openapi_text(), (
        "openapi/openapi.json is out of date with the code: run `make openapi` and commit it")


def test_documents_the_api() -> None:
    paths = openapi_document()["paths"]
    for path, method in [("/api/v1/screenings", "post"), ("/api/v1/screenings/$evaluate", "post"),
                         ("/api/v1/ruleset", "get"), ("/api/v1/sessions", "post"),
                         ("/cds-services", "get"), ("/cds-services/{service_id}", "post"),
                         ("/cds-services/{service_id}/feedback", "post")]:
        assert method in paths[path], (method, path)
    evaluate = paths["/api/v1/screenings/$evaluate"]["post"]
    assert "application/fhir+json" in evaluate["requestBody"]["content"]
    assert json.loads(openapi_text()) == openapi_document()
