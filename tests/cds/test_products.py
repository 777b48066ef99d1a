"""CDS Hooks and the two products: the order names the product screened, eligibility is an
information card when not documented, the prefetch brings past medications of every status, and
card texts quote the configured thresholds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from service.config import Settings
from service.fhir.prefetch import draft_orders
from service.screening.orders import ordered_products
from service.screening.ruleset import load_ruleset
from service.screening.schema import AllergyRule
from tests.api.conftest import _client
from tests.builders import ATC, RXNORM, PatientBuilder, concept
from tests.cds.conftest import (
    ESKETAMINE,
    MDD,
    SERTRALINE,
    draft_order,
    hook_request,
    prefetch_for,
    recent_patient,
    trd_documented,
)

SIGN = "/cds-services/ketamine-order-sign"
KETAMINE = concept(RXNORM, "6130", "ketamine")


async def _cards(api: httpx.AsyncClient, cds_auth: Any,
                 body: dict[str, Any]) -> list[dict[str, Any]]:
    resp = await api.post(SIGN, json=body, headers=cds_auth())
    assert resp.status_code == 200, resp.text
    cards: list[dict[str, Any]] = resp.json()["cards"]
    return cards


def _rules(cards: list[dict[str, Any]]) -> dict[str, str]:
    """appContext (the rule) -> indicator."""
    return {c["links"][0]["appContext"]: c["indicator"] for c in cards}


def _orders(*drugs: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": draft_order("p", d, f"o{i}")} for i, d in enumerate(drugs)]}


@pytest.mark.parametrize(("drugs", "products"), [
    ([ESKETAMINE], ("esketamine",)),
    ([concept(RXNORM, "2201625", "Spravato")], ("esketamine",)),
    ([concept(ATC, "N06AX27")], ("esketamine",)),
    ([concept(ATC, "N01AX14")], ("esketamine",)),
    ([concept(text="Spravato 56 mg dose kit")], ("esketamine",)),
    ([KETAMINE], ("ketamine",)),
    ([concept(ATC, "N01AX03")], ("ketamine",)),
    ([concept(text="Ketalar 50 mg/mL injection")], ("ketamine",)),
    ([concept(text="ketamine hydrochloride 10 MG/ML Injectable Solution")], ("ketamine",)),
    # A code decides before a display that names the other product.
    ([concept(ATC, "N06AX27", text="ketamine")], ("esketamine",)),
    # Both, or neither clearly: both are screened.
    ([KETAMINE, ESKETAMINE], ("ketamine", "esketamine")),
    ([concept(text="ketamine or esketamine, per protocol")], ("ketamine", "esketamine")),
    ([concept(text="arketamine")], ("ketamine", "esketamine")),
    ([SERTRALINE], ()),
], ids=["rxnorm-esketamine", "rxnorm-spravato", "atc-n06ax27", "atc-n01ax14", "name-spravato",
        "rxnorm-ketamine", "atc-ketamine", "name-ketalar", "name-ketamine-scd", "code-decides",
        "two-orders", "both-named", "arketamine", "not-ketamine"])
def test_ordered_products(drugs: list[dict[str, Any]], products: tuple[str, ...]) -> None:
    assert ordered_products(draft_orders(_orders(*drugs), None, "p")) == products


def _stroke_patient(pid: str) -> tuple[PatientBuilder, str]:
    """A prior stroke: contraindicates ketamine, a precaution for esketamine."""
    patient = recent_patient(pid)
    return patient, patient.condition("I63.9", "Cerebral infarction, unspecified")


@pytest.mark.parametrize(("drug", "rules", "prefix", "screened"), [
    (ESKETAMINE, {"pr-prior-stroke": "warning"}, "Review before esketamine: ",
     "esketamine (Spravato)"),
    (KETAMINE, {"ci-prior-stroke": "critical"}, "Ketamine contraindicated: ", "ketamine"),
    (concept(text="arketamine"), {"ci-prior-stroke": "critical", "pr-prior-stroke": "warning"},
     "Ketamine/esketamine contraindicated: ", "ketamine and esketamine (Spravato)"),
], ids=["esketamine-order", "ketamine-order", "unclear-order"])
async def test_the_order_names_the_product_screened(
        api: httpx.AsyncClient, cds_auth: Any, drug: dict[str, Any], rules: dict[str, str],
        prefix: str, screened: str) -> None:
    patient, stroke = _stroke_patient("cds-product")
    body = hook_request(patient.pid, [draft_order(patient.pid, drug)], prefetch_for(patient))
    cards = await _cards(api, cds_auth, body)
    assert _rules(cards) == {**rules, "eligibility": "info"}
    first = cards[0]
    assert first["summary"].startswith(prefix) and stroke in first["detail"]
    assert f"Screened for {screened}, the product(s) of the order." in first["detail"]
    if first["indicator"] == "critical":
        issue = first["suggestions"][0]["actions"][0]["resource"]
        assert issue["implicated"] == [{"reference": stroke}]
    who = {"esketamine (Spravato)": "Esketamine", "ketamine": "Ketamine"}.get(
        screened, "Ketamine/esketamine")
    assert cards[-1]["summary"].startswith(f"{who}: treatment resistance not documented")


async def test_eligibility_card_is_information_and_changes_no_indicator(
        api: httpx.AsyncClient, cds_auth: Any) -> None:
    documented = recent_patient("cds-trd")
    documented.condition("I71.4", "Abdominal aortic aneurysm")
    records = trd_documented(documented)
    body = hook_request(documented.pid, [draft_order(documented.pid, ESKETAMINE)],
                        prefetch_for(documented))
    with_trd = await _cards(api, cds_auth, body)
    # Past records of every status, and dispenses, came through the prefetch: TRD documented,
    # so no eligibility card at all.
    assert _rules(with_trd) == {"ci-aneurysm": "critical"}

    short = recent_patient("cds-short")
    short.condition("I71.4", "Abdominal aortic aneurysm")
    short.condition(*MDD, onset="2025-06-01")
    trial = short.medication("36437", "sertraline 50 MG Oral Tablet", status="stopped",
                             start="2025-07-01", period_end="2025-07-29")
    body = hook_request(short.pid, [draft_order(short.pid, ESKETAMINE)], prefetch_for(short))
    cards = await _cards(api, cds_auth, body)
    assert _rules(cards) == {"ci-aneurysm": "critical", "eligibility": "info"}
    assert [c["indicator"] for c in cards if c["links"][0]["appContext"] != "eligibility"] == \
        [c["indicator"] for c in with_trd]
    card = cards[-1]
    assert card["source"]["topic"] == {
        "system": "http://ketamine-screen.example.org/fhir/CodeSystem/screening",
        "code": "eligibility",
        "display": "Eligibility: treatment-resistant depression from the record"}
    assert "suggestions" not in card and "overrideReasons" not in card
    shown = card["detail"].replace("\\", "")  # Markdown escapes, as a reader sees it
    assert "fewer than two trials: 0 of at least 42 days (none); too short: sertraline 28 days" \
        in shown
    assert "Dose adequacy was not assessed." in card["detail"]
    assert "not eligible" not in card["detail"].lower()
    assert trial not in with_trd[0]["detail"] and records


async def test_dispenses_key_may_be_missing(api: httpx.AsyncClient, cds_auth: Any) -> None:
    patient = recent_patient("cds-no-dispense")
    patient.condition("I71.4", "Abdominal aortic aneurysm")
    prefetch = prefetch_for(patient)
    del prefetch["medicationDispenses"]
    body = hook_request(patient.pid, [draft_order(patient.pid, ESKETAMINE)], prefetch)
    assert _rules(await _cards(api, cds_auth, body)) == {"ci-aneurysm": "critical",
                                                         "eligibility": "info"}


@pytest.fixture
async def strict_api(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(bp_systolic_uncontrolled=170, bp_diastolic_uncontrolled=95,
                             bp_systolic_elevated=130, bp_diastolic_elevated=80,
                             bp_window_days=14)
    async for client in _client(settings):
        yield client


async def test_cards_and_issues_quote_the_configured_thresholds(
        strict_api: httpx.AsyncClient, cds_auth: Any) -> None:
    patient = recent_patient("cds-limits", bp=(175, 90))
    body = hook_request(patient.pid, [draft_order(patient.pid, ESKETAMINE)],
                        prefetch_for(patient))
    cards = await _cards(strict_api, cds_auth, body)
    (card,) = [c for c in cards if c["links"][0]["appContext"] == "ci-bp-uncontrolled"]
    assert "(above 170/95 mmHg)" in card["summary"]
    assert ("Blood pressure limits in force: uncontrolled above 170/95 mmHg, elevated above "
            "130/80 mmHg (65 and older: 150/90 mmHg); the latest reading of the last 14 days "
            "counts.") in card["detail"]
    # The source line quotes the label itself (its 180/100); every other line follows the
    # configuration.
    said = card["detail"].split("\nSource: ", 1)[0]
    assert "180/100" not in said and "140/90" not in said
    issue = card["suggestions"][0]["actions"][0]["resource"]
    assert "above 170/95 mmHg" in issue["detail"] and "180/100" not in issue["detail"]


def test_order_products_name_only_identifiers_the_rule_lists() -> None:
    allergy = load_ruleset("v2")[0].allergy.model_dump()
    with pytest.raises(ValidationError, match="does not list: N01AX99"):
        AllergyRule.model_validate({**allergy, "order_products": {"N01AX99": "ketamine"}})
    assert AllergyRule.model_validate({**allergy, "order_products": {}}).order_products == {}
