"""Engine behaviour beyond the case table: data-quality findings, ordering, the maps' loader."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from service.errors import MapError
from service.fhir.bundle import parse_bundle
from service.screening import ruleset as ruleset_module
from service.screening.engine import BloodPressurePolicy, screen
from service.screening.matching import default_matcher
from service.screening.model import Verdict
from tests.builders import AS_OF, PatientBuilder


def run(p: PatientBuilder, bundle: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    raw = parse_bundle(bundle or p.bundle(), "test")
    return screen(raw, AS_OF, **kwargs).as_contract()


def rules(contract: dict[str, Any]) -> set[str]:
    return {f["rule"] for f in contract["findings"]}


def test_weight_missing_is_information_only() -> None:
    p = PatientBuilder("w1", normal_vitals=False)
    p.bp(120, 70)
    contract = run(p)
    assert "info-weight-missing" in rules(contract)
    assert contract["verdict"] == "suitable"
    p.weight(60)
    assert "info-weight-missing" not in rules(run(p))


def test_age_unknown_without_birth_date() -> None:
    p = PatientBuilder("age1")
    bundle = p.bundle()
    del bundle["entry"][0]["resource"]["birthDate"]
    contract = run(p, bundle)
    assert "info-age-unknown" in rules(contract)
    assert contract["verdict"] == "suitable"
    assert "info-age-unknown" not in rules(run(p))


def test_one_unparseable_resource_is_reported_and_the_rest_screened() -> None:
    p = PatientBuilder("bad1")
    aneurysm = p.condition("I71.4", "Abdominal aortic aneurysm")
    bundle = p.bundle()
    bundle["entry"].append({"resource": {"resourceType": "Observation", "id": "broken",
                                         "status": "final", "code": {"text": "x"},
                                         "valueQuantity": {"value": "not a number"}}})
    contract = run(p, bundle)
    by_rule = {f["rule"]: f for f in contract["findings"]}
    assert by_rule["md-unreadable-record"]["evidence"] == ["Observation/broken"]
    assert by_rule["ci-aneurysm"]["evidence"] == [aneurysm]
    assert contract["verdict"] == "contraindicated"
    # On its own, an unreadable record means the screen rests on incomplete data.
    clean = PatientBuilder("bad2")
    bundle = clean.bundle()
    bundle["entry"].append({"resource": {"resourceType": "Condition", "id": "broken2",
                                         "subject": {"reference": "Patient/bad2"},
                                         "onsetDateTime": "yesterday"}})
    assert run(clean, bundle)["verdict"] == "insufficient-data"
    assert "md-unreadable-record" not in rules(run(clean))


def test_unresolved_medication_reference_is_missing_data() -> None:
    p = PatientBuilder("ref1")
    bundle = p.bundle()
    bundle["entry"].append({"resource": {
        "resourceType": "MedicationStatement", "id": "ms-x", "status": "active",
        "subject": {"reference": "Patient/ref1"},
        "medicationReference": {"reference": "Medication/not-here"}}})
    contract = run(p, bundle)
    by_rule = {f["rule"]: f for f in contract["findings"]}
    assert by_rule["md-unreadable-record"]["evidence"] == ["MedicationStatement/ms-x"]
    assert contract["verdict"] == "insufficient-data"


def test_unresolved_reference_with_a_display_is_still_matched_by_name() -> None:
    p = PatientBuilder("ref2")
    bundle = p.bundle()
    bundle["entry"].append({"resource": {
        "resourceType": "MedicationStatement", "id": "ms-y", "status": "active",
        "subject": {"reference": "Patient/ref2"},
        "medicationReference": {"reference": "Medication/elsewhere", "display": "Ativan 1 mg"}}})
    contract = run(p, bundle)
    assert "ix-benzodiazepines" in rules(contract)


def test_findings_are_most_severe_first_and_deterministic() -> None:
    p = PatientBuilder("ord1", normal_vitals=False)
    p.condition("F20.9", "Schizophrenia")
    p.medication(text="levothyroxine")
    p.medication(text="morphine")
    p.condition("I61.9", "Intracerebral hemorrhage")
    first = run(p)
    kinds = [f["kind"] for f in first["findings"]]
    assert kinds[0] == "contraindication"
    assert kinds.index("missing-data") > kinds.index("precaution")
    severities = [f["severity"] for f in first["findings"] if f["kind"] == "interaction"]
    assert severities == ["major", "minor"]
    assert json.dumps(first) == json.dumps(run(p))


def test_contract_shape() -> None:
    contract = run(PatientBuilder("shape1"))
    assert set(contract) == {"patient", "as_of", "ruleset", "products", "verdict", "verdicts",
                             "thresholds", "findings", "eligibility"}
    assert contract["patient"] == "Patient/shape1"
    assert contract["as_of"] == "2026-06-15T12:00:00Z"
    assert contract["ruleset"] == "v2"
    assert contract["products"] == ["ketamine", "esketamine"]
    assert contract["verdicts"] == {"ketamine": "suitable", "esketamine": "suitable"}
    assert contract["thresholds"]["bp_systolic_elevated"] == 140
    assert set(contract["eligibility"]) >= {"status", "diagnosis", "trials", "classes",
                                            "missing", "summary"}
    p = PatientBuilder("shape2")
    p.condition("I72.0", "Aneurysm of carotid artery")
    finding = run(p)["findings"][0]
    assert set(finding) == {"kind", "rule", "severity", "summary", "evidence", "source",
                            "products"}
    assert finding["source"] == "SPRAVATO-PI Contraindications"
    assert finding["products"] == ["ketamine", "esketamine"]


def test_window_and_thresholds_are_configurable() -> None:
    p = PatientBuilder("cfg1", normal_vitals=False)
    p.weight(70)
    p.bp(150, 80, days_ago=45)
    assert run(p)["verdict"] == "insufficient-data"
    wide = BloodPressurePolicy(60, 180, 100, 140, 90)
    assert run(p, policy=wide)["verdict"] == "needs-review"
    strict = BloodPressurePolicy(60, 145, 100, 130, 85)
    assert run(p, policy=strict)["verdict"] == "contraindicated"


def test_window_edge_is_inclusive() -> None:
    p = PatientBuilder("edge1", normal_vitals=False)
    p.weight(70)
    p.bp(150, 80, days_ago=30)
    assert run(p)["verdict"] == "needs-review"
    q = PatientBuilder("edge2", normal_vitals=False)
    q.weight(70)
    q.bp(150, 80, days_ago=30 + 1 / 24)
    assert run(q)["verdict"] == "insufficient-data"


def test_icd_category_ranges_include_letter_categories() -> None:
    m = default_matcher()
    from service.screening.model import Concept

    def pregnancy(code: str) -> bool:
        concept = Concept(frozenset({("icd10cm", code)}), ())
        return any(h.rule.id == "pr-pregnancy" for h in m.condition_rules(concept))

    assert pregnancy("O9A211")
    assert pregnancy("O00")
    assert pregnancy("O99891")
    assert not pregnancy("P00")
    assert not pregnancy("N99")


def test_names_match_whole_words_only() -> None:
    m = default_matcher()
    from service.screening.model import Concept

    assert m.drugs.interaction(Concept(frozenset(), ("XANAX 1mg",))).classes
    assert not m.drugs.interaction(Concept(frozenset(), ("Xanaxol",))).classes
    assert not m.drugs.interaction(Concept(frozenset(), ("codeinex",))).classes


def test_verdict_order() -> None:
    assert Verdict.CONTRAINDICATED > Verdict.NEEDS_REVIEW > Verdict.INSUFFICIENT_DATA
    assert Verdict.INSUFFICIENT_DATA > Verdict.SUITABLE
    assert Verdict.NEEDS_REVIEW.label == "needs-review"


def _load_changed(monkeypatch: pytest.MonkeyPatch, change: Callable[[dict[str, Any]], None],
                  error: str) -> None:
    """Load the current ruleset with ``change`` applied to its data: MapError matching ``error``."""
    good = ruleset_module.read_map

    def changed(name: str) -> dict[str, Any]:
        data = good(name)
        if name == ruleset_module.RULESET_FILE:
            change(data)
        return data

    monkeypatch.setattr(ruleset_module, "read_map", changed)
    ruleset_module.load_maps.cache_clear()
    try:
        with pytest.raises(MapError, match=error):
            ruleset_module.load_ruleset()
    finally:
        ruleset_module.load_maps.cache_clear()


def test_malformed_map_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    _load_changed(monkeypatch, lambda d: d["conditions"][0].update(scope="sometimes"),
                  r"ruleset-v2.yaml: conditions.0.scope")


def test_rule_without_a_declared_source_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    _load_changed(monkeypatch, lambda d: d["interactions"][0].update(source="a blog post"),
                  "ix-opioids cites 'a blog post'")


def test_as_of_must_be_aware() -> None:
    raw = parse_bundle(PatientBuilder("tz1").bundle(), "test")
    with pytest.raises(ValueError, match="timezone"):
        screen(raw, AS_OF.replace(tzinfo=None))
    assert screen(raw, AS_OF + timedelta(hours=1)).verdict == Verdict.SUITABLE


def test_transaction_style_bundle_with_urn_uuid_references() -> None:
    patient = "urn:uuid:6a1b6f9e-0000-4000-8000-000000000001"
    medication = "urn:uuid:6a1b6f9e-0000-4000-8000-000000000002"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": patient, "resource": {"resourceType": "Patient", "birthDate": "1970-01-01"},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": medication, "resource": {"resourceType": "Medication", "code": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "3322",
                        "display": "diazepam"}]}},
         "request": {"method": "POST", "url": "Medication"}},
        {"fullUrl": "urn:uuid:6a1b6f9e-0000-4000-8000-000000000003", "resource": {
            "resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "subject": {"reference": patient}, "medicationReference": {"reference": medication}},
         "request": {"method": "POST", "url": "MedicationRequest"}},
        {"fullUrl": "urn:uuid:6a1b6f9e-0000-4000-8000-000000000004", "resource": {
            "resourceType": "Condition", "subject": {"reference": patient},
            "code": {"text": "Thoracic aortic aneurysm"}},
         "request": {"method": "POST", "url": "Condition"}},
    ]}
    contract = screen(parse_bundle(bundle, "tx"), AS_OF).as_contract()
    by_rule = {f["rule"]: f for f in contract["findings"]}
    assert contract["patient"] == "Patient/6a1b6f9e-0000-4000-8000-000000000001"
    assert by_rule["ci-aneurysm"]["evidence"] == [
        "Condition/6a1b6f9e-0000-4000-8000-000000000004"]
    assert by_rule["ix-benzodiazepines"]["evidence"] == [
        "MedicationRequest/6a1b6f9e-0000-4000-8000-000000000003"]
    assert contract["verdict"] == "contraindicated"


def test_every_v2_condition_rule_has_snomed_codes() -> None:
    ruleset, _ = ruleset_module.load_ruleset("v2")
    assert [r.id for r in ruleset.conditions if not r.snomed] == []


def test_a_conflicting_display_is_quoted_with_what_the_code_stands_for() -> None:
    # A real Synthea record: RxNorm 833036 is acetaminophen/hydrocodone, displayed "Captopril".
    p = PatientBuilder("conflict1")
    ref = p.medication("833036", "Captopril 25 MG Oral Tablet", request=True)
    finding = next(f for f in run(p)["findings"] if f["rule"] == "ix-opioids")
    assert finding["evidence"] == [ref]
    assert ("Captopril 25 MG Oral Tablet (its code is acetaminophen 750 MG / hydrocodone "
            "bitartrate 7.5 MG Oral Tablet)") in finding["summary"]
    q = PatientBuilder("conflict2")
    q.medication("1049221", "Acetaminophen 325 MG / oxyCODONE Hydrochloride 5 MG Oral Tablet")
    summary = next(f for f in run(q)["findings"] if f["rule"] == "ix-opioids")["summary"]
    assert "its code is" not in summary


def test_texts_quote_the_configured_thresholds() -> None:
    p = PatientBuilder("thr1", normal_vitals=False, birth="1950-01-01")
    p.weight(70)
    p.bp(138, 84, days_ago=1)
    policy = BloodPressurePolicy(30, 170, 95, 130, 80, 145, 85)
    result = screen(parse_bundle(p.bundle(), "t"), AS_OF, policy=policy)
    by_rule = {f.rule: f for f in result.findings}
    elevated = by_rule["pr-bp-elevated"]
    assert "above 130/80 mmHg" in elevated.summary and "130/80" in elevated.detail
    assert "140/90" not in elevated.detail
    assert "145/85" in by_rule["info-age-65-or-older"].detail
    assert result.thresholds["bp_systolic_elevated"] == 130
    assert result.as_contract()["thresholds"]["bp_diastolic_uncontrolled"] == 95
    q = PatientBuilder("thr2", normal_vitals=False)
    q.weight(70)
    q.bp(176, 90, days_ago=1)
    detail = next(f for f in screen(parse_bundle(q.bundle(), "t"), AS_OF, policy=policy).findings
                  if f.rule == "ci-bp-uncontrolled").detail
    assert "above 170/95 mmHg" in detail and "180/100" not in detail


def test_products_asked_filter_findings_and_verdicts() -> None:
    p = PatientBuilder("prod1")
    stroke = p.condition("I63.9", "Cerebral infarction, unspecified")
    p.condition("H40.1131", "Primary open-angle glaucoma, bilateral, mild stage")
    raw = parse_bundle(p.bundle(), "t")
    both = screen(raw, AS_OF).as_contract()
    assert both["verdicts"] == {"ketamine": "contraindicated", "esketamine": "needs-review"}
    assert both["verdict"] == "contraindicated"
    ket = screen(raw, AS_OF, products="ketamine").as_contract()
    assert ket["products"] == ["ketamine"] and set(ket["verdicts"]) == {"ketamine"}
    assert {f["rule"] for f in ket["findings"]} >= {"ci-prior-stroke", "pr-glaucoma"}
    assert "pr-prior-stroke" not in {f["rule"] for f in ket["findings"]}
    esk = screen(raw, AS_OF, products="esketamine").as_contract()
    assert esk["verdict"] == "needs-review"
    rules = {f["rule"]: f for f in esk["findings"]}
    assert rules["pr-prior-stroke"]["evidence"] == [stroke]
    assert "ci-prior-stroke" not in rules and "pr-glaucoma" not in rules
    assert rules["info-glaucoma-esketamine"]["products"] == ["esketamine"]
    assert all(f["products"] == ["esketamine"] for f in esk["findings"])


def test_unknown_product_or_ruleset_is_a_value_error_naming_the_choices() -> None:
    raw = parse_bundle(PatientBuilder("choice1").bundle(), "t")
    with pytest.raises(ValueError, match="allowed: ketamine, esketamine, both"):
        screen(raw, AS_OF, products="arketamine")
    with pytest.raises(ValueError, match="allowed: v1, v2"):
        screen(raw, AS_OF, ruleset="v9")


def test_ruleset_v1_stays_loadable_and_is_named() -> None:
    p = PatientBuilder("v1a")
    p.condition("I25.3", "Aneurysm of heart")
    v1 = screen(parse_bundle(p.bundle(), "t"), AS_OF, ruleset="v1").as_contract()
    assert v1["ruleset"] == "v1" and v1["eligibility"] is None
    assert [f["rule"] for f in v1["findings"]] == ["ci-aneurysm", "pr-cardiovascular"]
    assert v1["findings"][0]["source"] == "SPRAVATO-PI 4"
    assert v1["verdict"] == "contraindicated"
    v2 = screen(parse_bundle(p.bundle(), "t"), AS_OF).as_contract()
    assert v2["ruleset"] == "v2"
    assert [f["rule"] for f in v2["findings"]] == ["pr-cardiovascular"]


def test_v2_sources_cite_sections_by_title(monkeypatch: pytest.MonkeyPatch) -> None:
    _load_changed(monkeypatch, lambda d: d["conditions"][0].update(source="SPRAVATO-PI 4"),
                  "by section number")


def test_abatement_decides_over_an_active_status() -> None:
    # FHIR's con-4 forbids this pairing, so HAPI never stores it; a Bundle may still carry it.
    p = PatientBuilder("abate1")
    bundle = p.bundle()
    bundle["entry"].append({"resource": {
        "resourceType": "Condition", "id": "preg-abated",
        "subject": {"reference": "Patient/abate1"},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                 "condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "72892002",
                             "display": "Normal pregnancy"}]},
        "onsetDateTime": "2025-10-01", "abatementDateTime": "2026-05-01"}})
    assert "pr-pregnancy" not in rules(run(p, bundle))


def test_medication_dispense_is_not_a_current_medication() -> None:
    p = PatientBuilder("disp1")
    p.dispense("7804", "oxycodone", handed_over="2026-06-10", days_supply=30)
    assert "ix-opioids" not in rules(run(p))


def not_offered(p: PatientBuilder, *types: str, ruleset: str | None = None) -> dict[str, Any]:
    raw = parse_bundle(p.bundle(), "test")
    raw.not_offered = list(types)
    return screen(raw, AS_OF, ruleset=ruleset).as_contract()


def test_a_type_another_type_covers_is_a_note_naming_it() -> None:
    """No MedicationStatement (US Core 4+): medications come from MedicationRequest."""
    contract = not_offered(PatientBuilder("no1"), "MedicationStatement")
    [note] = [f for f in contract["findings"] if f["rule"] == "info-data-partly-offered"]
    assert note["evidence"] == ["MedicationStatement"]
    assert note["summary"] == ("Some record types are not offered by this EHR: read from the "
                               "others: MedicationStatement")
    assert "md-data-not-offered" not in rules(contract)
    assert "md-unreadable-record" not in rules(contract)
    assert contract["verdict"] == "suitable"


def test_a_type_nothing_else_covers_is_missing_data() -> None:
    contract = not_offered(PatientBuilder("no2"), "AllergyIntolerance")
    [missing] = [f for f in contract["findings"] if f["rule"] == "md-data-not-offered"]
    assert missing["evidence"] == ["AllergyIntolerance"]
    assert missing["kind"] == "missing-data"
    assert contract["verdict"] == "insufficient-data"
    assert contract["verdicts"] == {"ketamine": "insufficient-data",
                                    "esketamine": "insufficient-data"}


def test_without_the_covering_type_both_medication_types_are_missing_data() -> None:
    contract = not_offered(PatientBuilder("no3"), "MedicationStatement", "MedicationRequest")
    [missing] = [f for f in contract["findings"] if f["rule"] == "md-data-not-offered"]
    assert missing["evidence"] == ["MedicationStatement", "MedicationRequest"]
    assert "info-data-partly-offered" not in rules(contract)
    assert contract["verdict"] == "insufficient-data"


def test_ruleset_v1_reports_a_type_not_offered_as_an_unreadable_record() -> None:
    contract = not_offered(PatientBuilder("no4"), "MedicationStatement", ruleset="v1")
    [unread] = [f for f in contract["findings"] if f["rule"] == "md-unreadable-record"]
    assert unread["evidence"] == ["MedicationStatement"]
    assert not rules(contract) & {"md-data-not-offered", "info-data-partly-offered"}


def test_eligibility_names_the_evidence_types_not_offered() -> None:
    contract = not_offered(PatientBuilder("no5"), "MedicationStatement", "AllergyIntolerance")
    missing = contract["eligibility"]["missing"]
    assert missing[-1] == "not offered by this EHR, so not read: MedicationStatement"
    assert "MedicationStatement" in contract["eligibility"]["summary"]
