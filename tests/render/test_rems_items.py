"""The Spravato REMS Patient Monitoring Form's items: required for esketamine, checked field by
field, written as Observations, pre-filled from the last session and the latest screen."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from service.fhir.codesystems import CS_SESSION
from service.render.course_read import SessionRecord
from service.render.session import build_session_write
from service.render.session_form import parse_session_form, session_defaults
from service.render.session_input import REMS_REQUIRED, SessionInput
from service.screening.model import Finding
from tests.render.test_session import DOSE, REMS_ITEMS, by_code, resources, session_body
from tests.ui.conftest import VALID_SESSION

REMS_FIELDS = {"lot_number", "vitals_ok_pre_dose", "vitals_ok_end", "respiratory_depression",
               "lowest_spo2", "monitoring_clinician", "setting", "ready_at",
               "concomitant.benzodiazepines", "concomitant.sedative-hypnotics",
               "concomitant.psychostimulants", "concomitant.maois"}


def _without_rems(**changes: Any) -> dict[str, Any]:
    body = session_body(**changes)
    for key in REMS_ITEMS:
        body.pop(key)
    return body


def test_an_esketamine_session_must_answer_every_rems_item() -> None:
    with pytest.raises(ValidationError) as caught:
        SessionInput.model_validate(_without_rems())
    errors = caught.value.errors()
    assert {".".join(map(str, e["loc"])) for e in errors} == REMS_FIELDS
    assert {e["type"] for e in errors} == {REMS_REQUIRED}


def test_a_ketamine_session_may_leave_them_out() -> None:
    session = SessionInput.model_validate(_without_rems(product="ketamine", route="IV",
                                                        dose_mg_per_kg=0.5))
    items = resources(session)
    assert not by_code(items, "lot-number") and not by_code(items, "concomitant-medications")


@pytest.mark.parametrize(("changes", "where", "kind"), [
    ({"respiratory_depression": True, "lowest_spo2": None}, "lowest_spo2", "missing"),
    ({"lowest_spo2": 99}, "lowest_spo2", "value_error"),  # above the 97% taken at 40 minutes
    ({"ready_at": (DOSE - timedelta(minutes=5)).isoformat()}, "ready_at", "value_error"),
    ({"lot_number": "lot;drop"}, "lot_number", "string_pattern_mismatch"),
    ({"concomitant": {"benzodiazepines": True, "opioids": True}},
     "concomitant.opioids.[key]", "literal_error"),
])
def test_rems_items_are_checked(changes: dict[str, Any], where: str, kind: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SessionInput.model_validate(session_body(**changes))
    assert (where, kind) in {(".".join(map(str, e["loc"])), e["type"])
                             for e in caught.value.errors()}


def test_the_rems_items_are_written() -> None:
    session = SessionInput.model_validate(session_body(respiratory_depression=True))
    items = resources(session)
    assert by_code(items, "lot-number")[0]["valueString"] == "LOT-24A117"
    concomitant = by_code(items, "concomitant-medications")[0]
    assert [(c["code"]["coding"][0]["code"], c["valueBoolean"])
            for c in concomitant["component"]] == [
        ("benzodiazepines", True), ("sedative-hypnotics", False), ("psychostimulants", False),
        ("maois", False)]
    assert concomitant["code"]["coding"][0]["system"] == CS_SESSION
    assert by_code(items, "vitals-acceptable-pre-dose")[0]["valueBoolean"] is True
    assert by_code(items, "vitals-acceptable-end")[0]["valueBoolean"] is True
    assert by_code(items, "ready-to-leave-at")[0]["valueDateTime"] == "2026-06-15T11:00:00Z"
    assert by_code(items, "respiratory-depression-observed")[0]["valueBoolean"] is True
    lowest = [r for r in by_code(items, "59408-5")
              if r["identifier"][0]["value"].endswith("/lowest-spo2")]
    assert lowest[0]["valueQuantity"]["value"] == 94
    assert lowest[0]["code"]["text"] == "Lowest SpO2 during monitoring"
    assert by_code(items, "healthcare-setting")[0]["valueString"] == "Lakeside Clinic"
    assert by_code(items, "monitoring-minutes")[0]["performer"] == [
        {"reference": "Practitioner/dr1"}, {"display": "Sam Rivera, RN"}]
    warnings = build_session_write(session).warnings
    assert "respiratory depression was seen (lowest SpO2 94%)" in warnings


def _form(**changes: str) -> Any:
    values = {**VALID_SESSION, "session_id": "s-1", **changes}
    return parse_session_form(values, [], patient_id="p1")


def test_a_preset_is_the_dose() -> None:
    form = _form(dose_preset="84", dose_mg="")
    assert form.session is not None and form.session.dose_mg == 84
    same = _form(dose_preset="84", dose_mg="84")
    assert same.session is not None
    other = _form(dose_preset="other", dose_mg="28")
    assert other.session is not None and other.session.dose_mg == 28


def test_a_preset_that_contradicts_the_typed_dose_or_the_product_is_an_error() -> None:
    assert _form(dose_preset="84", dose_mg="60").errors == {
        "dose_mg": "The dose typed differs from the preset chosen: choose another dose, or "
                   "clear it."}
    ketamine = _form(product="ketamine", route="IV", dose_mg_per_kg="0.5", dose_preset="56")
    assert ketamine.errors["dose_preset"] == ("The presets are esketamine doses: choose another "
                                              "dose for ketamine.")


def test_missing_rems_items_are_explained_at_their_fields_in_the_forms_order() -> None:
    blank = {name: "" for name in ("lot_number", "setting", "ready_time", "lowest_spo2",
                                   "concomitant.maois", "vitals_ok_end")}
    form = _form(**blank)
    assert form.session is None
    assert form.error_list() == [
        ("setting", "Enter the healthcare setting: the Spravato REMS form asks for it."),
        ("concomitant.maois", "Say whether the patient takes monoamine oxidase inhibitors "
                              "(MAOIs). The Spravato REMS form asks for it."),
        ("lot_number", "Enter the lot number: the Spravato REMS form asks for it."),
        ("lowest_spo2", "Enter the lowest SpO2 during monitoring (50-100 %): the Spravato REMS "
                        "form asks for it."),
        ("vitals_ok_end", "Say whether the vital signs were acceptable at the end. The Spravato "
                          "REMS form asks for it."),
        ("ready_time", "Enter the time the patient would have been ready to leave (HH:MM): the "
                       "Spravato REMS form asks for it."),
    ]
    assert form.values["lot_number"] == ""  # and every other value is kept as typed
    assert form.values["pre_dose.systolic"] == "128"


def _finding(rule: str, *labels: str) -> Finding:
    return Finding(kind="interaction", rule=rule, severity="major", summary="", evidence=(),
                   source="", records=tuple((f"MedicationStatement/{n}", label, None)
                                            for n, label in enumerate(labels)))


def test_defaults_come_from_the_last_session_and_the_screen() -> None:
    last = SessionRecord("s-0", {
        "session": {"component": [{"code": {"coding": [{"code": "product"}]},
                                   "valueCodeableConcept": {"coding": [{"code": "esketamine"}]}}
                                  ]},
        "dose-mg": {"effectiveDateTime": "2026-06-01T09:10:00Z", "valueQuantity": {"value": 84}},
        "route": {"valueCodeableConcept": {"text": "intranasal"}},
        "healthcare-setting": {"valueString": "Lakeside Clinic"}})
    findings = [_finding("ix-benzodiazepines", "lorazepam 1 MG Oral Tablet"),
                _finding("ix-cns-depressants", "gabapentin 300 MG", "Ambien 10 MG")]
    values, notes = session_defaults(last, findings)
    assert values == {"product": "esketamine", "route": "intranasal",
                      "setting": "Lakeside Clinic", "dose_preset": "84",
                      "concomitant.benzodiazepines": "yes",
                      "concomitant.sedative-hypnotics": "yes",
                      "concomitant.psychostimulants": "no", "concomitant.maois": "no"}
    assert notes["concomitant.sedative-hypnotics"] == "Pre-filled from the screen: Ambien 10 MG."
    assert notes["product"] == "As in the last session (2026-06-01)."
    only_gabapentin = session_defaults(None, [_finding("ix-cns-depressants", "gabapentin")])[0]
    assert only_gabapentin["concomitant.sedative-hypnotics"] == "no"
    assert "product" not in only_gabapentin
