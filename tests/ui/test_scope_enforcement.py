"""The app's features inside a scope-enforcing EHR (issue 14): the SMART test server's FHIR proxy
refuses every request, and every transaction entry, that the granted scopes do not cover
(tests/auth/smart_scopes.py), in front of the HAPI sandbox, which enforces none.

Each feature is run through that proxy with everything the app asks for granted; the proxy's log
of (type, interaction) checks then says what each feature used, and the test demands the app asks
for exactly that. Withholding one write scope shows the clinician's page naming it, and HAPI,
counted directly, shows nothing was written.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from service.api.services import services_of
from service.auth.scopes import FEATURES, feature_scopes, user_scopes
from service.auth.session import SmartSession, session_key
from service.main import create_app
from tests.auth.conftest import (  # importing it also allows authlib plain HTTP on 127.0.0.1
    APP_ORIGIN,
    CLIENT_ID,
    CLIENT_SECRET,
)
from tests.auth.flow import authorize, callback, query
from tests.auth.smart_grants import Client
from tests.auth.smart_scopes import granted_permissions
from tests.auth.smart_server import SmartTestServer
from tests.builders import PatientBuilder
from tests.ui.conftest import VALID_SESSION, csrf_of, demo_settings
from tests.ui.fhir_seed import Seeded, count, put_resources, seed_patient

pytestmark = pytest.mark.integration
SCREENING_SYSTEM = "http://ketamine-screen.example.org/fhir/identifier/screening"
Used = set[tuple[str, str]]


def asked(scope: str) -> Used:
    """The (type, interaction letter) pairs a scope string asks for."""
    return {(rtype, letter) for rtype, letters in granted_permissions(scope.split()).items()
            for letter in letters}


@pytest.fixture(scope="module")
def seeded(fhir_base_url: str) -> Seeded:
    """The pages' test patient, plus a request whose medicationReference points at a Medication
    (the screening then reads a Medication, which the EHR must allow too)."""
    seeded = seed_patient(fhir_base_url, f"scope-{uuid.uuid4().hex[:12]}")
    extra = PatientBuilder(seeded.patient)
    extra.medication("2670", "codeine", request=True, form="referenced")
    put_resources(fhir_base_url, sorted(extra.resources,
                                        key=lambda r: r["resourceType"] != "Medication"))
    return seeded


@pytest.fixture(scope="module")
def ehr(fhir_base_url: str, seeded: Seeded) -> Iterator[SmartTestServer]:
    server = SmartTestServer(fhir_upstream=fhir_base_url)
    server.state.practitioner = f"Practitioner/{seeded.practitioner}"
    server.register_client(Client(CLIENT_ID, [f"{APP_ORIGIN}/callback"], secret=CLIENT_SECRET))
    server.start()
    yield server
    server.stop()


@dataclass
class App:
    client: httpx.AsyncClient
    ctx: str
    granted: str
    """The ``scope`` of the EHR's token response, as the app stored it."""
    ehr: SmartTestServer

    async def page(self, path: str, **params: str) -> str:
        answer = await self.client.get(path, params={"ctx": self.ctx, **params})
        assert answer.status_code == 200, answer.text
        return answer.text

    async def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return await self.client.post(path, params={"ctx": self.ctx}, data=data)

    def checks_since(self, mark: int) -> list[tuple[str, str, bool]]:
        return self.ehr.state.scope_checks[mark:]


@asynccontextmanager
async def launched(ehr: SmartTestServer, seeded: Seeded) -> AsyncIterator[App]:
    """An EHR launch of the seeded patient, walked as a browser does (tests/auth/flow.py)."""
    service = create_app(demo_settings(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                       allowed_issuers=[ehr.fhir_base],
                                       redirect_uri=f"{APP_ORIGIN}/callback"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service),
                                 base_url=APP_ORIGIN) as client, \
            httpx.AsyncClient(timeout=10) as browser:
        back, _ = await authorize(client, browser, "/launch",
                                  {"iss": ehr.fhir_base, "launch": ehr.new_launch(seeded.patient)})
        done = await callback(client, back)
        assert done.status_code == 303, done.text
        ctx = query(done.headers["location"])["ctx"]
        stored = await services_of(service).store.get(
            session_key(client.cookies["ketamine-sid"], ctx))
        assert stored is not None
        yield App(client, ctx, SmartSession.from_json(stored).scope, ehr)


