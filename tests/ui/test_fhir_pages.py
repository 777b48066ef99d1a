"""The pages on the FHIR path, against real parts: the patient's records sit in the HAPI sandbox,
the app is launched through the SMART test server (tests/auth), and every FHIR read and write goes
through that server's token-checking proxy to HAPI. The proxy refusing a request without a valid
access token, and logging each one, is what proves the reads carry the clinician's token.

Only the failure test mocks the EHR (respx), to inject a 503 and a timeout.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import respx

from service import __version__
from service.api.services import services_of
from service.auth.session import SmartSession, session_key
from service.main import create_app
from service.render.session import SESSION_SYSTEM
from service.render.writeback import APP_NAME
from tests.auth.conftest import (  # importing it also allows authlib plain HTTP on 127.0.0.1
    APP_ORIGIN,
    CLIENT_ID,
    CLIENT_SECRET,
)
from tests.auth.flow import authorize, callback, query
from tests.auth.smart_grants import Client
from tests.auth.smart_server import SmartTestServer
from tests.ui.conftest import VALID_SESSION, csrf_of, demo_settings
from tests.ui.fhir_seed import Seeded, StyleServer, count, seed_patient

SCREENING_SYSTEM = "http://ketamine-screen.example.org/fhir/identifier/screening"
integration = pytest.mark.integration


@pytest.fixture(scope="module")
def seeded(fhir_base_url: str) -> Seeded:
    return seed_patient(fhir_base_url, f"ui-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module")
def style_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StyleServer]:
    server = StyleServer(tmp_path_factory.mktemp("smart-style")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ehr(fhir_base_url: str, seeded: Seeded, style_server: StyleServer) -> Iterator[SmartTestServer]:
    """The SMART test server in front of HAPI; the signed-in user is the seeded practitioner."""
    server = SmartTestServer(fhir_upstream=fhir_base_url)
    server.state.practitioner = f"Practitioner/{seeded.practitioner}"
    server.state.smart_style_url = style_server.url
    server.register_client(Client(CLIENT_ID, [f"{APP_ORIGIN}/callback"], secret=CLIENT_SECRET))
    server.start()
    yield server
    server.stop()


@dataclass
class Launched:
    client: httpx.AsyncClient
    ctx: str
    access_token: str
    ehr: SmartTestServer
    first_request: int
    """Index of this launch's first request in the proxy's log."""

    def fhir_requests(self) -> list[tuple[str, str, bool]]:
        return self.ehr.state.fhir_requests[self.first_request:]


@pytest.fixture
async def launched(ehr: SmartTestServer, seeded: Seeded, style_server: StyleServer,
                   monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Launched]:
    """An EHR launch of the seeded patient, walked as a browser does (tests/auth/flow.py)."""
    monkeypatch.delenv("KETAMINE_DEMO", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(style_server.cert_file))
    app = create_app(demo_settings(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                   allowed_issuers=[ehr.fhir_base],
                                   redirect_uri=f"{APP_ORIGIN}/callback"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=APP_ORIGIN) as client, \
            httpx.AsyncClient(timeout=10) as browser:
        first = len(ehr.state.fhir_requests)
        back, _ = await authorize(client, browser, "/launch",
                                  {"iss": ehr.fhir_base, "launch": ehr.new_launch(seeded.patient)})
        done = await callback(client, back)
        assert done.status_code == 303, done.text
        ctx = query(done.headers["location"])["ctx"]
        stored = await services_of(app).store.get(session_key(client.cookies["ketamine-sid"], ctx))
        assert stored is not None
        token = SmartSession.from_json(stored).access_token
        yield Launched(client, ctx, token, ehr, first)


def _tokens_checked(launched: Launched, seeded: Seeded) -> None:
    """Every FHIR request of the launch passed the proxy's token check, with the token the test
    server issued for this patient."""
    requests = launched.fhir_requests()
    assert requests and all(ok for _, path, ok in requests if path != "metadata"), requests
    grant = launched.ehr.valid_access_token(f"Bearer {launched.access_token}")
    assert grant is not None and grant.user["patient"] == seeded.patient


@integration
async def test_screening_page_reads_the_ehr_with_the_clinicians_token(
        launched: Launched, seeded: Seeded) -> None:
    client, ctx = launched.client, launched.ctx
    page = await client.get("/app", params={"ctx": ctx})
    assert page.status_code == 200, page.text
    assert "<span id='verdict'>Contraindicated</span>" in page.text
    assert f"<span id='patient-id'>{seeded.patient}</span>" in page.text
    assert f"({seeded.aneurysm})" in page.text and f"({seeded.diazepam})" in page.text
    assert "Drug interactions" in page.text
    assert "Ada Lovelace" in page.text and "1970-12-10" in page.text
    assert 'id="phq9-chart"' in page.text and 'id="bp-chart"' in page.text
    assert f'href="/app/smart-style.css?ctx={ctx}"' in page.text
    reads = {path for method, path, _ in launched.fhir_requests() if method == "GET"}
    assert f"Patient/{seeded.patient}" in reads
    assert {"Condition", "Observation"} <= reads
    _tokens_checked(launched, seeded)
    style = await client.get("/app/smart-style.css", params={"ctx": ctx})
    assert "--smart-highlight: #00573d;" in style.text
    assert style.headers["content-type"].startswith("text/css")


@integration
async def test_save_to_chart_writes_one_transaction_and_shows_the_ids(
        launched: Launched, seeded: Seeded, fhir_base_url: str) -> None:
    client, ctx = launched.client, launched.ctx
    patient = f"Patient/{seeded.patient}"
    practitioner = f"Practitioner/{seeded.practitioner}"

    def on_server() -> tuple[int, int, int]:
        return (count(fhir_base_url, "Observation", patient=patient,
                      identifier=f"{SCREENING_SYSTEM}|"),
                count(fhir_base_url, "DetectedIssue", patient=patient),
                count(fhir_base_url, "Provenance", agent=practitioner))

    before = on_server()
    page = (await client.get("/app", params={"ctx": ctx})).text
    as_of = re.search(r'name="as_of" value="([^"]+)"', page)
    assert as_of
    form = {"csrf": csrf_of(page), "as_of": as_of.group(1)}
    mark = len(launched.ehr.state.fhir_requests)
    saved = await client.post("/app/save", params={"ctx": ctx}, data=form)
    assert saved.status_code == 200, saved.text
    assert "Written to the chart" in saved.text
    posts = [r for r in launched.ehr.state.fhir_requests[mark:] if r[0] != "GET"]
    assert [(method, ok) for method, _, ok in posts] == [("POST", True)]  # one transaction
    after = on_server()
    assert after == (before[0] + 1, before[1] + 2, before[2] + 1)  # 1 per finding that needs one

    found = httpx.get(f"{fhir_base_url}/Provenance", params={"agent": practitioner},
                      headers={"Cache-Control": "no-cache"}, timeout=60).json()
    provenance = found["entry"][0]["resource"]
    who = [a["who"] for a in provenance["agent"]]
    assert {"reference": practitioner} in who
    # the app is named by identifier, not written as a Device (issue 14: no scope covers one)
    assert [w["identifier"]["value"] for w in who if "identifier" in w] == [
        f"{APP_NAME}-{__version__}"]
    for target in provenance["target"]:  # the page lists each resource written
        assert f"<li>{target['reference']}</li>" in saved.text

    again = await client.post("/app/save", params={"ctx": ctx}, data=form)
    assert again.status_code == 200, again.text
    assert on_server() == after  # saving twice adds nothing
    _tokens_checked(launched, seeded)


@integration
async def test_session_is_written_as_one_transaction(
        launched: Launched, seeded: Seeded, fhir_base_url: str) -> None:
    client, ctx = launched.client, launched.ctx
    session_id = f"s-{uuid.uuid4().hex[:8]}"
    prefix = f"Patient/{seeded.patient}/session/{session_id}"
    form = (await client.get("/app/session", params={"ctx": ctx})).text
    assert "Ada Lovelace" in form
    mark = len(launched.ehr.state.fhir_requests)
    resp = await client.post("/app/session", params={"ctx": ctx}, data={
        **VALID_SESSION, "csrf": csrf_of(form), "session_id": session_id})
    assert resp.status_code == 200, resp.text
    assert "Written to the chart (" in resp.text
    assert "Warnings" not in resp.text  # 125 minutes: no REMS warning
    posts = [r for r in launched.ehr.state.fhir_requests[mark:] if r[0] != "GET"]
    assert [(method, ok) for method, _, ok in posts] == [("POST", True)]  # one transaction

    found = httpx.get(f"{fhir_base_url}/Observation",
                      params={"identifier": f"{SESSION_SYSTEM}|{prefix}/session"},
                      headers={"Cache-Control": "no-cache"}, timeout=60).json()
    assert found["total"] == 1
    session = found["entry"][0]["resource"]
    assert session["subject"]["reference"] == f"Patient/{seeded.patient}"
    assert session["performer"] == [{"reference": f"Practitioner/{seeded.practitioner}"}]
    assert f"<li>Observation/{session['id']}</li>" in resp.text
    assert count(fhir_base_url, "Observation",
                 identifier=f"{SESSION_SYSTEM}|{prefix}/40-min/bp") == 1
    _tokens_checked(launched, seeded)


# -- Fault injection: the EHR fails; no HAPI needed. ------------------------------------------

FAULTY_EHR = "https://ehr.test/fhir"


@pytest.mark.parametrize("fault", [httpx.Response(503, headers={"Retry-After": "0"}),
                                   httpx.ReadTimeout("EHR too slow")], ids=["503", "timeout"])
async def test_fhir_failure_is_a_readable_page(
        monkeypatch: pytest.MonkeyPatch, fault: httpx.Response | Exception) -> None:
    monkeypatch.delenv("KETAMINE_DEMO", raising=False)
    app = create_app(demo_settings(allowed_issuers=[FAULTY_EHR], fhir_max_retries=1))
    browser, handle, now = "B" * 43, "launch-1", time.time()
    session = SmartSession(iss=FAULTY_EHR, token_endpoint="https://ehr.test/token",
                           access_token="clinician-token", expires_at=now + 3600, issued_at=now,
                           scope="launch patient/*.rs", patient="p1")
    await services_of(app).store.put(session_key(browser, handle), session.to_json(), 3600)
    with respx.mock(assert_all_called=True) as mock:
        failing = mock.route(host="ehr.test")
        if isinstance(fault, Exception):
            failing.mock(side_effect=fault)
        else:
            failing.mock(return_value=fault)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver",
                                     cookies={"ketamine-sid": browser}) as client:
            page = await client.get("/app", params={"ctx": handle})
    assert page.status_code == 502
    assert 'id="problem"' in page.text and "Traceback" not in page.text
    assert all(c.request.headers["authorization"] == "Bearer clinician-token"
               for c in failing.calls)


@integration
async def test_a_session_saved_to_the_chart_leaves_no_draft_behind(
        launched: Launched, seeded: Seeded, fhir_base_url: str) -> None:
    """Autosaved, then saved to HAPI: the next launch opens the screening, not a draft."""
    client, ctx, ehr = launched.client, launched.ctx, launched.ehr
    session_id = f"s-{uuid.uuid4().hex[:8]}"
    form = (await client.get("/app/session", params={"ctx": ctx})).text
    typed = {**VALID_SESSION, "csrf": csrf_of(form), "session_id": session_id}
    kept = await client.post("/app/session/draft", params={"ctx": ctx}, data=typed)
    assert kept.status_code == 200 and kept.json()["saved"] is True
    saved = await client.post("/app/session", params={"ctx": ctx}, data=typed)
    assert saved.status_code == 200 and "Treatment session recorded" in saved.text
    prefix = f"Patient/{seeded.patient}/session/{session_id}"
    assert count(fhir_base_url, "Observation",
                 identifier=f"{SESSION_SYSTEM}|{prefix}/session") == 1
    late = await client.post("/app/session/draft", params={"ctx": ctx}, data=typed)
    assert late.status_code == 200  # an autosave that was on its way: answered, not kept
    async with httpx.AsyncClient(timeout=10) as browser:
        back, _ = await authorize(client, browser, "/launch",
                                  {"iss": ehr.fhir_base, "launch": ehr.new_launch(seeded.patient)})
        done = await callback(client, back)
    assert done.headers["location"].startswith("/app?ctx=")
    fresh = await client.get("/app/session", params={"ctx": query(done.headers["location"])["ctx"]})
    assert 'id="draft-note"' not in fresh.text and session_id not in fresh.text
