"""The clinician's pages in demo mode, through FastAPI's TestClient (no browser)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.ui.conftest import VALID_SESSION, csrf_of, demo_settings, open_demo

VERDICTS = {
    "demo-suitable": ("verdict-suitable", "Suitable"),
    "demo-contraindicated": ("verdict-contraindicated", "Contraindicated"),
    "demo-needs-review": ("verdict-needs-review", "Needs review"),
    "demo-insufficient": ("verdict-insufficient-data", "Insufficient data"),
}


class Inputs(HTMLParser):
    """Form controls, labels and ids of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "label" and a.get("for"):
            self.label_for.add(str(a["for"]))
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append(a)


def parse(html: str) -> Inputs:
    parser = Inputs()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("patient", sorted(VERDICTS))
def test_screening_page_shows_the_verdict_first_in_words_and_colour(
        demo_client: TestClient, patient: str) -> None:
    ctx = open_demo(demo_client, patient)
    page = demo_client.get("/app", params={"ctx": ctx})
    assert page.status_code == 200
    css, word = VERDICTS[patient]
    assert f'class="verdict {css}"' in page.text
    assert f"<span id='verdict'>{word}</span>" in page.text
    assert f"<span id='patient-id'>{patient}</span>" in page.text
    main = page.text.split('<main id="main">', 1)[1]
    assert main.index("id='verdict'") < main.index("Save to chart")
    assert '<html lang="en">' in page.text and 'id="patient-banner"' in page.text
    assert "style=" not in page.text and "<script>" not in page.text  # CSP-friendly


def test_findings_are_grouped_with_records_sources_and_actions(demo_client: TestClient) -> None:
    page = demo_client.get("/app", params={"ctx": open_demo(demo_client,
                                                            "demo-contraindicated")}).text
    assert "Contraindications (2)" in page
    assert "(Condition/demo-contraindicated-c1)</span>, recorded 2024-05-01" in page
    assert "<dt>Source</dt><dd>SPRAVATO-PI Contraindications</dd>" in page
    missing = demo_client.get("/app", params={"ctx": open_demo(demo_client,
                                                               "demo-insufficient")}).text
    assert "Missing data (1)" in missing and "<dt>What to collect</dt>" in missing
    assert "Record a blood pressure before dosing" in missing
    review = demo_client.get("/app", params={"ctx": open_demo(demo_client,
                                                              "demo-needs-review")}).text
    assert "Drug interactions" in review and "<dt>Management</dt>" in review


def test_banner_is_left_out_when_the_ehr_shows_its_own(demo_client: TestClient) -> None:
    ctx = open_demo(demo_client, "demo-suitable", banner="0")
    page = demo_client.get("/app", params={"ctx": ctx}).text
    assert 'id="patient-banner"' not in page
    assert "<span id='patient-id'>demo-suitable</span>" in page


def test_treatment_history_charts(demo_client: TestClient) -> None:
    page = demo_client.get("/app", params={"ctx": open_demo(demo_client,
                                                            "demo-in-treatment")}).text
    assert 'id="phq9-chart"' in page and 'id="bp-chart"' in page
    assert "<caption>PHQ-9 totals</caption>" in page
    assert '<th scope="row">28 Sep 2026</th><td>22</td>' in page
    assert '<th scope="row">~40 min</th><td>09:50</td><td>152</td><td>94</td>' in page
    plain = demo_client.get("/app", params={"ctx": open_demo(demo_client, "demo-suitable")}).text
    assert "No PHQ-9 total scores" in plain and "No treatment session recorded" in plain


def test_save_to_chart_needs_the_csrf_token_of_this_launch(demo_client: TestClient) -> None:
    ctx = open_demo(demo_client, "demo-contraindicated")
    page = demo_client.get("/app", params={"ctx": ctx}).text
    as_of = re.search(r'name="as_of" value="([^"]+)"', page)
    assert as_of
    for token in ("", "0" * 64, csrf_of(demo_client.get(
            "/app", params={"ctx": open_demo(demo_client, "demo-contraindicated")}).text)):
        refused = demo_client.post("/app/save", params={"ctx": ctx},
                                   data={"csrf": token, "as_of": as_of.group(1)})
        assert refused.status_code == 403, token
        assert "did not come from this app" in refused.text
    saved = demo_client.post("/app/save", params={"ctx": ctx},
                             data={"csrf": csrf_of(page), "as_of": as_of.group(1)})
    assert saved.status_code == 200
    bundle = re.search(r'<pre class="bundle"[^>]*>(.*?)</pre>', saved.text, re.S)
    assert bundle
    data = json.loads(bundle.group(1).replace("&#34;", '"').replace("&quot;", '"')
                      .replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">")
                      .replace("&amp;", "&"))
    assert data["type"] == "transaction"
    kinds = [e["resource"]["resourceType"] for e in data["entry"]]
    assert kinds.count("DetectedIssue") == 2 and "Provenance" in kinds
    assert "Verdict saved: <strong>Contraindicated</strong>" in saved.text


def test_session_form_labels_every_control(demo_client: TestClient) -> None:
    page = demo_client.get("/app/session", params={"ctx": open_demo(demo_client,
                                                                    "demo-suitable", "session")})
    assert page.status_code == 200
    found = parse(page.text)
    assert len(found.controls) > 25
    unlabelled = [c.get("id") for c in found.controls if c.get("id") not in found.label_for]
    assert unlabelled == []
    for level in ("5: Responds readily", "0: No response after painful trapezius squeeze"):
        assert level in page.text
    for ae in ("Nausea", "Vomiting", "Dizziness", "Hypertension", "Dissociation beyond",
               "Sedation", "Headache", "Anxiety", "Other"):
        assert ae in page.text


