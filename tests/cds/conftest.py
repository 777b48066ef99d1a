"""CDS Hooks test fixtures: the app, a CDS client that signs its JWTs, and prefetch builders.

The CDS client is the auth tests' SMART test server: its origin is the JWT issuer and its
``/jwks`` (RS384 key) is the ``jku``, so signatures are checked against a real JWK Set over HTTP.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.api.conftest import (  # noqa: F401 - fixtures shared with the API tests
    api,
    auth,
    make_settings,
    settings,
    token_server,
)
from tests.auth.smart_server import SmartTestServer
from tests.builders import AS_OF, RXNORM, PatientBuilder, concept

APP_ORIGIN = "http://testserver"
SHIFT_DAYS = (datetime.now(UTC) - AS_OF).total_seconds() / 86400
"""The builders date records from a fixed AS_OF; CDS screens at "now", so records are moved."""
OTHER_OBS = {"29463-7", "82810-3", "8867-4"}


def mint_cds_jwt(server: SmartTestServer, service: str, *, key: RSAKey | None = None,
                 header: dict[str, Any] | None = None, aud: str | list[str] | None = None,
                 alg: str = "RS384", **claims: Any) -> str:
    key = key or server.id_token_key
    now = int(time.time())
    body = {"iss": server.base_url, "aud": aud or f"{APP_ORIGIN}/cds-services/{service}",
            "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex, **claims}
    body = {k: v for k, v in body.items() if v is not None}
    head = {"alg": alg, "typ": "JWT", "kid": key.kid, "jku": f"{server.base_url}/jwks",
            **(header or {})}
    head = {k: v for k, v in head.items() if v is not None}
    return jwt.encode(head, body, key, algorithms=[alg])


@pytest.fixture
def cds_auth(token_server: SmartTestServer) -> Any:  # noqa: F811 - the imported fixture
    def headers(service: str = "ketamine-order-sign", **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_cds_jwt(token_server, service, **kwargs)}"}

    return headers


def recent_patient(pid: str, *, bp: tuple[float, float] | None = (122, 76)) -> PatientBuilder:
    """A patient whose blood pressure (3 days ago) and weight count at today's date."""
    patient = PatientBuilder(pid, normal_vitals=False)
    if bp is not None:
        patient.bp(*bp, days_ago=3 - SHIFT_DAYS, rid=f"{pid}-bp")
    patient.weight(72, rid=f"{pid}-wt")
    patient.phq9(12, days_ago=3 - SHIFT_DAYS, rid=f"{pid}-phq9")
    return patient


def _searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]}


def prefetch_for(patient: PatientBuilder) -> dict[str, Any]:
    """What a CDS client sends for our prefetch templates."""
    def of(kind: str) -> list[dict[str, Any]]:
        return [r for r in patient.resources if r["resourceType"] == kind]

    def obs(codes: set[str] | None) -> list[dict[str, Any]]:
        return [r for r in of("Observation")
                if (r["code"]["coding"][0]["code"] in OTHER_OBS) == (codes is OTHER_OBS)]

    statements = _searchset(of("MedicationStatement"))
    statements["entry"] += [{"resource": m, "search": {"mode": "include"}}
                            for m in of("Medication")]
    return {"patient": patient.patient(), "conditions": _searchset(of("Condition")),
            "medicationStatements": statements,
            "medicationRequests": _searchset(of("MedicationRequest")),
            "medicationDispenses": _searchset(of("MedicationDispense")),
            "allergies": _searchset(of("AllergyIntolerance")),
            "bloodPressure": _searchset(obs(None)), "observations": _searchset(obs(OTHER_OBS))}


def draft_order(pid: str, drug: dict[str, Any], rid: str = "draft-1") -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": rid, "status": "draft",
            "intent": "order", "subject": {"reference": f"Patient/{pid}"},
            "medicationCodeableConcept": drug}


ESKETAMINE = concept(RXNORM, "2201623", "esketamine 28 MG nasal spray")
MDD = ("F33.1", "Major depressive disorder, recurrent, moderate")
SERTRALINE = concept(RXNORM, "36437", "sertraline")


def hook_request(pid: str, orders: list[dict[str, Any]], prefetch: dict[str, Any] | None, *,
                 hook: str = "order-sign", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": hook, "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": pid,
                    "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                    "entry": [{"resource": o} for o in orders]}},
        **extra,
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def trd_documented(patient: PatientBuilder) -> list[str]:
    """Depression since mid-2025 and two past trials of two classes: sertraline by a completed
    statement (91 days), venlafaxine by two dispenses (60 days of supply)."""
    patient.condition(*MDD, onset="2025-06-01")
    sertraline = patient.medication("36437", "sertraline 50 MG Oral Tablet", status="completed",
                                    start="2025-07-01", period_end="2025-09-30")
    first = patient.dispense("39786", "venlafaxine 75 MG Oral Capsule",
                             handed_over="2025-10-15", days_supply=30)
    second = patient.dispense("39786", "venlafaxine 75 MG Oral Capsule",
                              handed_over="2025-11-14", days_supply=30)
    return [sertraline, first, second]
