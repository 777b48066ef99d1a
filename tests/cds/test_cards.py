"""CDS Hooks service calls with prefetch: which orders fire, and the cards they get."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from service.screening.ruleset import load_ruleset
from tests.api.conftest import assert_problem
from tests.builders import ATC, ICD, RXNORM, SNOMED, concept
from tests.cds.conftest import (
    ESKETAMINE,
    SERTRALINE,
    draft_order,
    hook_request,
    prefetch_for,
    recent_patient,
)

SIGN = "/cds-services/ketamine-order-sign"
SELECT = "/cds-services/ketamine-order-select"


async def _cards(api: httpx.AsyncClient, cds_auth: Any, body: dict[str, Any],
                 url: str = SIGN) -> list[dict[str, Any]]:
    resp = await api.post(url, json=body, headers=cds_auth(url.rsplit("/", 1)[1]))
    assert resp.status_code == 200, resp.text
    cards: list[dict[str, Any]] = resp.json()["cards"]
    for card in cards:
        assert len(card["summary"]) < 140
        assert card["indicator"] in ("info", "warning", "critical")
        assert card["source"]["label"]
        assert card["uuid"]
    return cards


def _by(cards: list[dict[str, Any]], indicator: str) -> list[dict[str, Any]]:
    return [c for c in cards if c["indicator"] == indicator]


async def test_aneurysm_gives_one_critical_card_citing_the_condition(
        api: httpx.AsyncClient, cds_auth: Any) -> None:
    patient = recent_patient("cds-aneurysm")
    condition = patient.condition("I71.4", "Abdominal aortic aneurysm, without rupture")
    body = hook_request(patient.pid, [draft_order(patient.pid, ESKETAMINE)],
                        prefetch_for(patient))
    cards = await _cards(api, cds_auth, body)
    critical = _by(cards, "critical")
    assert len(critical) == 1, cards
    card = critical[0]
    assert condition in card["detail"] and "aneurysm" in card["summary"].lower()
    assert "SPRAVATO-PI Contraindications" in card["source"]["label"]
    assert card["source"]["topic"]["code"] == "contraindication"
    assert card["links"] == [{"label": "Open the ketamine screening app", "type": "smart",
                              "url": "http://testserver/launch", "appContext": "ci-aneurysm"}]
    (suggestion,) = card["suggestions"]
    (action,) = suggestion["actions"]
    assert card["selectionBehavior"] == "at-most-one" and action["type"] == "create"
    issue = action["resource"]
    assert issue["resourceType"] == "DetectedIssue" and issue["status"] == "final"
    assert issue["patient"] == {"reference": f"Patient/{patient.pid}"}
    assert issue["implicated"] == [{"reference": condition}]
    assert "evidence" not in issue and issue["author"] == {"display": "ketamine-screen"}
    reasons = card["overrideReasons"]
    assert {r["code"] for r in reasons} >= {"benefit-outweighs-risk", "already-monitored",
                                            "not-applicable"}
    assert all(r["display"] and r["system"] for r in reasons)
    assert cards[0] is not None and cards[0]["indicator"] == "critical"  # most urgent first


async def test_lorazepam_gives_a_warning(api: httpx.AsyncClient, cds_auth: Any) -> None:
    patient = recent_patient("cds-lorazepam")
    med = patient.medication(text="lorazepam 1 mg tablet")
    body = hook_request(patient.pid, [draft_order(patient.pid, ESKETAMINE)],
                        prefetch_for(patient))
    cards = await _cards(api, cds_auth, body)
    assert not _by(cards, "critical")
    (warning,) = _by(cards, "warning")
    assert med in warning["detail"] and "interaction" in warning["summary"].lower()
    assert warning["suggestions"][0]["actions"][0]["resource"]["code"]["coding"][0]["code"] \
        == "DRG"


async def test_missing_blood_pressure_gives_info(api: httpx.AsyncClient, cds_auth: Any) -> None:
    patient = recent_patient("cds-no-bp", bp=None)
    body = hook_request(patient.pid, [draft_order(patient.pid, ESKETAMINE)],
                        prefetch_for(patient))
    cards = await _cards(api, cds_auth, body)
    missing_rule = load_ruleset()[0].blood_pressure.missing.id
    info = [c for c in _by(cards, "info") if f"`{missing_rule}`" in c["detail"]]
    assert len(info) == 1 and not _by(cards, "critical") and not _by(cards, "warning")
    assert "suggestions" not in info[0] and "overrideReasons" not in info[0]


async def test_normal_patient_gets_no_alert(api: httpx.AsyncClient, cds_auth: Any) -> None:
    # Eligibility (issue 11): with no depression on record, one information card says that
    # treatment resistance is not documented; nothing else, and no alert.
    patient = recent_patient("cds-normal")
    body = hook_request(patient.pid, [draft_order(patient.pid, ESKETAMINE)],
                        prefetch_for(patient))
    (card,) = await _cards(api, cds_auth, body)
    assert card["indicator"] == "info" and card["source"]["topic"]["code"] == "eligibility"


async def test_sertraline_order_gets_no_cards(api: httpx.AsyncClient, cds_auth: Any) -> None:
    patient = recent_patient("cds-sertraline")
    patient.condition("I71.4", "Abdominal aortic aneurysm")
    body = hook_request(patient.pid, [draft_order(patient.pid, SERTRALINE)],
                        prefetch_for(patient))
    assert await _cards(api, cds_auth, body) == []


@pytest.mark.parametrize("drug", [
    concept(RXNORM, "6130", "ketamine"),
    concept(RXNORM, "2201625", "Spravato"),
    concept(ATC, "N01AX03"),
    concept(ATC, "N06AX27"),
    concept(text="Ketalar 50 mg/mL injection"),
    concept(text="Spravato 56 mg dose kit"),
], ids=["rxnorm-ketamine", "rxnorm-spravato", "atc-ketamine", "atc-esketamine", "name-ketalar",
        "name-spravato"])
async def test_every_ketamine_coding_fires(api: httpx.AsyncClient, cds_auth: Any,
                                           drug: dict[str, Any]) -> None:
    patient = recent_patient("cds-codes")
    patient.condition("67362008", "Aortic aneurysm", system=SNOMED)
    body = hook_request(patient.pid, [draft_order(patient.pid, drug)], prefetch_for(patient))
    assert len(_by(await _cards(api, cds_auth, body), "critical")) == 1


async def test_contained_medication_and_order_select_selections(
        api: httpx.AsyncClient, cds_auth: Any) -> None:
    patient = recent_patient("cds-select")
    patient.condition("I71.4", "Abdominal aortic aneurysm")
    ketamine = draft_order(patient.pid, {}, rid="keta")
    del ketamine["medicationCodeableConcept"]
    ketamine["contained"] = [{"resourceType": "Medication", "id": "m",
                              "code": concept(RXNORM, "6130", "ketamine")}]
    ketamine["medicationReference"] = {"reference": "#m"}
    other = draft_order(patient.pid, SERTRALINE, rid="sert")
    body = hook_request(patient.pid, [ketamine, other], prefetch_for(patient),
                        hook="order-select")
    body["context"]["selections"] = ["MedicationRequest/sert"]
    assert await _cards(api, cds_auth, body, SELECT) == []
    body["context"]["selections"] = ["MedicationRequest/keta"]
    assert len(_by(await _cards(api, cds_auth, body, SELECT), "critical")) == 1


async def test_long_and_hostile_text_stays_short_and_inert(api: httpx.AsyncClient,
                                                           cds_auth: Any) -> None:
    patient = recent_patient("cds-long")
    text = ("Aneurysm of the thoracic aorta " + "with extensive documentation " * 12
            + "[click here](https://evil.example) <script>alert(1)</script>")
    patient.condition(text=text, system=ICD)
    body = hook_request(patient.pid, [draft_order(patient.pid, ESKETAMINE)],
                        prefetch_for(patient))
    (card,) = _by(await _cards(api, cds_auth, body), "critical")
    assert len(card["summary"]) < 140 and card["summary"].endswith("…")
    assert "[click here](https" not in card["detail"] and "<script>" not in card["detail"]
    assert r"\[click here\]" in card["detail"]


async def test_wrong_hook_unknown_service_and_incomplete_prefetch(
        api: httpx.AsyncClient, cds_auth: Any) -> None:
    patient = recent_patient("cds-errors")
    order = draft_order(patient.pid, ESKETAMINE)
    body = hook_request(patient.pid, [order], prefetch_for(patient), hook="order-select")
    body_problem = assert_problem(await api.post(SIGN, json=body, headers=cds_auth()), 422)
    assert "order-sign" in body_problem["detail"]
    resp = await api.post("/cds-services/nope", json=body, headers=cds_auth("nope"))
    assert_problem(resp, 404)
    partial = prefetch_for(patient)
    del partial["conditions"]
    resp = await api.post(SIGN, json=hook_request(patient.pid, [order], partial),
                          headers=cds_auth())
    assert "fhirServer" in assert_problem(resp, 412)["detail"]


async def test_feedback_logs_outcome_and_card_only(api: httpx.AsyncClient, cds_auth: Any,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    feedback = {"feedback": [{
        "card": "9368d37b-283f-44a0-93ea-547cebab93ed", "outcome": "overridden",
        "overrideReason": {"reason": {"code": "not-applicable", "system": "urn:x"},
                           "userComment": "Jane Doe says aneurysm was ruled out"},
        "outcomeTimestamp": "2026-11-27T00:00:00Z"}]}
    with caplog.at_level(logging.INFO, logger="service.api.routes.cds"):
        resp = await api.post(f"{SIGN}/feedback", json=feedback,
                              headers=cds_auth("ketamine-order-sign/feedback"))
    assert resp.status_code == 200 and resp.json() == {"received": 1}
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "9368d37b-283f-44a0-93ea-547cebab93ed" in logged and "overridden" in logged
    assert "Jane" not in logged and "ruled out" not in logged
    bad = await api.post(f"{SIGN}/feedback", json={"feedback": [{"card": "x"}]},
                         headers=cds_auth("ketamine-order-sign/feedback"))
    assert_problem(bad, 422)
