"""The order in the launch's context (a MedicationRequest in ``fhirContext``): the screening page
names it and shows the verdict of its product first, marked. The EHR is mocked (respx): a
Patient and two ketamine orders, everything else empty."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import respx

from service.api.services import services_of
from service.auth.session import SmartSession, session_key
from service.main import create_app
from service.render.html import ProductVerdict, ordered_first
from service.render.texts import VERDICTS
from tests.ui.conftest import demo_settings

EHR = "https://ehr.test/fhir"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _order(oid: str, code: str, text: str) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": oid, "status": "active",
            "intent": "order", "subject": {"reference": "Patient/p1"},
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}],
                                          "text": text}}


ORDERS = [_order("mr-esk", "2201623", "esketamine 28 MG nasal spray"),
          _order("mr-ket", "6130", "ketamine")]


def _ehr(request: httpx.Request) -> httpx.Response:
    path = request.url.path.removeprefix("/fhir/")
    if path == "Patient/p1":
        return httpx.Response(200, json={"resourceType": "Patient", "id": "p1",
                                         "birthDate": "1980-01-01"})
    if path == "metadata":
        return httpx.Response(404)
    entries = [{"resource": o, "search": {"mode": "match"}} for o in ORDERS
               if path == "MedicationRequest"]
    return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset",
                                     "entry": entries})


async def _page(monkeypatch: pytest.MonkeyPatch, fhir_context: list[Any]) -> str:
    monkeypatch.delenv("KETAMINE_DEMO", raising=False)
    app = create_app(demo_settings(allowed_issuers=[EHR]))
    browser, handle, now = "B" * 43, "launch-1", time.time()
    session = SmartSession.from_token(EHR, "https://ehr.test/token", {
        "access_token": "clinician-token", "expires_in": 3600, "scope": "launch patient/*.rs",
        "patient": "p1", "fhirContext": fhir_context}, fhir_user=None, sub=None)
    session.issued_at = now
    await services_of(app).store.put(session_key(browser, handle), session.to_json(), 3600)
    with respx.mock() as mock:
        mock.route(host="ehr.test").mock(side_effect=_ehr)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver",
                                     cookies={"ketamine-sid": browser}) as client:
            page = await client.get("/app", params={"ctx": handle})
    assert page.status_code == 200, page.text
    return page.text


def _order_of_verdicts(html: str) -> list[str]:
    pair = html.split('class="verdict-pair"', 1)[1].split("</div>", 1)[0]
    return sorted((p for p in ("ketamine", "esketamine") if f'id="verdict-{p}"' in pair),
                  key=lambda p: pair.index(f'id="verdict-{p}"'))


@pytest.mark.parametrize(("order", "first"), [("mr-esk", "esketamine"), ("mr-ket", "ketamine")])
async def test_the_ordered_products_verdict_comes_first_and_is_marked(
        monkeypatch: pytest.MonkeyPatch, order: str, first: str) -> None:
    html = await _page(monkeypatch, [{"reference": f"MedicationRequest/{order}"}])
    assert ('<p class="order-in-context" id="order-in-context">Screening for the order in '
            f"context: MedicationRequest/{order}</p>") in html
    assert _order_of_verdicts(html)[0] == first
    assert html.count("verdict-ordered-tag") == 1
    marked = html.split(" verdict-ordered", 1)[1]
    assert marked.index(f'id="verdict-{first}"') < marked.index("</section>")


async def test_without_an_order_in_context_the_page_says_nothing_of_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    html = await _page(monkeypatch, ["Encounter/e1"])
    assert "order-in-context" not in html and "verdict-ordered" not in html
    assert _order_of_verdicts(html) == ["ketamine", "esketamine"]


async def test_an_order_not_among_the_records_read_is_named_but_favours_no_product(
        monkeypatch: pytest.MonkeyPatch) -> None:
    html = await _page(monkeypatch, ["MedicationRequest/elsewhere"])
    assert "Screening for the order in context: MedicationRequest/elsewhere" in html
    assert "verdict-ordered" not in html
    assert _order_of_verdicts(html) == ["ketamine", "esketamine"]


def test_ordered_first_leaves_an_order_for_both_products_alone() -> None:
    verdicts = [ProductVerdict("ketamine", "Ketamine", VERDICTS["suitable"]),
                ProductVerdict("esketamine", "Esketamine", VERDICTS["suitable"])]
    assert ordered_first(verdicts, ("ketamine", "esketamine")) == verdicts
    assert ordered_first(verdicts, ()) == verdicts
    assert [(v.product, v.ordered) for v in ordered_first(verdicts, ("esketamine",))] == [
        ("esketamine", True), ("ketamine", False)]
