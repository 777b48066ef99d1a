"""The clinic's treatment course end to end, in Chromium, against real parts: the EHR is the SMART
test server in front of the HAPI sandbox, the app runs under uvicorn, and every step is done with
the keyboard alone.

A nurse documents a Spravato session answering every REMS form item (the concomitant medications
come pre-filled from the screen, product, dose and route from the last session), prints it (and
its PDF, rendered to an image), marks its REMS form submitted, sees it on the due list (beside an
older session's overdue form), links an integration session to it, enters a PHQ-9 and sees the
timeline. Then the resources are read back from HAPI and checked item by item. At 420 and 1024 px,
with axe-core on every page and screenshots in ``test-artifacts/``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from service.fhir.codesystems import CS_SESSION
from service.main import create_app
from service.render.integration import INTEGRATION_SYSTEM
from service.render.phq9 import PHQ9_SYSTEM
from service.render.session import SESSION_SYSTEM, build_session_write
from service.render.session_input import SessionInput
from tests.auth.conftest import CLIENT_ID, CLIENT_SECRET
from tests.auth.smart_grants import Client
from tests.auth.smart_server import SmartTestServer
from tests.render.test_session import session_body
from tests.servers import ThreadServer, free_port
from tests.ui.browser_tools import (
    ARTIFACTS,
    WIDTHS,
    axe_check,
    key_fill,
    key_submit,
    keyboard_walk,
    no_horizontal_scroll,
    shot,
    tab_to,
)
from tests.ui.conftest import demo_settings
from tests.ui.fhir_seed import FHIR_JSON, Seeded, seed_patient

pytestmark = [pytest.mark.integration, pytest.mark.browser]

FORM = {  # what the nurse types, in the form's order (dates stay today's default)
    "setting": "Lakeside Clinic", "monitoring_clinician": "Sam Rivera, RN",
    "concomitant.benzodiazepines": "yes", "concomitant.sedative-hypnotics": "no",
    "concomitant.psychostimulants": "no", "concomitant.maois": "no",
    "pre_dose.time": "09:00", "pre_dose.systolic": "128", "pre_dose.diastolic": "82",
    "pre_dose.heart_rate": "72", "pre_dose.spo2": "98", "vitals_ok_pre_dose": "yes",
    "product": "esketamine", "route": "intranasal", "dose_preset": "84", "dose_time": "09:10",
    "lot_number": "LOT-25B204",
    "at_40_min.time": "09:50", "at_40_min.systolic": "150", "at_40_min.diastolic": "92",
    "at_40_min.heart_rate": "84", "at_40_min.spo2": "96",
    "moaas": "4", "cadss_total": "14", "respiratory_depression": "no", "lowest_spo2": "94",
    "ae": "on",
    "discharge.time": "11:15", "discharge.systolic": "130", "discharge.diastolic": "80",
    "discharge.heart_rate": "70", "discharge.spo2": "97", "vitals_ok_end": "yes",
    "monitoring_minutes": "125", "ready_to_leave": "yes", "ready_time": "11:10",
}
PHQ9 = [1, 1, 1, 1, 1, 1, 0, 0, 0]


@dataclass
class World:
    ehr: SmartTestServer
    origin: str
    fhir: str
    seeded: Seeded


def _old_session(pid: str) -> SessionInput:
    """An esketamine session ten days ago whose REMS form was never submitted."""
    dose = (datetime.now(UTC) - timedelta(days=10)).replace(hour=9, minute=0, second=0,
                                                            microsecond=0)
    body = session_body(patient_id=pid, practitioner_id=None, session_id="s-old",
                        dose_at=dose.isoformat(), ready_at=(dose + timedelta(minutes=120))
                        .isoformat())
    for step, minutes in (("pre_dose", -10), ("at_40_min", 40), ("discharge", 125)):
        body[step] = {**body[step], "at": (dose + timedelta(minutes=minutes)).isoformat()}
    return SessionInput.model_validate(body)


@pytest.fixture(params=WIDTHS, ids=lambda w: f"{w}px")
def world(request: pytest.FixtureRequest, fhir_base_url: str,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, World]]:
    monkeypatch.delenv("KETAMINE_DEMO", raising=False)
    seeded = seed_patient(fhir_base_url, f"course-{uuid.uuid4().hex[:10]}")
    # The older session, written as the app writes one (its transaction), before the browser.
    bundle = build_session_write(_old_session(seeded.patient)).bundle()
    answer = httpx.post(fhir_base_url, content=bundle.model_dump_json(exclude_none=True),
                        headers=FHIR_JSON, timeout=60)
    assert answer.status_code == 200, answer.text
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    ehr = SmartTestServer(fhir_upstream=fhir_base_url)
    ehr.state.practitioner = f"Practitioner/{seeded.practitioner}"
    ehr.register_client(Client(CLIENT_ID, [f"{origin}/callback"], secret=CLIENT_SECRET))
    ehr.start()
    app = ThreadServer(create_app(demo_settings(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, allowed_issuers=[ehr.fhir_base],
        redirect_uri=f"{origin}/callback", cookie_secure=True)), port=port).start()
    yield request.param, World(ehr, origin, fhir_base_url, seeded)
    app.stop()
    ehr.stop()


def _page_checks(page: Any, name: str) -> None:
    no_horizontal_scroll(page)
    axe_check(page, name)
    keyboard_walk(page)
    shot(page, f"{name}.png")


def _follow(page: Any, text: str) -> None:
    """Tab from the top to the link with this text and press Enter (a keyboard user's click)."""
    link = page.get_by_role("link", name=text, exact=True).first
    link.evaluate("e => { e.setAttribute('data-target', '1'); }")
    page.evaluate("""() => { const b = document.body; b.setAttribute('tabindex', '-1');
        b.focus(); b.removeAttribute('tabindex'); }""")
    tab_to(page, "[data-target='1']")
    with page.expect_navigation():
        page.keyboard.press("Enter")


def _search(fhir: str, kind: str, **params: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{fhir}/{kind}", params=params,
                       headers={**FHIR_JSON, "Cache-Control": "no-cache"}, timeout=60)
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry", [])]


def _pdf_checked(page: Any, width: int) -> None:
    """The print view as a PDF (the browser's print), rendered to an image and read as text."""
    pdf = ARTIFACTS / f"course-print-{width}.pdf"
    page.emulate_media(media="print")
    page.pdf(path=str(pdf), format="A4", print_background=True)
    page.emulate_media(media="screen")
    for tool in ("pdftoppm", "pdftotext"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing: `make browser` installs Debian's poppler-utils")
    subprocess.run(["pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "1", str(pdf),
                    str(ARTIFACTS / f"course-print-{width}-pdf")], check=True)
    image = ARTIFACTS / f"course-print-{width}-pdf-1.png"
    assert image.stat().st_size > 10_000
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout
    for expected in ("Spravato REMS Patient Monitoring Form", "LOT-25B204", "Lowest SpO2",
                     "Sam Rivera, RN", "Lakeside Clinic", "84 mg", "MRN", "125 minutes"):
        assert expected in text, expected
    for hidden in ("Mark this REMS form submitted", "Screening", "Demo"):
        assert hidden not in text, hidden  # the print stylesheet leaves the app's chrome out


def test_a_spravato_session_from_form_to_chart(browser: Any, world: tuple[int, World]) -> None:
    width, w = world
    pid = w.seeded.patient
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-GB")
    page = context.new_page()
    name = f"course-{width}"
    try:
        page.goto(f"{w.ehr.base_url}/ehr?app={w.origin}/launch&patient={pid}")
        page.wait_for_selector("#patient-id", timeout=60_000)
        assert page.inner_text("#banner-mrn") == f"MRN-{pid[-6:]}"
        assert page.inner_text("#banner-age") == str(
            datetime.now(UTC).year - 1970 - ((datetime.now(UTC).month, datetime.now(UTC).day)
                                             < (12, 10)))

        # -- The screening, saved to the chart (the timeline shows it) ---------------------------
        key_submit(page, "form[action^='/app/save'] button")
        page.wait_for_selector("text=Screening result saved")

        # -- The session form, pre-filled, answered by keyboard --------------------------------
        _follow(page, "Document a session")
        page.wait_for_selector("#session-form")
        checked = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
            "input[type=radio]:checked")].map(e => [e.name, e.value]))""")
        assert checked["concomitant.benzodiazepines"] == "yes"  # diazepam, from the screen
        assert checked["concomitant.maois"] == "no"
        assert (checked["product"], checked["dose_preset"]) == ("esketamine", "56")  # last one
        assert page.input_value("#f-route") == "intranasal"
        assert "diazepam" in page.inner_text("#f-concomitant-benzodiazepines-hint")
        _page_checks(page, f"{name}-session-form")
        for field, value in FORM.items():
            key_fill(page, field, value)
        assert page.input_value("#f-dose_mg") == "84"  # the preset filled the dose
        key_submit(page, "button[type=submit]")
        page.wait_for_selector("text=Treatment session recorded")
        assert "Warnings" not in page.inner_text("main")
        _page_checks(page, f"{name}-session-saved")

        # -- Print it, and its PDF --------------------------------------------------------------
        _follow(page, "Print the REMS form of this session")
        page.wait_for_selector("#print-form")
        rows = dict(page.evaluate("""() => [...document.querySelectorAll('.print-table tr')]
            .map(r => [r.querySelector('th').innerText, r.querySelector('td').innerText])"""))
        assert rows["Lot number"] == "LOT-25B204" and rows["Dose"] == "84 mg"
        assert rows["Benzodiazepines"] == "Yes" and rows["Lowest SpO2"] == "94%"
        assert rows["Would have been ready to leave at"] == "11:10"
        assert rows["Monitoring clinician"] == "Sam Rivera, RN"
        assert page.is_visible("#print-button")  # app.js shows it
        _page_checks(page, f"{name}-print")
        _pdf_checked(page, width)
        session_url = page.url

        # -- The due list: this form due, the older one overdue ---------------------------------
        _follow(page, "REMS forms due")
        due = page.inner_text("#due-table")
        today = datetime.now(UTC).date()
        assert f"{today.isoformat()}\t{(today + timedelta(days=7)).isoformat()}\tDue" in due
        assert "Overdue" in due
        _page_checks(page, f"{name}-rems-due")

        # -- Mark it submitted -----------------------------------------------------------------
        page.goto(session_url)
        key_fill(page, "submitted_by", "Sam Rivera, RN")
        key_submit(page, "#submit-form button")
        page.wait_for_selector("text=REMS form marked submitted")
        _page_checks(page, f"{name}-submitted")
        _follow(page, "REMS forms")
        assert f"{today.isoformat()} by Sam Rivera, RN" in page.inner_text("#done-table")
        assert page.locator("#due-table tr.due-due").count() == 0  # only the overdue one is left
        assert page.locator("#due-table tr.due-overdue").count() == 1

        # -- An integration session that follows it ----------------------------------------------
        page.goto(session_url)
        _follow(page, "Document the integration session that follows it")
        page.wait_for_selector("#integration-form")
        for field, value in (("time", "15:00"), ("minutes", "50"), ("modality", "individual"),
                             ("clinician", "Dr Alex Chen, PsyD"),
                             ("note", "Worked through the imagery of the session.")):
            key_fill(page, field, value)
        _page_checks(page, f"{name}-integration-form")
        key_submit(page, "#integration-form button")
        page.wait_for_selector("text=Integration session recorded")

        # -- A PHQ-9 ----------------------------------------------------------------------------
        _follow(page, "PHQ-9")
        for n, score in enumerate(PHQ9, start=1):
            key_fill(page, f"item_{n}", str(score))
        _page_checks(page, f"{name}-phq9-form")
        key_submit(page, "#phq9-form button")
        page.wait_for_selector(f"text=PHQ-9 recorded: total {sum(PHQ9)}")

        # -- The timeline ----------------------------------------------------------------------
        _follow(page, "Timeline")
        events = page.inner_text("#timeline")
        assert f"integration session on {today.isoformat()}" in events
        assert "REMS form submitted" in events
        assert "No integration session within 7 days" in events  # the older session
        assert "Screening: Contraindicated" in events
        assert f"PHQ-9 total {sum(PHQ9)}" in events and "PHQ-9 total 15 (baseline)" in events
        assert page.inner_text("#outcome").endswith(
            "(60% below baseline): response; not in remission (PHQ-9 below 5).")
        assert page.locator("#phq9-chart line.outcome").count() == 3
        _page_checks(page, f"{name}-timeline")
    finally:
        context.close()
    _read_back(w, today)


def _read_back(w: World, today: Any) -> None:
    """Everything the browser did, as HAPI holds it."""
    pid = w.seeded.patient
    observations = _search(w.fhir, "Observation", patient=f"Patient/{pid}",
                           identifier=f"{SESSION_SYSTEM}|", _count="200")
    items: dict[str, dict[str, Any]] = {}
    for obs in observations:
        value = obs["identifier"][0]["value"]
        if "/session/s-old/" not in value:
            items[value.split("/session/", 1)[1].split("/", 1)[1]] = obs
    assert items["lot-number"]["valueString"] == "LOT-25B204"
    assert items["dose-mg"]["valueQuantity"]["value"] == 84
    answers = {c["code"]["coding"][0]["code"]: c["valueBoolean"]
               for c in items["concomitant-medications"]["component"]}
    assert answers == {"benzodiazepines": True, "sedative-hypnotics": False,
                       "psychostimulants": False, "maois": False}
    assert items["vitals-acceptable-pre-dose"]["valueBoolean"] is True
    assert items["vitals-acceptable-end"]["valueBoolean"] is True
    assert items["ready-to-leave-at"]["valueDateTime"].startswith(f"{today.isoformat()}T11:10")
    assert items["respiratory-depression-observed"]["valueBoolean"] is False
    assert items["lowest-spo2"]["valueQuantity"] == {
        "value": 94, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
    assert items["healthcare-setting"]["valueString"] == "Lakeside Clinic"
    performers = items["monitoring-minutes"]["performer"]
    assert {"display": "Sam Rivera, RN"} in performers
    assert {"reference": f"Practitioner/{w.seeded.practitioner}"} in performers
    assert items["monitoring-minutes"]["valueQuantity"]["value"] == 125
    summary = items["session"]
    assert len(summary["hasMember"]) == len(items) - 1
    session_ref = f"Observation/{summary['id']}"

    tasks = _search(w.fhir, "Task", patient=f"Patient/{pid}",
                    code=f"{CS_SESSION}|rems-monitoring-form")
    assert len(tasks) == 2
    mine = next(t for t in tasks if t["focus"]["reference"] == session_ref)
    assert (mine["status"], mine["owner"], mine["executionPeriod"]) == (
        "completed", {"display": "Sam Rivera, RN"}, {"end": today.isoformat()})
    assert mine["restriction"]["period"]["end"].startswith(
        (today + timedelta(days=7)).isoformat())
    assert next(t for t in tasks if t is not mine)["status"] == "requested"

    procedures = _search(w.fhir, "Procedure", patient=f"Patient/{pid}",
                         identifier=f"{INTEGRATION_SYSTEM}|")
    assert len(procedures) == 1
    procedure = procedures[0]
    assert procedure["code"]["coding"][0]["code"] == "75516001"
    assert procedure["category"]["coding"][0]["code"] == "individual"
    assert procedure["reasonReference"][0]["reference"] == session_ref
    assert procedure["performer"] == [{"actor": {"display": "Dr Alex Chen, PsyD"}}]
    assert procedure["note"] == [{"text": "Worked through the imagery of the session."}]
    start = datetime.fromisoformat(procedure["performedPeriod"]["start"])
    end = datetime.fromisoformat(procedure["performedPeriod"]["end"])
    assert end - start == timedelta(minutes=50)

    responses = _search(w.fhir, "QuestionnaireResponse", patient=f"Patient/{pid}")
    assert len(responses) == 1
    response = responses[0]
    assert response["questionnaire"] == "http://loinc.org/q/44249-1"
    assert [i["linkId"] for i in response["item"]][-1] == "44261-6"
    assert response["item"][-1]["answer"] == [{"valueInteger": sum(PHQ9)}]
    assert [i["answer"][0]["valueCoding"]["code"] for i in response["item"][:9]] == [
        "LA6569-3"] * 6 + ["LA6568-5"] * 3
    totals = _search(w.fhir, "Observation", patient=f"Patient/{pid}",
                     identifier=f"{PHQ9_SYSTEM}|")
    assert [(t["code"]["coding"][0]["code"], t["valueInteger"]) for t in totals] == [
        ("44261-6", sum(PHQ9))]
    assert totals[0]["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{response['id']}"}]
    (ARTIFACTS / f"course-readback-{pid}.json").write_text(json.dumps(
        {"task": mine, "procedure": procedure, "questionnaire_response": response},
        indent=1), encoding="utf-8")
