"""GET /api/v1/ruleset: every rule the engine applies, with its source and its codes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from service.config import Settings
from service.screening.ruleset import load_ruleset
from tests.api.conftest import _client, assert_problem


async def test_needs_the_screen_scope(api: httpx.AsyncClient,
                                      auth: Callable[..., dict[str, str]]) -> None:
    assert_problem(await api.get("/api/v1/ruleset"), 401)
    assert_problem(await api.get("/api/v1/ruleset", headers=auth(scope="ketamine.write")), 403)


async def test_every_rule_with_source_and_codes(api: httpx.AsyncClient,
                                                auth: Callable[..., dict[str, str]]) -> None:
    resp = await api.get("/api/v1/ruleset", headers=auth())
    assert resp.status_code == 200
    body: dict[str, Any] = resp.json()
    ruleset, _ = load_ruleset()
    assert body["version"] == ruleset.version and "SPRAVATO-PI" in body["sources"]
    listed = {r["id"]: r for r in body["rules"]} | {c["id"]: c for c in body["interactions"]}
    assert set(listed) == {rule_id for rule_id, _ in ruleset.cited()}
    for rule_id, source in ruleset.cited():
        assert listed[rule_id]["source"] == source
    aneurysm = listed["ci-aneurysm"]
    assert aneurysm["kind"] == "contraindication" and aneurysm["scope"] == "history"
    assert "I71" in aneurysm["codes"]["icd10cm"]
    assert {"code": "67362008", "display": "Aortic aneurysm", "verify": False} \
        in aneurysm["codes"]["snomed"]
    allergy = listed[ruleset.allergy.id]["codes"]
    assert {"6130", "2201623", "2201625"} <= {c["code"] for c in allergy["rxnorm"]}
    assert {"N01AX03", "N01AX14", "N06AX27"} <= set(allergy["atc"])
    assert "Spravato" in allergy["names"]
    benzos = next(c for c in body["interactions"] if "enzodiazepine" in c["name"])
    assert benzos["severity"] == "major" and "N05BA" in benzos["atc"]
    lorazepam = next(m for m in benzos["members"] if m["name"] == "lorazepam")
    assert "Ativan" in lorazepam["brands"]


async def test_thresholds_are_the_configured_ones(make_settings: Callable[..., Settings],
                                                  auth: Callable[..., dict[str, str]]) -> None:
    settings = make_settings(bp_systolic_elevated=135, bp_window_days=14)
    async for client in _client(settings):
        body = (await client.get("/api/v1/ruleset", headers=auth())).json()
    assert body["blood_pressure"]["systolic_elevated"] == 135
    assert body["blood_pressure"]["window_days"] == 14
    elevated = next(r for r in body["rules"] if r["id"] == load_ruleset()[0].blood_pressure
                    .elevated.id)
    assert elevated["thresholds"]["systolic_above"] == 135
