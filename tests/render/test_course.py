"""The treatment course's pure parts: the course map, the REMS form Task and its submission, the
integration Procedure, the PHQ-9 write and outcome, reading the course back, the due list, the
timeline's gaps, the printed form, the banner's MRN and age, and conditional updates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service.errors import MapError
from service.fhir.codesystems import CS_SCREENING, CS_SESSION
from service.fhir.transaction import TxEntry, build_transaction
from service.render.charts import phq9_chart
from service.render.course import due_rows, print_sections, timeline
from service.render.course_map import course_map
from service.render.course_read import read_course_records, split_resources
from service.render.html import banner
from service.render.integration import IntegrationInput, build_integration_write
from service.render.phq9 import Phq9Input, build_phq9_write, phq9_outcome
from service.render.rems_form import SubmissionInput, build_submission_write, due_date
from service.render.session import build_session_write
from service.render.session_input import SessionInput
from service.render.session_items import ESKETAMINE_MIN_MONITORING_MINUTES, REMS_SUBMISSION_DAYS
from tests.render.test_session import DOSE, session_body

NOW = datetime(2026, 6, 16, 12, 0, tzinfo=UTC)
T = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def _resolved(entries: list[TxEntry]) -> list[dict[str, Any]]:
    """The entries as a server would hold them: ids given, urn:uuid references resolved."""
    ids = {e.full_url: f"{e.resource_type}/{e.full_url[-12:]}" for e in entries}

    def fix(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ids.get(v, v) if k == "reference" else fix(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    out = []
    for e in entries:
        resource = fix(e.resource.model_dump(mode="json", exclude_none=True))
        resource["id"] = e.full_url[-12:]
        out.append(resource)
    return out


def _course(*sessions: SessionInput, extra: list[dict[str, Any]] | None = None) -> Any:
    resources = [r for s in sessions
                 for r in _resolved(build_session_write(s, now=NOW).entries)]
    found = split_resources([*resources, *(extra or [])])
    return read_course_records(found, [])


def test_the_map_holds_the_rems_constants_with_their_sources() -> None:
    data = course_map()
    assert (ESKETAMINE_MIN_MONITORING_MINUTES, REMS_SUBMISSION_DAYS) == (120, 7)
    assert data.rems.dose_presets.mg == (56, 84)
    assert data.rems.source == "SPRAVATO-REMS" and "SPRAVATO-REMS" in data.sources
    assert [q.code for q in data.rems.concomitant] == [
        "benzodiazepines", "sedative-hypnotics", "psychostimulants", "maois"]
    assert (data.phq9.outcomes.response_fraction, data.phq9.outcomes.remission_below) == (0.5, 5)
    assert len(data.phq9.items) == 9


def test_a_map_that_does_not_fit_is_refused_naming_the_file(tmp_path: Path) -> None:
    text = Path("fhir_maps/treatment-course.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "treatment-course.yaml"
    broken.write_text(text.replace("min_monitoring_minutes: 120", "min_monitoring_minutes: -1"),
                      encoding="utf-8")
    with pytest.raises(MapError, match=r"(?s)treatment-course.yaml: .*rems.min_monitoring_minutes"):
        course_map.__wrapped__(broken)
    broken.write_text(text.replace("source: SPRAVATO-REMS\n  min", "source: NOWHERE\n  min"),
                      encoding="utf-8")
    with pytest.raises(MapError, match="NOWHERE"):
        course_map.__wrapped__(broken)


def test_an_esketamine_session_gets_its_rems_form_task_due_in_seven_days() -> None:
    session = SessionInput.model_validate(session_body())
    entries = build_session_write(session, now=NOW).entries
    tasks = [e for e in entries if e.resource_type == "Task"]
    assert len(tasks) == 1
    task = tasks[0].resource.model_dump(mode="json", exclude_none=True)
    assert (task["status"], task["intent"], task["code"]["coding"][0]["code"]) == (
        "requested", "order", "rems-monitoring-form")
    assert task["focus"]["reference"] == entries[0].full_url  # the session Observation
    assert task["restriction"]["period"]["end"] == "2026-06-22T23:59:59Z"
    assert due_date(DOSE) == date(2026, 6, 22)
    provenance = entries[-1].resource.model_dump(mode="json", exclude_none=True)
    assert {"reference": tasks[0].full_url} in provenance["target"]
    ketamine = SessionInput.model_validate(session_body(product="ketamine", route="IV",
                                                        dose_mg_per_kg=0.5))
    assert not [e for e in build_session_write(ketamine).entries if e.resource_type == "Task"]


def test_marking_submitted_is_a_conditional_update_of_the_task() -> None:
    course = _course(SessionInput.model_validate(session_body()))
    task = course.tasks[0]
    entries = build_submission_write(task.resource, SubmissionInput(
        submitted_on=date(2026, 6, 17), submitted_by="Sam Rivera, RN", practitioner_id="dr1"),
        now=NOW)
    bundle = build_transaction(entries).model_dump(mode="json", exclude_none=True)
    update = bundle["entry"][0]
    assert update["request"] == {
        "method": "PUT", "url": "Task?identifier=http://ketamine-screen.example.org/fhir/"
                                "identifier/session|Patient/p1/session/S-0001/rems-form"}
    body = update["resource"]
    assert (body["status"], body["owner"], body["executionPeriod"]) == (
        "completed", {"display": "Sam Rivera, RN"}, {"end": "2026-06-17"})
    assert "id" not in body and body["focus"] == task.resource["focus"]
    provenance = bundle["entry"][1]["resource"]
    assert provenance["activity"]["coding"][0]["code"] == "UPDATE"
    assert bundle["entry"][1]["request"]["ifNoneExist"].endswith(
        "/rems-form/submitted/2026-06-17")


def test_integration_session_is_a_psychotherapy_procedure_for_the_dosing_session() -> None:
    entries = build_integration_write(IntegrationInput(
        integration_id="i1", patient_id="p1", practitioner_id="dr1", start=T, minutes=50,
        modality="group-telehealth", clinician="Dr Chen", note="private words",
        follows="Observation/42"), now=NOW)
    procedure = entries[0].resource.model_dump(mode="json", exclude_none=True)
    assert procedure["code"]["coding"][0] == {"system": "http://snomed.info/sct",
                                              "code": "75516001", "display": "Psychotherapy"}
    assert procedure["category"]["coding"][0] == {"system": CS_SESSION,
                                                  "code": "group-telehealth",
                                                  "display": "Group, telehealth"}
    assert procedure["performedPeriod"] == {"start": "2026-06-01T09:00:00Z",
                                            "end": "2026-06-01T09:50:00Z"}
    assert procedure["reasonReference"][0]["reference"] == "Observation/42"
    assert procedure["recorder"] == {"reference": "Practitioner/dr1"}
    assert procedure["note"] == [{"text": "private words"}]
    with pytest.raises(ValueError, match="follows"):
        IntegrationInput(integration_id="i1", patient_id="p1", start=T, minutes=50,
                         modality="individual", clinician="x", follows="Condition/1")


def test_phq9_is_a_questionnaire_response_and_a_total_observation() -> None:
    phq9 = Phq9Input(response_id="r1", patient_id="p1", answered_at=T,
                     answers=[3, 3, 2, 2, 1, 1, 0, 0, 3])
    entries = build_phq9_write(phq9, now=NOW)
    assert [e.resource_type for e in entries] == [
        "QuestionnaireResponse", "Observation", "Provenance"]
    response = entries[0].resource.model_dump(mode="json", exclude_none=True)
    assert response["questionnaire"] == "http://loinc.org/q/44249-1"
    assert [i["linkId"] for i in response["item"]] == [
        "44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5",
        "44253-3", "44260-8", "44261-6"]
    assert response["item"][0]["answer"][0]["valueCoding"]["code"] == "LA6571-9"
    assert response["item"][-1]["answer"] == [{"valueInteger": 15}]
    total = entries[1].resource.model_dump(mode="json", exclude_none=True)
    assert (total["code"]["coding"][0]["code"], total["valueInteger"]) == ("44261-6", 15)
    assert total["derivedFrom"] == [{"reference": entries[0].full_url}]
    with pytest.raises(ValueError, match="at least 9"):
        Phq9Input(response_id="r1", patient_id="p1", answered_at=T, answers=[1] * 8)


@pytest.mark.parametrize(("scores", "response", "remission"), [
    ([20, 10], True, False),   # exactly 50% below
    ([20, 11], False, False),
    ([20, 4], True, True),
    ([6, 4], False, True),     # remission without response
    ([20], False, False),      # nothing to compare yet
])
def test_outcome_response_and_remission(scores: list[int], response: bool,
                                        remission: bool) -> None:
    points = [(T + timedelta(days=14 * n), float(s)) for n, s in enumerate(scores)]
    outcome = phq9_outcome(points, T + timedelta(hours=1))
    assert outcome is not None
    assert (outcome.response, outcome.remission) == (response, remission)
    assert outcome.baseline == points[0]


def test_the_baseline_is_the_last_total_before_the_first_dose() -> None:
    points = [(T, 24.0), (T + timedelta(days=7), 20.0), (T + timedelta(days=30), 9.0)]
    outcome = phq9_outcome(points, T + timedelta(days=8))
    assert outcome is not None and outcome.baseline == points[1]
    assert outcome.words() == ("Baseline PHQ-9 20 on 2026-06-08; latest 9 on 2026-07-01 "
                               "(55% below baseline): response; not in remission "
                               "(PHQ-9 below 5).")
    chart = phq9_chart(points, outcome=outcome)
    assert 'data-value="20"' in chart.svg and 'data-value="10"' in chart.svg
    assert "remission &lt; 5" in chart.svg and "response \u2264 10" in chart.svg
    assert phq9_outcome([], None) is None


def test_the_course_reads_back_and_prints_in_the_forms_order() -> None:
    session = SessionInput.model_validate(session_body())
    course = _course(session)
    record = course.sessions[0]
    assert (record.session_id, record.product, record.code("route")) == (
        "S-0001", "esketamine", "intranasal")
    assert record.ref == f"Observation/{build_session_write(session).entries[0].full_url[-12:]}"
    sections = print_sections(record)
    assert [s.heading for s in sections] == [
        "Session", "Concomitant medications", "Vitals before dosing", "Dose",
        "Vitals at about 40 minutes",
        "Sedation, dissociation, respiratory depression and adverse events",
        "Vitals at discharge", "Discharge"]
    rows = {label: value for s in sections for label, value in s.rows}
    assert rows["Lot number"] == "LOT-24A117"
    assert rows["Benzodiazepines"] == "Yes" and rows["Psychostimulants"] == "No"
    assert rows["Monitoring clinician"] == "Sam Rivera, RN"
    assert rows["Lowest SpO2"] == "94%" and rows["Respiratory depression observed"] == "No"
    assert rows["Would have been ready to leave at"] == "11:00"
    assert rows["Adverse events"] == "Dissociation; transient metallic taste"
    assert rows["Total monitoring time"] == "125 minutes"


def test_due_list_marks_forms_past_the_window_overdue() -> None:
    course = _course(SessionInput.model_validate(session_body()),
                     SessionInput.model_validate(session_body(session_id="S-0002")))
    done = build_submission_write(course.tasks[1].resource, SubmissionInput(
        submitted_on=date(2026, 6, 16), submitted_by="Sam"), now=NOW)[0]
    course.tasks[1] = read_course_records(
        {"tasks": [{**done.resource.model_dump(mode="json", exclude_none=True), "id": "t"}]},
        []).tasks[0]
    on_time = due_rows(course, date(2026, 6, 22))
    assert [(r.session_id, r.state) for r in on_time] == [("S-0001", "due"),
                                                          ("S-0002", "submitted")]
    assert on_time[1].submitted == "2026-06-16 by Sam"
    assert [r.state for r in due_rows(course, date(2026, 6, 23))] == ["overdue", "submitted"]


def test_timeline_flags_a_dosing_session_without_integration_in_the_window() -> None:
    first = SessionInput.model_validate(session_body())
    course = _course(first)
    follows = course.sessions[0].ref or ""
    procedure = _resolved(build_integration_write(IntegrationInput(
        integration_id="i1", patient_id="p1", start=DOSE + timedelta(days=3), minutes=45,
        modality="individual", clinician="Dr Chen", follows=follows), now=NOW))[0]
    within = timeline(course, DOSE + timedelta(days=30), 7)
    assert [(e.kind, e.flag) for e in within] == [
        ("dosing", "No integration session within 7 days")]
    waiting = timeline(course, DOSE + timedelta(days=2), 7)
    assert "integration session expected by 2026-06-22" in waiting[0].detail
    with_one = _course(first, extra=[procedure])
    events = timeline(with_one, DOSE + timedelta(days=30), 7)
    assert [(e.kind, e.flag) for e in events] == [("dosing", ""), ("integration", "")]
    assert "integration session on 2026-06-18" in events[0].detail
    assert events[1].detail == "45 minutes with Dr Chen"
    assert with_one.integrations[0].follows == follows
    narrow = timeline(with_one, DOSE + timedelta(days=30), 2)
    assert (narrow[0].kind, narrow[0].flag) == ("dosing", "No integration session within 2 days")


def test_banner_shows_the_mrn_and_the_age() -> None:
    patient = {"birthDate": "1970-12-10", "identifier": [
        {"system": "urn:x", "value": "other"},
        {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                              "code": "MR"}]}, "value": "MRN-1"},
        {"use": "usual", "type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
         "value": "MRN-2"}]}
    shown = banner(patient, "p1", today=date(2026, 12, 9))
    assert (shown.mrn, shown.age) == ("MRN-2", "55")
    assert banner(patient, "p1", today=date(2026, 12, 10)).age == "56"
    assert (banner({}, "p1").mrn, banner({"birthDate": "19"}, "p1").age) == (
        "not recorded", "not recorded")


def test_screening_results_written_by_the_app_are_on_the_timeline() -> None:
    result = {"resourceType": "Observation", "id": "s1", "status": "final",
              "code": {"coding": [{"system": CS_SCREENING, "code": "screening-result"}]},
              "effectiveDateTime": "2026-06-01T09:00:00Z",
              "valueCodeableConcept": {"coding": [{"system": CS_SCREENING, "code": "suitable",
                                                   "display": "Suitable"}]}}
    withdrawn = {**result, "id": "s2", "status": "entered-in-error"}
    course = read_course_records(split_resources([result, withdrawn]), [])
    assert [(s.ref, s.verdict) for s in course.screenings] == [("Observation/s1", "Suitable")]
    assert [(e.kind, e.title) for e in timeline(course, NOW, 7)] == [
        ("screening", "Screening: Suitable")]
