"""POST /api/v1/screenings/$evaluate: a Bundle in, the JSON contract out, no FHIR server."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources

import httpx
import pytest

from service.fhir.bundle import parse_bundle
from service.screening.engine import screen
from tests.api.conftest import assert_problem
from tests.builders import AS_OF, PatientBuilder, iso

URL = "/api/v1/screenings/$evaluate"
Auth = Callable[..., dict[str, str]]


DEMO_AS_OF = datetime(2026, 11, 27, tzinfo=UTC)
"""The date the demo patients are written for (``ketamine-screen demo``)."""


def _demo(name: str) -> bytes:
    return resources.files("service.demo").joinpath(name).read_bytes()


@pytest.mark.parametrize("name", ["01-suitable.json", "02-contraindicated.json",
                                  "03-needs-review.json", "04-insufficient-data.json"])
async def test_same_contract_as_the_engine(api: httpx.AsyncClient, auth: Auth,
                                           name: str) -> None:
    data = _demo(name)
    resp = await api.post(URL, content=data, params={"as_of": iso(DEMO_AS_OF)},
                          headers={**auth(), "Content-Type": "application/fhir+json"})
    assert resp.status_code == 200, resp.text
    expected = screen(parse_bundle(json.loads(data), name), DEMO_AS_OF).as_contract()
    assert resp.json() == expected
    assert resp.json()["verdict"] == name[3:-5]


async def test_aneurysm_bundle(api: httpx.AsyncClient, auth: Auth) -> None:
    patient = PatientBuilder("api-eval")
    condition = patient.condition("I71.4", "Abdominal aortic aneurysm")
    resp = await api.post(URL, json=patient.bundle(), params={"as_of": iso(AS_OF)},
                          headers=auth())
    body = resp.json()
    assert body["verdict"] == "contraindicated" and body["as_of"] == "2026-06-15T12:00:00Z"
    assert [f["evidence"] for f in body["findings"] if f["rule"] == "ci-aneurysm"] == \
        [[condition]]


@pytest.mark.parametrize(("content", "hint"), [
    (b"{not json", "not JSON"),
    (b"", "empty"),
    (b'{"resourceType": "Patient", "id": "1"}', "not a FHIR Bundle"),
    (b'{"resourceType": "Bundle", "entry": 5}', "not a list"),
    (b'{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Nope"}}]}',
     "no resource in the Bundle could be read"),
    (b"[1, 2]", "not a FHIR Bundle"),
    (b"9" * 5000, "not JSON"),
    (b"[" * 100_000, "not JSON"),
], ids=["garbage", "empty", "patient", "entry-not-list", "unknown-type", "array", "huge-int",
        "deep"])
async def test_bad_bundles_are_422_naming_the_problem(api: httpx.AsyncClient, auth: Auth,
                                                      content: bytes, hint: str) -> None:
    body = assert_problem(await api.post(URL, content=content, headers=auth()), 422)
    assert hint in body["detail"]


async def test_two_patients_need_a_choice(api: httpx.AsyncClient, auth: Auth) -> None:
    one, two = PatientBuilder("api-one"), PatientBuilder("api-two")
    two.condition("I71.4", "Abdominal aortic aneurysm")
    bundle = one.bundle()
    bundle["entry"] += two.bundle()["entry"]
    assert "2 patients" in assert_problem(await api.post(URL, json=bundle, headers=auth()),
                                          422)["detail"]
    resp = await api.post(URL, json=bundle, headers=auth(),
                          params={"patient": "api-two", "as_of": iso(AS_OF)})
    assert resp.json()["verdict"] == "contraindicated"


async def test_bad_query_and_no_token(api: httpx.AsyncClient, auth: Auth) -> None:
    bundle = PatientBuilder("api-q").bundle()
    body = assert_problem(await api.post(URL, json=bundle, params={"as_of": "soon"},
                                         headers=auth()), 422)
    assert body["errors"][0]["loc"] == ["query", "as_of"]
    assert_problem(await api.post(URL, json=bundle), 401)


async def test_request_id_is_echoed_or_made(api: httpx.AsyncClient, auth: Auth) -> None:
    resp = await api.post(URL, content=b"x", headers={**auth(), "X-Request-ID": "abc-12345678"})
    assert resp.headers["x-request-id"] == "abc-12345678"
    assert assert_problem(resp, 422)["request_id"] == "abc-12345678"
    resp = await api.post(URL, content=b"x", headers={**auth(), "X-Request-ID": "bad id\x01"})
    assert len(resp.headers["x-request-id"]) == 32