@pytest.fixture
async def app(ehr: SmartTestServer, seeded: Seeded,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[App]:
    monkeypatch.delenv("KETAMINE_DEMO", raising=False)
    async with launched(ehr, seeded) as running:
        yield running


async def _features(app: App) -> dict[str, Used]:
    """Every feature a clinician reaches from a launch, run once; what each one used."""
    used: dict[str, Used] = {}

    async def step(name: str, mark: int) -> None:
        checks = app.checks_since(mark)
        assert all(ok for _, _, ok in checks), (name, checks)
        used[name] = used.get(name, set()) | {(t, i) for t, i, _ in checks}

    mark = len(app.ehr.state.scope_checks)
    page = await app.page("/app")
    assert "<span id='verdict'>" in page
    await step("screening", mark)

    mark = len(app.ehr.state.scope_checks)
    as_of = re.search(r'name="as_of" value="([^"]+)"', page)
    assert as_of
    saved = await app.post("/app/save", {"csrf": csrf_of(page), "as_of": as_of.group(1)})
    assert saved.status_code == 200 and "Written to the chart" in saved.text, saved.text
    await step("save to chart", mark)

    mark = len(app.ehr.state.scope_checks)
    session_id = f"s-{uuid.uuid4().hex[:8]}"
    form = await app.page("/app/session")
    recorded = await app.post("/app/session", {**VALID_SESSION, "csrf": csrf_of(form),
                                               "session_id": session_id})
    assert recorded.status_code == 200 and "Written to the chart (" in recorded.text, \
        recorded.text
    await step("dosing session and REMS form", mark)

    mark = len(app.ehr.state.scope_checks)
    printed = await app.page(f"/app/session/{session_id}/print")
    assert 'id="submit-form"' in printed
    today = datetime.now(UTC).date().isoformat()
    submitted = await app.post(f"/app/session/{session_id}/submitted", {
        "csrf": csrf_of(printed), "submitted_on": today, "submitted_by": "Sam Rivera, RN"})
    assert submitted.status_code == 200 and "REMS form marked submitted" in submitted.text, \
        submitted.text
    await app.page("/app/rems")
    await step("dosing session and REMS form", mark)

    mark = len(app.ehr.state.scope_checks)
    form = await app.page("/app/integration", follows=session_id)
    integration = await app.post("/app/integration", {
        "csrf": csrf_of(form), "integration_id": f"i-{uuid.uuid4().hex[:8]}",
        "follows": session_id, "date": today, "time": "00:00", "tz": "UTC", "minutes": "50",
        "modality": "individual-telehealth", "clinician": "Dr Alex Chen", "note": ""})
    assert integration.status_code == 200 and "Integration session recorded" in \
        integration.text, integration.text
    await step("integration session", mark)

    mark = len(app.ehr.state.scope_checks)
    form = await app.page("/app/phq9")
    phq9 = await app.post("/app/phq9", {
        "csrf": csrf_of(form), "response_id": f"q-{uuid.uuid4().hex[:8]}", "date": today,
        "tz": "UTC", **{f"item_{n}": "1" for n in range(1, 10)}})
    assert phq9.status_code == 200 and "PHQ-9 recorded: total 9" in phq9.text, phq9.text
    await app.page("/app/timeline")
    await step("PHQ-9 and timeline", mark)
    return used


STEPS = {"screening": "EHR launch screening", "save to chart": "Save to chart",
         "dosing session and REMS form": "Dosing session and REMS form",
         "integration session": "Integration session", "PHQ-9 and timeline": "PHQ-9 and timeline"}
"""Each step of :func:`_features` and the row of service.auth.scopes.FEATURES it exercises."""


def _needs(name: str) -> Used:
    feature = next(f for f in FEATURES if f.name == name)
    return asked(" ".join(feature_scopes(feature)))


UNUSED: dict[tuple[str, str], str] = {
    ("Medication", "s"): "the Medication?_id= search replaces _include where a server's "
                         "CapabilityStatement lists no _include (HAPI lists it; "
                         "tests/fhir covers that path)",
}
"""(type, interaction) the app asks for that no feature above uses, each with its reason."""


async def test_every_feature_works_and_the_app_asks_for_exactly_what_it_uses(app: App) -> None:
    requested = asked(user_scopes(standalone=False))
    assert asked(app.granted) == requested  # everything granted
    used = await _features(app)
    everything = set().union(*used.values())
    assert sorted(everything - requested) == [], f"used but not asked for; used: {used}"
    assert sorted(requested - everything) == sorted(UNUSED), \
        f"asked for but never used: {sorted(requested - everything)}; used: {used}"
    # Each feature, as the README's table lists it: it uses what its row lists (less UNUSED),
    # and nothing beyond that and the screening reads every page repeats (banner, pre-fill).
    screening = _needs("EHR launch screening")
    for step, feature in STEPS.items():
        own = _needs(feature)
        assert own - set(UNUSED) <= used[step], (step, sorted(own - used[step]))
        assert used[step] <= own | screening, (step, sorted(used[step] - own - screening))


async def test_a_withheld_write_scope_is_named_and_nothing_is_written(
        ehr: SmartTestServer, seeded: Seeded, fhir_base_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    patient = f"Patient/{seeded.patient}"

    def on_server() -> tuple[int, int, int]:
        return (count(fhir_base_url, "Observation", patient=patient,
                      identifier=f"{SCREENING_SYSTEM}|"),
                count(fhir_base_url, "DetectedIssue", patient=patient),
                count(fhir_base_url, "Provenance", patient=patient))

    monkeypatch.delenv("KETAMINE_DEMO", raising=False)
    ehr.state.withhold_scopes = {"patient/Provenance.c"}
    try:
        async with launched(ehr, seeded) as app:
            assert "patient/Provenance.c" not in app.granted.split()
            assert "patient/DetectedIssue.c" in app.granted.split()
            page = await app.page("/app")  # reading needs no write scope
            as_of = re.search(r'name="as_of" value="([^"]+)"', page)
            assert as_of
            before = on_server()
            mark = len(ehr.state.scope_checks)
            saved = await app.post("/app/save", {"csrf": csrf_of(page), "as_of": as_of.group(1)})
    finally:
        ehr.state.withhold_scopes = set()
    assert saved.status_code == 502
    problem = re.search(r'<p class="notice" id="problem" role="alert">([^<]+)</p>', saved.text)
    assert problem, saved.text
    text = problem.group(1)
    assert "scope patient/Provenance.c is required for POST Provenance" in text
    assert "Nothing was written: a FHIR transaction is all or nothing." in text
    assert ("ask the EHR administrator to grant patient/Provenance.c to this app, then launch "
            "it again.") in text
    refused = [(t, i) for t, i, ok in ehr.state.scope_checks[mark:] if not ok]
    assert refused == [("Provenance", "c")]
    assert on_server() == before  # nothing written


async def test_the_v1_scopes_cover_every_feature(ehr: SmartTestServer, seeded: Seeded,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """An EHR that speaks SMART v1 only (``permission-v1``): the app asks for ``.read`` and
    ``.write`` scopes, and every feature passes the same enforcement."""
    monkeypatch.delenv("KETAMINE_DEMO", raising=False)
    ehr.state.scopes_v1_only = True
    try:
        async with launched(ehr, seeded) as app:
            assert set(app.granted.split()) == set(user_scopes(standalone=False, v2=False).split())
            used = await _features(app)  # each step asserts every check passed
    finally:
        ehr.state.scopes_v1_only = False
    assert set().union(*used.values()) <= asked(user_scopes(standalone=False, v2=False))


@pytest.mark.parametrize(("withheld", "named"), [
    ("patient/Condition.s", "scope patient/Condition.s is required for GET Condition"),
    # The _include'd Medication is left out of the page; the app then asks for it on its own.
    ("patient/Medication.rs", "scope patient/Medication."),
])
async def test_a_withheld_read_scope_is_named_on_the_screening_page(
        ehr: SmartTestServer, seeded: Seeded, monkeypatch: pytest.MonkeyPatch, withheld: str,
        named: str) -> None:
    """A read the grant does not cover: the screen is not shown from partial records; the page
    names the scope, and says nothing about writing."""
    monkeypatch.delenv("KETAMINE_DEMO", raising=False)
    ehr.state.withhold_scopes = {withheld}
    try:
        async with launched(ehr, seeded) as app:
            page = await app.client.get("/app", params={"ctx": app.ctx})
    finally:
        ehr.state.withhold_scopes = set()
    assert page.status_code == 502, page.text
    problem = re.search(r'<p class="notice" id="problem" role="alert">([^<]+)</p>', page.text)
    assert problem, page.text
    assert named in problem.group(1)
    assert "ask the EHR administrator to grant patient/" in problem.group(1)
    assert "Nothing was written" not in problem.group(1)
