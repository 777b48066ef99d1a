"""The screening routes' ``product`` and ``ruleset``: both ways, and the 422 naming the allowed
values before anything is read (no FHIR server is reachable here: a read would be a 503)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from service.screening.engine import PRODUCT_CHOICES, RULESETS
from tests.api.conftest import assert_problem
from tests.builders import AS_OF, PatientBuilder, iso

EVALUATE = "/api/v1/screenings/$evaluate"
SCREEN = "/api/v1/screenings"
Auth = Callable[..., dict[str, str]]


def _stroke() -> tuple[PatientBuilder, str]:
    """A prior stroke: a contraindication for ketamine, a precaution for esketamine."""
    patient = PatientBuilder("api-stroke")
    return patient, patient.condition("I63.9", "Cerebral infarction, unspecified")


@pytest.mark.parametrize(("product", "products", "verdicts", "verdict"), [
    ("ketamine", ["ketamine"], {"ketamine": "contraindicated"}, "contraindicated"),
    ("esketamine", ["esketamine"], {"esketamine": "needs-review"}, "needs-review"),
    ("both", ["ketamine", "esketamine"],
     {"ketamine": "contraindicated", "esketamine": "needs-review"}, "contraindicated"),
])
async def test_product_decides_the_verdicts(api: httpx.AsyncClient, auth: Auth, product: str,
                                            products: list[str], verdicts: dict[str, str],
                                            verdict: str) -> None:
    patient, stroke = _stroke()
    resp = await api.post(EVALUATE, json=patient.bundle(), headers=auth(),
                          params={"as_of": iso(AS_OF), "product": product})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["products"], body["verdicts"], body["verdict"]) == (products, verdicts, verdict)
    rules = {f["rule"]: f["products"] for f in body["findings"] if stroke in f["evidence"]}
    expected = {"ci-prior-stroke": ["ketamine"], "pr-prior-stroke": ["esketamine"]}
    assert rules == {rule: p for rule, p in expected.items() if p[0] in products}


async def test_default_is_both_and_v1_is_loadable(api: httpx.AsyncClient, auth: Auth) -> None:
    patient, _ = _stroke()
    default = await api.post(EVALUATE, json=patient.bundle(), headers=auth(),
                             params={"as_of": iso(AS_OF)})
    assert default.json()["products"] == ["ketamine", "esketamine"]
    assert default.json()["ruleset"] == "v2"
    v1 = await api.post(EVALUATE, json=patient.bundle(), headers=auth(),
                        params={"as_of": iso(AS_OF), "ruleset": "v1"})
    assert v1.status_code == 200, v1.text
    assert v1.json()["ruleset"] == "v1" and v1.json()["eligibility"] is None


@pytest.mark.parametrize(("params", "field", "allowed"), [
    ({"product": "arketamine"}, "product", PRODUCT_CHOICES),
    ({"product": ""}, "product", PRODUCT_CHOICES),
    ({"ruleset": "v3"}, "ruleset", tuple(RULESETS)),
])
async def test_unknown_choice_on_evaluate_is_422_naming_the_allowed(
        api: httpx.AsyncClient, auth: Auth, params: dict[str, str], field: str,
        allowed: tuple[str, ...]) -> None:
    patient, _ = _stroke()
    body = assert_problem(await api.post(EVALUATE, json=patient.bundle(), headers=auth(),
                                         params=params), 422)
    assert body["errors"][0]["loc"] == ["query", field]
    assert f"allowed: {', '.join(allowed)}" in body["detail"]


@pytest.mark.parametrize(("extra", "field", "allowed"), [
    ({"product": "Spravato"}, "product", PRODUCT_CHOICES),
    ({"product": "both", "ruleset": "2"}, "ruleset", tuple(RULESETS)),
])
async def test_unknown_choice_on_screen_is_422_before_any_read_or_write(
        api: httpx.AsyncClient, auth: Auth, extra: dict[str, Any], field: str,
        allowed: tuple[str, ...]) -> None:
    # The test settings' FHIR server is unreachable: a read would answer 503, so a 422 here
    # proves the choice was refused before anything was read, let alone written.
    body = assert_problem(await api.post(SCREEN, json={"patient": "1", "write_back": True,
                                                       **extra},
                                         headers=auth(scope="ketamine.screen ketamine.write")),
                          422)
    assert body["errors"][0]["loc"] == ["body", field]
    assert f"allowed: {', '.join(allowed)}" in body["detail"]
    unreachable = await api.post(SCREEN, json={"patient": "1", "product": "esketamine"},
                                 headers=auth())
    assert_problem(unreachable, 503)


async def test_openapi_names_the_choices(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    request = schema["components"]["schemas"]["ScreeningRequest"]["properties"]
    assert request["product"]["enum"] == list(PRODUCT_CHOICES)
    assert request["product"]["default"] == "both"
    params = {p["name"]: p for p in schema["paths"][EVALUATE]["post"]["parameters"]}
    assert params["product"]["schema"]["enum"] == list(PRODUCT_CHOICES)
    assert params["ruleset"]["schema"]["anyOf"][0]["enum"] == list(RULESETS)
    out = schema["components"]["schemas"]
    assert out["ScreeningOut"]["properties"]["eligibility"]["anyOf"][0]["$ref"].endswith(
        "/EligibilityOut")
    assert set(out["TrialOut"]["required"]) == {"ingredient", "class", "start", "days",
                                                "evidence", "basis"}
