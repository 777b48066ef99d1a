"""The OpenAPI contract: what FastAPI generates from the routes, made into a contract worth reading.

Routes give each operation its ``operation_id``, summary, description (the handler's docstring)
and examples. This module adds what holds for every operation, so that no route can forget it:

* every error response (4xx, 5xx) is an RFC 9457 ``application/problem+json`` :class:`Problem`
  with the request id (https://www.rfc-editor.org/rfc/rfc9457#section-3); FastAPI's own 422
  schema (``HTTPValidationError``) is replaced, since our 422 is a problem too;
* the CDS security scheme next to the REST API's ``apiToken`` (OAuth 2.0 client credentials
  from the API's issuer; :mod:`service.api.deps` declares it with each operation's scope):
  ``cdsJwt`` (the CDS client's signed JWT, CDS Hooks 2.0
  "Trusting CDS Clients": https://cds-hooks.hl7.org/2.0/#trusting-cds-clients);
* the answers every operation can give: 500 (quote the request id), 401/403 where a token is
  needed, 422 where there is input.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from service.api.middleware import PROBLEM_JSON
from service.errors import PROBLEM_TYPE_BASE

__all__ = ["DESCRIPTION", "Problem", "ProblemItem", "contract_openapi", "install_contract"]

DESCRIPTION = """\
Screens a patient for ketamine / esketamine (Spravato) therapy against the product labels, from
the EHR's FHIR R4 server or a Bundle sent in the request; documents treatment sessions; answers
CDS Hooks 2.0 when ketamine or esketamine is ordered.

**Authentication.** The REST API (`/api/v1/...`) takes a bearer JWT from the issuer configured as
`KETAMINE_API_ISSUER` (scopes `ketamine.screen`, `ketamine.write`); CDS services take the CDS
client's signed JWT. Tokens are never accepted in a URL.

**Errors** are RFC 9457 `application/problem+json` with a `request_id` (also sent as
`X-Request-ID`): quote it when reporting a problem. The service reads the EHR with SMART Backend
Services; a FHIR server failure is a 502, 503 or 504 problem saying which."""

TAGS = [
    {"name": "api", "description": "The REST API: screen, evaluate a Bundle, the ruleset, "
                                   "treatment sessions (bearer JWT with scopes)."},
    {"name": "cds-hooks", "description": "CDS Hooks 2.0 services for ketamine and esketamine "
                                         "orders (https://cds-hooks.hl7.org/2.0/)."},
    {"name": "launch", "description": "SMART App Launch (EHR and standalone) and this client's "
                                      "public keys."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


class ProblemItem(BaseModel):
    loc: list[str] = Field(description="where: body, query or path, then the field")
    msg: str = Field(description="what is wrong (never the value sent)")
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, with the id of the request (an extension member)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "type": f"{PROBLEM_TYPE_BASE}fhir-not-found", "title": "Not found on the FHIR server",
        "status": 404, "detail": "patient not found: Patient/123",
        "request_id": "4f1c2b9a8d7e4f60a1b2c3d4e5f60718"}]})

    type: str = Field(description=f"a URN under {PROBLEM_TYPE_BASE}")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    request_id: str | None = Field(None, description="the X-Request-ID of this request")
    errors: list[ProblemItem] | None = Field(None, description="422: each invalid input")


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_REASONS = {
    400: "Bad request: a body that is not JSON, or a token in the URL",
    401: "Missing or invalid token",
    403: "The token lacks the scope this operation needs",
    404: "Not found",
    412: "Precondition failed",
    413: "Request body too large",
    422: "Invalid input",
    429: "Too many requests",
    500: "The service failed; quote the request id",
    502: "The FHIR server failed us",
    503: "Unavailable (the FHIR server, or shared state)",
    504: "The FHIR server did not answer in time",
}


def _problem(description: str, page: bool) -> dict[str, Any]:
    content: dict[str, Any] = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}
    if page:  # a clinician's browser gets a plain page instead
        content["text/html"] = {"schema": {"type": "string"}}
    return {"description": description, "content": content}


def _keeps_own_body(answer: dict[str, Any]) -> bool:
    """An error answer the route documents with a model of its own (``/readyz``'s 503)."""
    schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "") if isinstance(schema, dict) else ""
    return bool(ref) and not ref.endswith("/HTTPValidationError")


def _operation(op: dict[str, Any], path: str) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    has_input = bool(op.get("parameters") or op.get("requestBody"))
    scope = any("apiToken" in requirement for requirement in op.get("security", []))
    wanted = {500}
    if has_input:
        wanted.add(422)
    if op.get("requestBody"):
        wanted.add(400)  # a body that is not JSON at all
    if scope or path.startswith("/cds-services/"):
        wanted.add(401)
    if scope:
        wanted.add(403)
    for status in sorted(wanted):
        responses.setdefault(str(status), {"description": _REASONS[status]})
    page = path in ("/launch", "/launch/standalone", "/callback")
    for code, answer in responses.items():
        if code[:1] not in ("4", "5") or _keeps_own_body(answer):
            continue
        text = answer.get("description") or _REASONS.get(int(code), "Error")
        if text == "Validation Error":  # FastAPI's words for its own 422
            text = _REASONS[422]
        responses[code] = _problem(text, page) | {
            k: v for k, v in answer.items() if k not in ("content", "description")}
    if path.startswith("/cds-services/"):
        op["security"] = [{"cdsJwt": []}]


def contract_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of ``app`` (see the module docstring)."""
    doc = get_openapi(title=app.title, version=app.version, summary=app.summary,
                      description=DESCRIPTION, routes=app.routes, tags=TAGS)
    for path, item in doc.get("paths", {}).items():
        for op in item.values():
            _operation(op, path)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas["ProblemItem"] = schemas["Problem"].pop("$defs")["ProblemItem"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components.setdefault("securitySchemes", {})["cdsJwt"] = {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "The CDS client's JWT (RS384/ES384), signed with a key from its jku; "
                           "iss one of KETAMINE_CDS_ALLOWED_ISSUERS, aud this service's URL.",
    }
    return doc


def install_contract(app: FastAPI) -> None:
    """``app.openapi()`` (and ``/openapi.json``) serve :func:`contract_openapi`, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = contract_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
