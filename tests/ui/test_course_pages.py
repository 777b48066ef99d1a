"""The treatment course pages in demo mode, through FastAPI's TestClient (no browser): what each
shows of the demo patient in treatment, and what each form would write."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.ui.conftest import csrf_of, open_demo

PATIENT = "demo-in-treatment"


def _bundle(page: str) -> dict[str, Any]:
    found = re.search(r'<pre class="bundle"[^>]*>(.*?)</pre>', page, re.S)
    assert found, "no transaction shown"
    data: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return data


def _get(client: TestClient, ctx: str, path: str, **params: str) -> str:
    page = client.get(path, params={"ctx": ctx, **params})
    assert page.status_code == 200, page.text
    return page.text


def test_the_print_view_lists_the_rems_items_with_patient_and_clinician(
        demo_client: TestClient) -> None:
    ctx = open_demo(demo_client, PATIENT)
    page = _get(demo_client, ctx, "/app/session/s-2026-11-23/print")
    assert "<dt>MRN</dt><dd>MRN-20417</dd>" in page
    assert "<dt>Monitoring clinician</dt><dd>Sam Rivera, RN</dd>" in page
    assert '<dd id="rems-status">due by 2026-11-30</dd>' in page
    for row in ("<th scope=\"row\">Lot number</th><td>LOT-24A117</td>",
                "<th scope=\"row\">Benzodiazepines</th><td>No</td>",
                "<th scope=\"row\">Lowest SpO2</th><td>95%</td>",
                "<th scope=\"row\">Would have been ready to leave at</th><td>11:10</td>"):
        assert row in page
    assert page.index("Concomitant medications") < page.index("Lot number") < page.index(
        "Total monitoring time")  # the form's order
    assert 'href="/static/print.css" media="print"' in page
    assert 'id="submit-form"' in page
    submitted = _get(demo_client, ctx, "/app/session/s-2026-11-16/print")
    assert "submitted 2026-11-17 by Sam Rivera, RN" in submitted
    assert 'id="submit-form"' not in submitted
    missing = demo_client.get("/app/session/s-none/print", params={"ctx": ctx})
    assert missing.status_code == 404 and "No session with this identifier" in missing.text


def test_marking_submitted_needs_the_csrf_token_and_a_name(demo_client: TestClient) -> None:
    ctx = open_demo(demo_client, PATIENT)
    page = _get(demo_client, ctx, "/app/session/s-2026-11-23/print")
    url = "/app/session/s-2026-11-23/submitted"
    refused = demo_client.post(url, params={"ctx": ctx},
                               data={"submitted_on": "2026-11-27", "submitted_by": "Sam"})
    assert refused.status_code == 403
    unnamed = demo_client.post(url, params={"ctx": ctx}, data={
        "csrf": csrf_of(page), "submitted_on": "2026-11-27", "submitted_by": " "})
    assert unnamed.status_code == 422
    assert "Enter who submitted the form." in unnamed.text
    assert 'value="2026-11-27"' in unnamed.text  # kept as typed
    early = demo_client.post(url, params={"ctx": ctx}, data={
        "csrf": csrf_of(page), "submitted_on": "2026-11-20", "submitted_by": "Sam"})
    assert early.status_code == 422
    assert "cannot have been submitted before the session (2026-11-23)" in early.text
    future = demo_client.post(url, params={"ctx": ctx}, data={
        "csrf": csrf_of(page), "submitted_on": "2026-11-28", "submitted_by": "Sam"})
    assert "cannot be in the future" in future.text  # the demo's today is 2026-11-27
    done = demo_client.post(url, params={"ctx": ctx}, data={
        "csrf": csrf_of(page), "submitted_on": "2026-11-27", "submitted_by": "Sam Rivera"})
    assert done.status_code == 200 and "REMS form marked submitted" in done.text
    bundle = _bundle(done.text)
    task = bundle["entry"][0]
    assert task["request"]["method"] == "PUT"
    assert task["request"]["url"].endswith("|Patient/demo-in-treatment/session/s-2026-11-23/"
                                           "rems-form")
    assert (task["resource"]["status"], task["resource"]["owner"]["display"]) == (
        "completed", "Sam Rivera")
    ketamine_free = demo_client.post("/app/session/s-none/submitted", params={"ctx": ctx},
                                     data={"csrf": csrf_of(page), "submitted_on": "2026-11-27",
                                           "submitted_by": "Sam"})
    assert ketamine_free.status_code == 404


def test_the_due_list_as_of_the_demo_date(demo_client: TestClient) -> None:
    page = _get(demo_client, open_demo(demo_client, PATIENT), "/app/rems")
    assert "To submit (1)" in page and "Submitted (2)" in page
    assert re.search(r'<tr class="due-due"><th scope="row"><a href="/app/session/s-2026-11-23/'
                     r'print\?ctx=[^"]+">2026-11-23</a></th><td>2026-11-30</td>', page)
    assert "2026-10-02 by Sam Rivera, RN" in page


def test_the_timeline_shows_gaps_and_the_outcome(demo_client: TestClient) -> None:
    page = _get(demo_client, open_demo(demo_client, PATIENT), "/app/timeline")
    assert page.count("event-dosing") == 3 and page.count("event-integration") == 1
    assert page.count("No integration session within 7 days") == 1  # the 2026-09-29 session
    assert "integration session on 2026-11-18" in page
    assert ("Baseline PHQ-9 22 on 2026-09-28; latest 9 on 2026-11-23 (59% below baseline): "
            "response; not in remission (PHQ-9 below 5).") in page
    assert 'class="outcome outcome-response" data-value="11"' in page


def test_the_screening_page_draws_the_outcome_too(demo_client: TestClient) -> None:
    page = _get(demo_client, open_demo(demo_client, PATIENT), "/app")
    assert 'class="outcome outcome-baseline" data-value="22"' in page
    assert '<p class="outcome" id="outcome">Baseline PHQ-9 22' in page
    assert '<dd id="banner-mrn">MRN-20417</dd>' in page


def test_the_session_form_starts_from_the_last_session_and_the_screen(
        demo_client: TestClient) -> None:
    page = _get(demo_client, open_demo(demo_client, PATIENT, "session"), "/app/session")
    assert re.search(r'name="product" value="esketamine" checked', page)
    assert re.search(r'name="dose_preset" value="56" checked', page)
    assert '<option value="intranasal" selected>' in page
    assert 'value="Lakeside Clinic (REMS-certified)"' in page
    assert re.search(r'name="concomitant.benzodiazepines" value="no" checked', page)
    lorazepam = _get(demo_client, open_demo(demo_client, "demo-needs-review", "session"),
                     "/app/session")
    assert re.search(r'name="concomitant.benzodiazepines" value="yes" checked', lorazepam)
    assert "Pre-filled from the screen: lorazepam 1 MG Oral Tablet." in lorazepam
    assert not re.search(r'name="product" value="[a-z]+" checked', lorazepam)  # no session yet


def test_an_integration_session_links_to_its_dosing_session(demo_client: TestClient) -> None:
    ctx = open_demo(demo_client, PATIENT)
    form = _get(demo_client, ctx, "/app/integration", follows="s-2026-11-23")
    assert '<option value="s-2026-11-23" selected>2026-11-23: Esketamine (Spravato)' in form
    typed = {"csrf": csrf_of(form), "integration_id": "i-1", "follows": "s-2026-11-23",
             "date": "2026-11-25", "time": "15:00", "tz": "Europe/Zurich", "minutes": "50",
             "modality": "individual-telehealth", "clinician": "Dr Alex Chen",
             "note": "a private note"}
    wrong = demo_client.post("/app/integration", params={"ctx": ctx},
                             data={**typed, "minutes": "2", "modality": ""})
    assert wrong.status_code == 422
    assert "Enter the duration in whole minutes, from 5 to 480." in wrong.text
    assert "Choose how the session was held." in wrong.text
    assert "a private note</textarea>" in wrong.text
    saved = demo_client.post("/app/integration", params={"ctx": ctx}, data=typed)
    assert saved.status_code == 200, saved.text
    procedure = _bundle(saved.text)["entry"][0]["resource"]
    assert procedure["reasonReference"][0]["reference"] == (
        "Observation/demo-in-treatment-s-2026-11-23-session")
    assert procedure["performedPeriod"] == {"start": "2026-11-25T15:00:00+01:00",
                                            "end": "2026-11-25T15:50:00+01:00"}


@pytest.mark.parametrize("answers", [["0", "1", "2", "3", "0", "1", "2", "3", "0"]])
def test_a_phq9_is_entered_and_totalled(demo_client: TestClient, answers: list[str]) -> None:
    ctx = open_demo(demo_client, PATIENT)
    form = _get(demo_client, ctx, "/app/phq9")
    assert form.count('type="radio"') == 36
    base = {"csrf": csrf_of(form), "response_id": "q-1", "date": "2026-11-27", "tz": "UTC"}
    partial = demo_client.post("/app/phq9", params={"ctx": ctx},
                               data={**base, "item_1": "2", "item_9": "1"})
    assert partial.status_code == 422
    assert "Choose an answer to question 2." in partial.text
    assert re.search(r'name="item_1" value="2" checked', partial.text)
    done = demo_client.post("/app/phq9", params={"ctx": ctx}, data={
        **base, **{f"item_{n}": a for n, a in enumerate(answers, start=1)}})
    assert done.status_code == 200 and "PHQ-9 recorded: total 12" in done.text
    kinds = [e["resource"]["resourceType"] for e in _bundle(done.text)["entry"]]
    assert kinds == ["QuestionnaireResponse", "Observation", "Provenance"]


@pytest.mark.parametrize("path", ["/app/rems", "/app/timeline", "/app/phq9", "/app/integration",
                                  "/app/session/s-1/print"])
def test_course_pages_need_a_launch(demo_client: TestClient, path: str) -> None:
    resp = demo_client.get(path, params={"ctx": "made-up"}, headers={"Accept": "text/html"})
    assert resp.status_code == 401


@pytest.mark.parametrize("path", ["/app/phq9", "/app/integration", "/app/session/s-1/submitted"])
def test_course_forms_need_the_csrf_token(demo_client: TestClient, path: str) -> None:
    ctx = open_demo(demo_client, PATIENT)
    assert demo_client.post(path, params={"ctx": ctx}, data={"csrf": "0" * 64}).status_code == 403
