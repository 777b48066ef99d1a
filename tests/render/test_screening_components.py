"""The screening Observation carries both verdicts, the ruleset, the thresholds used and
eligibility as components coded in the screening CodeSystem; the product set asked and the
thresholds are part of the idempotency key. Unit, then read back from the HAPI sandbox."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from service.fhir.bundle import parse_bundle
from service.fhir.client import FhirClient
from service.fhir.codesystems import CS_SCREENING, display, load_codesystems
from service.render.screening_components import threshold_code
from service.render.writeback import build_screening_write
from service.screening.engine import BloodPressurePolicy, screen
from service.screening.model import ScreeningResult
from service.workflow import write_screening
from tests.api.conftest import seed
from tests.builders import AS_OF, PatientBuilder

MDD = ("F33.1", "Major depressive disorder, recurrent, moderate")


def stroke_with_trd(pid: str) -> tuple[PatientBuilder, dict[str, str]]:
    """A prior stroke (ketamine: contraindicated; esketamine: needs review) and TRD documented:
    sertraline 73 days (SSRI) and venlafaxine 61 days (SNRI), both past (completed, stopped)."""
    p = PatientBuilder(pid)
    refs = {
        "stroke": p.condition("I63.9", "Cerebral infarction, unspecified"),
        "mdd": p.condition(*MDD, onset="2025-01-01"),
        "sertraline": p.medication("36437", "sertraline", status="completed",
                                   start="2025-02-01", period_end="2025-04-15"),
        "venlafaxine": p.medication("39786", "venlafaxine", status="stopped",
                                    start="2025-05-01", period_end="2025-07-01"),
    }
    return p, refs


def screened(p: PatientBuilder, products: str = "both",
             policy: BloodPressurePolicy | None = None) -> ScreeningResult:
    return screen(parse_bundle(p.bundle(), "test"), AS_OF, products=products, policy=policy)


def components(result: ScreeningResult) -> list[dict[str, Any]]:
    obs = build_screening_write(result).observation.resource.model_dump(mode="json",
                                                                         exclude_none=True)
    parts: list[dict[str, Any]] = obs["component"]
    return parts


def by_code(parts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for part in parts:
        (coding,) = part["code"]["coding"]
        assert coding["system"] == CS_SCREENING
        assert coding["display"] == display(CS_SCREENING, coding["code"])
        found.setdefault(coding["code"], []).append(part)
    return found


def _value_code(part: dict[str, Any]) -> str:
    return str(part["valueCodeableConcept"]["coding"][0]["code"])


def test_both_verdicts_ruleset_thresholds_and_eligibility() -> None:
    p, refs = stroke_with_trd("wb-comp")
    result = screened(p)
    found = by_code(components(result))
    assert [_value_code(c) for c in found["ketamine-verdict"]] == ["contraindicated"]
    assert [_value_code(c) for c in found["esketamine-verdict"]] == ["needs-review"]
    assert [c["valueString"] for c in found["ruleset"]] == ["v2"]
    assert [c["code"]["text"] for c in found["contraindication"]] == ["ci-prior-stroke"]
    limits = {c["code"]["text"]: c["valueQuantity"] for part in result.thresholds
              for c in found[threshold_code(part)]}
    assert limits["bp_systolic_elevated"] == {"value": 140, "unit": "mmHg",
                                              "system": "http://unitsofmeasure.org",
                                              "code": "mm[Hg]"}
    assert limits["trial_min_days"] == {"value": 42, "unit": "days",
                                        "system": "http://unitsofmeasure.org", "code": "d"}
    assert set(limits) == set(result.thresholds)
    assert [_value_code(c) for c in found["eligibility"]] == ["trd-documented"]
    assert [(c["code"]["text"], c["valuePeriod"]) for c in found["antidepressant-trial"]] == [
        (f"sertraline (SSRI), 73 days (period): {refs['sertraline']}",
         {"start": "2025-02-01", "end": "2025-04-15"}),
        (f"venlafaxine (SNRI), 61 days (period): {refs['venlafaxine']}",
         {"start": "2025-05-01", "end": "2025-07-01"})]
    assert [c["valueInteger"] for c in found["antidepressant-classes"]] == [2]
    assert "eligibility-missing" not in found
    (summary,) = found["eligibility-summary"]
    assert summary["valueString"].endswith("Dose adequacy was not assessed.")


def test_what_is_missing_is_written_when_not_documented() -> None:
    p = PatientBuilder("wb-short")
    p.condition(*MDD, onset="2025-01-01")
    p.medication("36437", "sertraline", status="stopped", start="2025-02-01",
                 period_end="2025-03-01")
    found = by_code(components(screened(p)))
    assert [_value_code(c) for c in found["eligibility"]] == ["not-documented"]
    assert "antidepressant-trial" not in found
    assert [c["valueString"] for c in found["eligibility-missing"]] == [
        "fewer than two trials: 0 of at least 42 days (none); too short: sertraline 28 days"]


def test_one_product_writes_one_verdict() -> None:
    p, _ = stroke_with_trd("wb-one")
    found = by_code(components(screened(p, "esketamine")))
    assert [_value_code(c) for c in found["esketamine-verdict"]] == ["needs-review"]
    assert "ketamine-verdict" not in found and "contraindication" not in found


def test_every_threshold_and_status_has_a_code() -> None:
    (system,) = [cs for cs in load_codesystems() if cs["url"] == CS_SCREENING]
    assert system["version"] == "1.1.0"

    def codes(concepts: list[dict[str, Any]]) -> list[str]:
        return [c["code"] for c in concepts] + [
            code for c in concepts for code in codes(c.get("concept", []))]

    every = codes(system["concept"])
    assert len(every) == len(set(every)) == system["count"]
    p, _ = stroke_with_trd("wb-codes")
    for name in screened(p).thresholds:
        assert threshold_code(name) in every, name
    for status in ("trd-documented", "mdsi-pathway", "not-documented"):
        assert status in every


def test_products_and_thresholds_are_part_of_the_key() -> None:
    p, _ = stroke_with_trd("wb-key")

    def key(result: ScreeningResult) -> str:
        return build_screening_write(result).observation.value

    both, again = key(screened(p)), key(screened(p, "both"))
    ketamine, esketamine = key(screened(p, "ketamine")), key(screened(p, "esketamine"))
    assert both == again
    assert len({both, ketamine, esketamine}) == 3
    strict = BloodPressurePolicy(30, 170, 95, 130, 80)
    assert key(screened(p, policy=strict)) != both


def test_detected_issue_quotes_the_configured_thresholds() -> None:
    p = PatientBuilder("wb-bp", normal_vitals=False)
    p.bp(175, 90, days_ago=2)
    result = screened(p, policy=BloodPressurePolicy(30, 170, 95, 130, 80))
    (issue,) = [e.resource for e in build_screening_write(result).issues]
    assert "above 170/95 mmHg" in str(issue.detail) and "180/100" not in str(issue.detail)
    assert "170/95" in str(issue.mitigation[0].action.text)


@pytest.mark.integration
async def test_components_read_back_from_the_sandbox(fhir_base_url: str) -> None:
    p, refs = stroke_with_trd(f"wb-{uuid.uuid4().hex[:10]}")
    await seed(fhir_base_url, [p.patient(), *p.resources])
    both, ketamine = screened(p), screened(p, "ketamine")
    async with FhirClient(fhir_base_url) as fhir:
        first = await write_screening(fhir, both)
        again = await write_screening(fhir, both)
        other = await write_screening(fhir, ketamine)
        assert again.locations == first.locations and again.created == 0
        obs_ref = next(loc for loc in first.locations if loc.startswith("Observation/"))
        other_ref = next(loc for loc in other.locations if loc.startswith("Observation/"))
        assert other_ref != obs_ref  # another product set is another record
        obs = await fhir.read(*obs_ref.split("/"))
        provenance = await fhir.search_json("Provenance", [("target", obs_ref)])
    found = by_code(obs["component"])
    assert [_value_code(c) for c in found["ketamine-verdict"]] == ["contraindicated"]
    assert [_value_code(c) for c in found["esketamine-verdict"]] == ["needs-review"]
    assert [_value_code(c) for c in found["eligibility"]] == ["trd-documented"]
    assert [c["valuePeriod"]["start"] for c in found["antidepressant-trial"]] == [
        "2025-02-01", "2025-05-01"]
    assert {c["code"]["text"]: c["valueQuantity"]["value"] for part in both.thresholds
            for c in found[threshold_code(part)]} == both.thresholds
    (record,) = provenance
    sources = {e["what"]["reference"] for e in record["entity"]}
    assert {refs["mdd"], refs["sertraline"], refs["venlafaxine"], refs["stroke"]} <= sources
