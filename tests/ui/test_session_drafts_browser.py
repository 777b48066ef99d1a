"""The visit outlives the EHR's access token (issue 14), in Chromium, against real parts: the EHR
is the SMART test server in front of the HAPI sandbox, the app runs under uvicorn.

A nurse opens the session form at dosing and submits it after the REMS monitoring. "Hours later"
is the EHR expiring its access tokens and the app's stored session saying it was issued 2.5 hours
ago; nothing sleeps. Either the EHR refreshes the token and the session is saved without a new
launch, or it refuses: then the page says the draft is kept and what to do, nothing reaches HAPI,
and the next launch reopens the form with everything typed. Screenshots in ``test-artifacts/``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from service.api.services import services_of
from service.main import create_app
from service.render.session import SESSION_SYSTEM
from service.state import SealedStore
from tests.auth.conftest import CLIENT_ID, CLIENT_SECRET
from tests.auth.smart_grants import Client
from tests.auth.smart_server import SmartTestServer
from tests.servers import ThreadServer, free_port
from tests.ui.browser_tools import axe_check, shot
from tests.ui.conftest import demo_settings
from tests.ui.fhir_seed import Seeded, count, seed_patient

pytestmark = [pytest.mark.integration, pytest.mark.browser]

TWO_AND_A_HALF_HOURS = 2.5 * 3600
TYPED = {  # what the nurse types between dosing and discharge (the date stays today's)
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
    "ae": "nausea", "ae_other_text": "Mild, settled by 10:30",
    "discharge.time": "11:15", "discharge.systolic": "130", "discharge.diastolic": "80",
    "discharge.heart_rate": "70", "discharge.spo2": "97", "vitals_ok_end": "yes",
    "monitoring_minutes": "125", "ready_to_leave": "yes", "ready_time": "11:10",
}
LAST = "ready_time"
"""The last field typed: the autosave waited for is the one whose body carries it."""


@dataclass
class Visit:
    ehr: SmartTestServer
    app: ThreadServer
    origin: str
    fhir: str
    seeded: Seeded

    def on_hapi(self, session_id: str) -> tuple[int, int]:
        """(this session's summary Observations, every session Observation of the patient)."""
        patient = f"Patient/{self.seeded.patient}"
        return (count(self.fhir, "Observation",
                      identifier=f"{SESSION_SYSTEM}|{patient}/session/{session_id}/session"),
                count(self.fhir, "Observation", patient=patient, identifier=f"{SESSION_SYSTEM}|"))

    def launch_url(self) -> str:
        return f"{self.ehr.base_url}/ehr?app={self.origin}/launch&patient={self.seeded.patient}"

    def hours_pass(self) -> None:
        """2.5 hours after the launch: the EHR's tokens have expired, and the app's stored
        sessions say they were issued then (so the app refreshes before it even asks)."""
        self.ehr.expire_access_tokens()
        store = services_of(self.app.config.app).store
        assert isinstance(store, SealedStore)

        async def age() -> None:
            issued = time.time() - TWO_AND_A_HALF_HOURS
            for key in [k for k in store.inner._data if k.startswith("session:")]:  # type: ignore[attr-defined]
                stored = await store.get(key)
                assert stored is not None
                stored.update(issued_at=issued, expires_at=issued + 300)
                await store.put(key, stored, 8 * 3600)

        self.app.call(age())


@pytest.fixture
def visit(fhir_base_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Visit]:
    monkeypatch.delenv("KETAMINE_DEMO", raising=False)
    seeded = seed_patient(fhir_base_url, f"draft-{uuid.uuid4().hex[:10]}")
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    ehr = SmartTestServer(fhir_upstream=fhir_base_url)
    ehr.state.practitioner = f"Practitioner/{seeded.practitioner}"
    ehr.register_client(Client(CLIENT_ID, [f"{origin}/callback"], secret=CLIENT_SECRET))
    ehr.start()
    app = ThreadServer(create_app(demo_settings(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, allowed_issuers=[ehr.fhir_base],
        redirect_uri=f"{origin}/callback", cookie_secure=True)), port=port).start()
    yield Visit(ehr, app, origin, fhir_base_url, seeded)
    app.stop()
    ehr.stop()


def _type(page: Any, name: str, value: str) -> None:
    field = page.locator(f"[name='{name}']").first
    kind = field.evaluate("e => e.tagName === 'INPUT' ? e.type : e.tagName.toLowerCase()")
    if kind == "radio":
        page.check(f"input[name='{name}'][value='{value}']")
    elif kind == "checkbox":
        page.check(f"input[name='{name}'][value='{value}']")
    elif kind == "select":
        page.select_option(f"[name='{name}']", value)
    else:
        field.fill(value)


def _fill_and_autosave(page: Any) -> None:
    """Type every field; wait for the autosave that carries the last one, and its status."""
    for name, value in TYPED.items():
        if name != LAST:
            _type(page, name, value)
    with page.expect_response(lambda r: "/app/session/draft" in r.url
                              and f"{LAST}=11%3A10" in (r.request.post_data or "")) as saved:
        _type(page, LAST, TYPED[LAST])
    assert saved.value.status == 200 and saved.value.json()["saved"] is True
    page.wait_for_selector("#draft-status:has-text('Draft saved on this server at')")


def _form_values(page: Any) -> dict[str, str]:
    return dict(page.evaluate("""() => [...new FormData(document.getElementById('session-form'))
        .entries()].filter(([k]) => k !== 'csrf')"""))


def _open_form(page: Any, visit: Visit) -> None:
    page.goto(visit.launch_url())
    page.wait_for_selector("#patient-id", timeout=60_000)
    page.click("nav a:has-text('Document a session')")
    page.wait_for_selector("#session-form")


def test_a_refused_refresh_keeps_the_draft_and_the_next_launch_restores_it(
        browser: Any, visit: Visit) -> None:
    context = browser.new_context(viewport={"width": 1024, "height": 900}, locale="en-GB")
    page = context.new_page()
    try:
        _open_form(page, visit)
        session_id = page.input_value("input[name='session_id']")
        _fill_and_autosave(page)
        before = visit.on_hapi(session_id)
        assert before[0] == 0
        visit.hours_pass()
        visit.ehr.state.refuse_refresh = True
        try:
            with page.expect_navigation():
                page.click("button[type=submit]")
        finally:
            visit.ehr.state.refuse_refresh = False
        kept = page.inner_text("#draft-kept")
        assert kept.startswith(
            "Your draft is kept on this server for 12 hours. Launch the app again from the "
            "patient's chart to continue; the form will reopen with what you typed.")
        assert "refused to refresh the token" in page.inner_text("#problem")
        axe_check(page, "session-expired-draft-saved")
        shot(page, "session-expired-draft-saved.png")
        assert visit.on_hapi(session_id) == before  # nothing was written
        assert not [r for r in visit.ehr.state.fhir_requests if r[0] == "POST" and r[2]]

        page.goto(visit.launch_url())  # the nurse launches again from the chart
        page.wait_for_selector("#draft-note", timeout=60_000)
        assert page.url.startswith(f"{visit.origin}/app/session?ctx=")
        note = page.inner_text("#draft-note")
        assert note.startswith("A draft from ") and note.endswith(
            " was restored; nothing has been written to the chart yet. Check it and save.")
        restored = _form_values(page)
        assert {name: restored.get(name) for name in TYPED} == TYPED
        assert restored["session_id"] == session_id
        axe_check(page, "session-draft-restored")
        shot(page, "session-draft-restored.png")

        with page.expect_navigation():
            page.click("button[type=submit]")
        page.wait_for_selector("text=Treatment session recorded")
        after = visit.on_hapi(session_id)
        assert after[0] == 1 and after[1] > before[1]

        page.goto(visit.launch_url())  # the draft is gone: the launch opens the screening
        page.wait_for_selector("#patient-id", timeout=60_000)
        assert page.url.startswith(f"{visit.origin}/app?ctx=")
        page.click("nav a:has-text('Document a session')")
        page.wait_for_selector("#session-form")
        assert page.locator("#draft-note").count() == 0
        assert _form_values(page).get("lot_number") == ""
    finally:
        context.close()


def test_a_session_begun_two_and_a_half_hours_after_launch_is_saved_without_relaunching(
        browser: Any, visit: Visit) -> None:
    context = browser.new_context(viewport={"width": 1024, "height": 900}, locale="en-GB")
    page = context.new_page()
    try:
        page.goto(visit.launch_url())
        page.wait_for_selector("#patient-id", timeout=60_000)
        launches = visit.ehr.state.paths.count("/authorize")
        visit.hours_pass()
        page.click("nav a:has-text('Document a session')")
        page.wait_for_selector("#session-form")
        session_id = page.input_value("input[name='session_id']")
        _fill_and_autosave(page)
        with page.expect_navigation():
            page.click("button[type=submit]")
        page.wait_for_selector("text=Treatment session recorded")
        assert "Written to the chart (" in page.inner_text("main")
        shot(page, "session-saved-after-2h30.png")
        assert visit.on_hapi(session_id)[0] == 1
        grants = [r["grant_type"] for r in visit.ehr.state.token_requests]
        assert grants[0] == "authorization_code" and "refresh_token" in grants[1:]
        assert visit.ehr.state.paths.count("/authorize") == launches  # no new launch
    finally:
        context.close()
