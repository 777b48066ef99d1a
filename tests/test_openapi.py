"""The committed OpenAPI document is the one the code generates."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

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


# -- A contract worth reading (issue 15) ---------------------------------------------------

DOC = openapi_document()
OPERATIONS = [(path, method, op) for path, item in DOC["paths"].items()
              for method, op in item.items()]
PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the document's components, for validating an example on its own."""
    return {**schema, "components": DOC["components"]}


def _ids() -> list[str]:
    return [f"{method.upper()} {path}" for path, method, _ in OPERATIONS]


def test_every_operation_has_a_stable_explicit_id_and_a_description() -> None:
    ids = [op["operationId"] for _, _, op in OPERATIONS]
    assert len(ids) == len(set(ids))
    for path, method, op in OPERATIONS:
        # FastAPI's generated ids are snake_case with the path and method appended.
        assert re.fullmatch(r"[a-z][A-Za-z]+", op["operationId"]), (path, op["operationId"])
        assert len(op.get("description", "")) > 40, (method, path)
        assert op.get("summary"), (method, path)


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=_ids())
def test_every_error_answer_is_a_problem(path: str, method: str, op: dict[str, Any]) -> None:
    errors = {code: answer for code, answer in op["responses"].items() if code[0] in "45"}
    assert "500" in errors
    for code, answer in errors.items():
        content = answer["content"]
        if path == "/readyz" and code == "503":
            assert content["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ReadyOut"}
            continue
        assert content["application/problem+json"]["schema"] == PROBLEM, (code, method, path)
        assert set(content) <= {"application/problem+json", "text/html"}, (code, path)
        assert answer["description"] != "Validation Error"


def test_the_problem_schema_is_rfc_9457_with_the_request_id() -> None:
    problem = DOC["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])
    assert "request_id" in problem["properties"]
    assert "HTTPValidationError" not in DOC["components"]["schemas"]
    assert "HTTPValidationError" not in json.dumps(DOC)


def test_security_schemes_and_what_each_operation_needs() -> None:
    schemes = DOC["components"]["securitySchemes"]
    assert schemes["apiToken"]["type"] == "oauth2"
    assert set(schemes["apiToken"]["flows"]["clientCredentials"]["scopes"]) == {
        "ketamine.screen", "ketamine.write"}
    assert (schemes["cdsJwt"]["scheme"], schemes["cdsJwt"]["bearerFormat"]) == ("bearer", "JWT")
    needs = {(method.upper(), path): op.get("security") for path, method, op in OPERATIONS}
    assert needs[("POST", "/api/v1/sessions")] == [{"apiToken": ["ketamine.write"]}]
    assert needs[("POST", "/api/v1/screenings")] == [{"apiToken": ["ketamine.screen"]}]
    assert needs[("POST", "/cds-services/{service_id}")] == [{"cdsJwt": []}]
    assert needs[("GET", "/cds-services")] is None and needs[("GET", "/healthz")] is None
    for (_, path), security in needs.items():
        if path.startswith("/api/"):
            assert security and "apiToken" in security[0], path


def _examples(op: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    found = []
    for media in op.get("requestBody", {}).get("content", {}).values():
        if "example" in media:
            found.append(("request", media["example"], media["schema"]))
    for code, answer in op["responses"].items():
        for media in answer.get("content", {}).values():
            if "example" in media:
                found.append((code, media["example"], media.get("schema", {})))
        for header in answer.get("headers", {}).values():
            if "example" in header:
                found.append((code, header["example"], header["schema"]))
    return found


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=_ids())
def test_every_operation_has_examples_that_fit_its_schemas(path: str, method: str,
                                                           op: dict[str, Any]) -> None:
    examples = _examples(op)
    assert examples, (method, path)
    for where, example, schema in examples:
        errors = list(jsonschema_rs.validator_for(_resolve(schema)).iter_errors(example))
        assert not errors, (method, path, where, [str(e) for e in errors[:3]])