def test_invalid_session_keeps_every_value_and_explains_each_field(
        demo_client: TestClient) -> None:
    ctx = open_demo(demo_client, "demo-suitable", "session")
    form = demo_client.get("/app/session", params={"ctx": ctx}).text
    typed = {**VALID_SESSION, "csrf": csrf_of(form), "session_id": "s-test1",
             "pre_dose.systolic": "300", "at_40_min.heart_rate": "abc",
             "discharge.diastolic": "", "ae_other_text": "tingling lips"}
    resp = demo_client.post("/app/session", params={"ctx": ctx},
                            data={**typed, "ae": ["nausea", "other"]})
    assert resp.status_code == 422
    page = resp.text
    assert "Systolic must be a number from 50 to 260 mmHg." in page
    assert "Heart rate must be a number from 20 to 250 beats/min." in page
    assert "Enter the diastolic (30-160 mmHg)." in page
    assert re.search(r'id="f-pre_dose-systolic" name="pre_dose.systolic"[^>]*value="300"'
                     r'[^>]*aria-describedby="f-pre_dose-systolic-error" aria-invalid="true"', page)
    assert 'id="f-pre_dose-systolic-error"' in page
    assert 'value="abc"' in page and "tingling lips</textarea>" in page
    assert re.search(r'value="nausea" checked', page) and re.search(r'value="other" checked',
                                                                     page)
    assert re.search(r'value="esketamine" checked', page)
    assert '<option value="intranasal" selected>' in page
    assert 'href="#f-pre_dose-systolic"' in page  # the error summary links to the field
    ids = parse(page).ids
    for ref in re.findall(r'aria-describedby="([^"]+)"', page):
        assert all(part in ids for part in ref.split()), ref


def test_cross_field_errors_land_on_a_field(demo_client: TestClient) -> None:
    ctx = open_demo(demo_client, "demo-suitable", "session")
    csrf = csrf_of(demo_client.get("/app/session", params={"ctx": ctx}).text)
    resp = demo_client.post("/app/session", params={"ctx": ctx}, data={
        **VALID_SESSION, "csrf": csrf, "session_id": "s-x", "discharge.diastolic": "135",
        "ae": ["other"]})
    assert resp.status_code == 422
    assert 'id="f-discharge-diastolic-error"' in resp.text
    assert "Diastolic must be lower than systolic." in resp.text
    assert "Describe the other adverse event." in resp.text
    resp = demo_client.post("/app/session", params={"ctx": ctx}, data={
        **VALID_SESSION, "csrf": csrf, "session_id": "s-x", "route": "IV", "dose_time": "08:00"})
    assert "Times must run in order" in resp.text


def test_valid_session_shows_the_transaction_and_the_rems_warning(
        demo_client: TestClient) -> None:
    ctx = open_demo(demo_client, "demo-suitable", "session")
    csrf = csrf_of(demo_client.get("/app/session", params={"ctx": ctx}).text)
    resp = demo_client.post("/app/session", params={"ctx": ctx}, data={
        **VALID_SESSION, "csrf": csrf, "session_id": "s-ok", "monitoring_minutes": "90",
        "ae": ["nausea"]})
    assert resp.status_code == 200, resp.text
    assert "Esketamine needs at least 120 minutes of monitoring (SPRAVATO-REMS)" in resp.text
    assert 'id="bp-chart"' in resp.text and 'data-value="140"' in resp.text
    assert "Patient/demo-suitable/session/s-ok/pre-dose/bp" in resp.text
    assert "transaction" in resp.text


def test_session_post_without_csrf_is_refused(demo_client: TestClient) -> None:
    ctx = open_demo(demo_client, "demo-suitable", "session")
    resp = demo_client.post("/app/session", params={"ctx": ctx},
                            data={**VALID_SESSION, "session_id": "s-1"})
    assert resp.status_code == 403


def test_pages_need_a_launch(demo_client: TestClient) -> None:
    for path in ("/app", "/app/session", "/app/smart-style.css"):
        resp = demo_client.get(path, params={"ctx": "made-up"},
                               headers={"Accept": "text/html"})
        assert resp.status_code == 401, path


def test_demo_routes_do_not_exist_outside_demo_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KETAMINE_DEMO", raising=False)
    with TestClient(create_app(demo_settings())) as client:
        assert client.get("/demo").status_code == 404
        assert client.get("/demo/launch/demo-suitable").status_code == 404
        assert client.get("/static/app.css").status_code == 200


def test_demo_launcher_lists_the_demo_patients(demo_client: TestClient) -> None:
    page = demo_client.get("/demo")
    assert page.status_code == 200
    for patient in [*VERDICTS, "demo-in-treatment"]:
        assert f"/demo/launch/{patient}?to=app" in page.text
        assert f"/demo/launch/{patient}?to=session" in page.text
    assert demo_client.get("/demo/launch/nobody").status_code == 404


def test_static_files_and_security_headers(demo_client: TestClient) -> None:
    css = demo_client.get("/static/app.css")
    assert css.status_code == 200 and ":focus-visible" in css.text
    page = demo_client.get("/app", params={"ctx": open_demo(demo_client, "demo-suitable")})
    assert "frame-ancestors" in page.headers["content-security-policy"]
