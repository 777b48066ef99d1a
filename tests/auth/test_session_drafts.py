"""Drafts of the treatment-session form (issue 14), without a browser and without FHIR data: the
autosave endpoint needs the launch cookie and the form's CSRF token but never the EHR, a draft
belongs to one (iss, patient, user), lives KETAMINE_DRAFT_TTL_HOURS, is sealed at rest, comes back
at the next launch, and never reaches a log line. The test EHR has no FHIR server behind it here:
the patient banner is switched off so the form renders without one."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from service.api.services import services_of
from service.auth.session import session_key
from service.config import Settings
from service.main import create_app
from service.render.session_form import DRAFT_FIELDS
from service.state import MemoryStore, SealedStore
from service.state.drafts import DraftOwner, Drafts, draft_owner
from tests.auth.conftest import APP_ORIGIN
from tests.auth.flow import authorize, callback, query
from tests.auth.smart_server import SmartTestServer
from tests.logcapture import captured_logs
from tests.ui.conftest import VALID_SESSION, csrf_of

TYPED = {"setting": "Marker Clinic Qxv", "monitoring_clinician": "Nurse Zyqa Brandt",
         "pre_dose.systolic": "131", "pre_dose.time": "09:02", "tz": "Europe/Zurich",
         "session_date": "2026-11-27", "ae_other_text": "Felt floaty-wqz"}
"""What the nurse typed so far (the markers are searched for in logs and at rest)."""
MARKERS = ("Marker Clinic Qxv", "Zyqa", "floaty-wqz")


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def no_banner(smart_server: SmartTestServer) -> Iterator[None]:
    smart_server.state.need_patient_banner = False
    yield
    smart_server.state.need_patient_banner = True


async def _launch(client: httpx.AsyncClient, browser: httpx.AsyncClient,
                  server: SmartTestServer, patient: str) -> tuple[str, str]:
    """An EHR launch: where the callback sent the browser (path and query), and the store key."""
    cb, _ = await authorize(client, browser, "/launch",
                            {"iss": server.fhir_base, "launch": server.new_launch(patient)})
    done = await callback(client, cb)
    assert done.status_code == 303, done.text
    location = done.headers["location"]
    return location, session_key(client.cookies["ketamine-sid"], query(location)["ctx"])


async def _form(client: httpx.AsyncClient, ctx: str) -> str:
    page = await client.get("/app/session", params={"ctx": ctx})
    assert page.status_code == 200, page.text
    return page.text


def _value(html: str, name: str) -> str | None:
    found = re.search(rf'name="{re.escape(name)}"[^>]*value="([^"]*)"', html)
    return found.group(1) if found else None


@pytest.fixture
async def drafted(app_client: httpx.AsyncClient, browser_http: httpx.AsyncClient,
                  smart_server: SmartTestServer, patient_id: str,
                  no_banner: None) -> AsyncIterator[tuple[str, str, str]]:
    """A launch whose form was autosaved once: (ctx, store key, csrf)."""
    location, key = await _launch(app_client, browser_http, smart_server, patient_id)
    assert location.startswith("/app?")  # no draft yet: the screening page
    ctx = query(location)["ctx"]
    csrf = csrf_of(await _form(app_client, ctx))
    saved = await app_client.post("/app/session/draft", params={"ctx": ctx},
                                  data={**TYPED, "csrf": csrf, "ae": ["nausea", "other"]})
    assert saved.status_code == 200, saved.text
    assert saved.json()["saved"] is True and re.fullmatch(r"\d\d:\d\d", saved.json()["at"])
    yield ctx, key, csrf


async def test_a_relaunch_for_the_same_patient_and_user_reopens_the_form_with_the_draft(
        app_client: httpx.AsyncClient, browser_http: httpx.AsyncClient,
        smart_server: SmartTestServer, patient_id: str, drafted: tuple[str, str, str]) -> None:
    location, _ = await _launch(app_client, browser_http, smart_server, patient_id)
    assert location.startswith("/app/session?ctx=")  # straight back to the form
    page = await _form(app_client, query(location)["ctx"])
    note = re.search(r'<p class="notice" id="draft-note" role="status">([^<]+)</p>', page)
    assert note is not None
    assert re.fullmatch(r"A draft from \d\d:\d\d was restored; nothing has been written to the "
                        r"chart yet\. Check it and save\.", note.group(1))
    for name, value in TYPED.items():
        if name != "ae_other_text":
            assert _value(page, name) == value, name
    assert ">Felt floaty-wqz</textarea>" in page
    assert 'value="nausea" checked' in page and 'value="other" checked' in page
    assert 'value="vomiting" checked' not in page


async def test_the_draft_endpoint_needs_the_forms_csrf_token(
        app_client: httpx.AsyncClient, browser_http: httpx.AsyncClient,
        smart_server: SmartTestServer, patient_id: str, no_banner: None) -> None:
    location, _ = await _launch(app_client, browser_http, smart_server, patient_id)
    ctx = query(location)["ctx"]
    for data in (TYPED, {**TYPED, "csrf": "0" * 64}):
        refused = await app_client.post("/app/session/draft", params={"ctx": ctx}, data=data)
        assert (refused.status_code, refused.json()) == (403, {"saved": False, "reason": "csrf"})
    again, _ = await _launch(app_client, browser_http, smart_server, patient_id)
    assert again.startswith("/app?")  # nothing was kept


async def test_the_draft_endpoint_needs_the_launch_cookie(
        settings: Settings, app_client: httpx.AsyncClient, drafted: tuple[str, str, str]) -> None:
    ctx, _, csrf = drafted
    body = {**TYPED, "csrf": csrf}
    async with httpx.AsyncClient(transport=app_client._transport, base_url=APP_ORIGIN) as other:
        no_cookie = await other.post("/app/session/draft", params={"ctx": ctx}, data=body)
        other.cookies.set("ketamine-sid", "B" * 43)  # another browser, the same handle
        foreign = await other.post("/app/session/draft", params={"ctx": ctx}, data=body)
    no_ctx = await app_client.post("/app/session/draft", data=body)
    assert [r.status_code for r in (no_cookie, foreign, no_ctx)] == [401, 401, 401]


async def test_another_patient_or_another_user_never_sees_the_draft(
        app_client: httpx.AsyncClient, browser_http: httpx.AsyncClient,
        smart_server: SmartTestServer, patient_id: str, drafted: tuple[str, str, str]) -> None:
    elsewhere, _ = await _launch(app_client, browser_http, smart_server, patient_id + "-b")
    assert elsewhere.startswith("/app?")
    page = await _form(app_client, query(elsewhere)["ctx"])
    assert 'id="draft-note"' not in page and not any(m in page for m in MARKERS)
    user = smart_server.state.practitioner
    smart_server.state.practitioner = "Practitioner/another-nurse"
    try:
        other, _ = await _launch(app_client, browser_http, smart_server, patient_id)
        page = await _form(app_client, query(other)["ctx"])
    finally:
        smart_server.state.practitioner = user
    assert other.startswith("/app?")
    assert 'id="draft-note"' not in page and not any(m in page for m in MARKERS)


def test_the_key_depends_on_server_patient_and_user_and_names_none_of_them(
        settings: Settings) -> None:
    drafts = Drafts(settings, MemoryStore(), DRAFT_FIELDS)
    base = DraftOwner("https://ehr.example/fhir", "p-123", "https://ehr.example/fhir/Practitioner/n1")
    keys = {drafts.key(base), drafts.key(DraftOwner("https://other.example/fhir", base.patient,
                                                    base.user)),
            drafts.key(DraftOwner(base.iss, "p-124", base.user)),
            drafts.key(DraftOwner(base.iss, base.patient, "sub:n1"))}
    assert len(keys) == 4
    assert drafts.key(base) == drafts.key(DraftOwner(base.iss + "/", base.patient, base.user))
    assert all(re.fullmatch(r"draft:[0-9a-f]{64}", k) for k in keys)
    assert draft_owner(base.iss, "p-123", None, None) is None  # no user: nothing is kept


async def test_a_draft_lives_the_configured_hours_then_is_gone(settings: Settings) -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    drafts = Drafts(settings.model_copy(update={"draft_ttl_hours": 3}), store, DRAFT_FIELDS,
                    clock=clock)
    owner = DraftOwner("https://ehr.example/fhir", "p-1", "sub:n1")
    await drafts.save(owner, "session:abc:h1", {"setting": "x", "not-a-field": "y"}, ["nausea"])
    clock.now += 3 * 3600 - 1
    kept = await drafts.load(owner)
    assert kept is not None and kept.values == {"setting": "x"} and kept.adverse == ["nausea"]
    assert await drafts.kept_seconds("session:abc:h1") == 1
    clock.now += 1
    assert await drafts.load(owner) is None
    assert await drafts.kept_seconds("session:abc:h1") is None


async def test_a_saved_session_drops_its_draft_and_refuses_a_late_autosave(
        settings: Settings) -> None:
    drafts = Drafts(settings, MemoryStore(), DRAFT_FIELDS)
    owner = DraftOwner("https://ehr.example/fhir", "p-1", "sub:n1")
    await drafts.save(owner, "session:abc:h1", {"session_id": "s-1", "setting": "x"}, [])
    await drafts.delete(owner, "session:abc:h1", "s-1")
    assert await drafts.load(owner) is None and await drafts.kept_seconds("session:abc:h1") is None
    await drafts.save(owner, "session:abc:h1", {"session_id": "s-1", "setting": "late"}, [])
    assert await drafts.load(owner) is None  # sent before the submit, arrived after it
    await drafts.save(owner, "session:abc:h1", {"session_id": "s-2", "setting": "next"}, [])
    assert (await drafts.load(owner)).values["setting"] == "next"  # type: ignore[union-attr]


async def test_the_store_gets_the_configured_ttl_and_only_ciphertext(
        make_settings: Callable[..., Settings], browser_http: httpx.AsyncClient,
        smart_server: SmartTestServer, patient_id: str, no_banner: None) -> None:
    app = create_app(make_settings(draft_ttl_hours=5))
    clock = Clock()
    sealed = services_of(app).store
    assert isinstance(sealed, SealedStore)
    sealed.inner = inner = MemoryStore(clock=clock)
    services_of(app).drafts = Drafts(services_of(app).settings, sealed, DRAFT_FIELDS, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=APP_ORIGIN) as client:
        location, key = await _launch(client, browser_http, smart_server, patient_id)
        ctx = query(location)["ctx"]
        csrf = csrf_of(await _form(client, ctx))
        saved = await client.post("/app/session/draft", params={"ctx": ctx},
                                  data={**TYPED, "csrf": csrf})
        assert saved.status_code == 200
        drafts = {k: v for k, v in inner._data.items() if k.startswith("draft")}
        assert len(drafts) == 2  # the draft, and the launch's pointer to it
        assert {expires - clock.now for expires, _ in drafts.values()} == {5 * 3600}
        for name, (_, value) in drafts.items():
            assert patient_id not in name and list(value) == ["sealed"]
            assert not any(m in value["sealed"] for m in MARKERS)
        # The launch itself ends (its TTL passed): the page still says the draft is kept.
        await inner.delete(key)
        clock.now += 2 * 3600
        ended = await client.post("/app/session", params={"ctx": ctx},
                                  headers={"Accept": "text/html"}, data={**TYPED, "csrf": csrf})
    assert ended.status_code == 401
    assert ("Your draft is kept on this server for 3 hours. Launch the app again from the "
            "patient's chart to continue; the form will reopen with what you typed.") in ended.text


async def test_an_ended_session_without_a_draft_does_not_mention_one(
        app_client: httpx.AsyncClient, browser_http: httpx.AsyncClient,
        smart_server: SmartTestServer, patient_id: str) -> None:
    location, key = await _launch(app_client, browser_http, smart_server, patient_id)
    await services_of(app_client._transport.app).store.delete(key)  # type: ignore[attr-defined]
    page = await app_client.get(location, headers={"Accept": "text/html"})
    assert page.status_code == 401
    assert "draft" not in page.text.lower()
    assert "launch the app again from the patient's chart" in page.text


async def test_autosave_works_after_the_ehr_ended_the_authorization_and_submit_keeps_it(
        app_client: httpx.AsyncClient, browser_http: httpx.AsyncClient,
        smart_server: SmartTestServer, patient_id: str, drafted: tuple[str, str, str]) -> None:
    ctx, key, csrf = drafted
    store = services_of(app_client._transport.app).store  # type: ignore[attr-defined]
    stored = await store.get(key)
    stored.update(issued_at=time.time() - 9000, expires_at=time.time() - 8700)  # 2.5 h ago
    await store.put(key, stored, 8 * 3600)
    smart_server.expire_access_tokens()
    smart_server.state.refuse_refresh = True
    seen, tokens = len(smart_server.state.paths), len(smart_server.state.token_requests)
    typed = {**VALID_SESSION, **TYPED, "csrf": csrf, "session_id": "s-expired-1"}
    try:
        with captured_logs() as logs:
            kept = await app_client.post("/app/session/draft", params={"ctx": ctx}, data=typed)
            assert kept.status_code == 200 and kept.json()["saved"] is True
            assert len(smart_server.state.paths) == seen  # the EHR was not asked anything
            invalid = await app_client.post("/app/session", params={"ctx": ctx},
                                            data={**typed, "pre_dose.systolic": "abc"})
            ended = await app_client.post("/app/session", params={"ctx": ctx}, data=typed,
                                          headers={"Accept": "text/html"})
    finally:
        smart_server.state.refuse_refresh = False
    assert invalid.status_code == 422
    assert "and kept as a draft on this server for 12 hours." in invalid.text
    assert ended.status_code == 401
    assert "The EHR refused to refresh the token (invalid_grant)." in ended.text
    assert ("Your draft is kept on this server for 12 hours. Launch the app again from the "
            "patient's chart to continue; the form will reopen with what you typed.") in ended.text
    assert [r["grant_type"] for r in smart_server.state.token_requests[tokens:]] == [
        "refresh_token"]  # the submit tried once; the autosave never did
    assert not [p for m, p, _ in smart_server.state.fhir_requests if m == "POST"]
    assert logs.text and not any(m in logs.text for m in MARKERS)
    assert patient_id not in logs.text
    location, _ = await _launch(app_client, browser_http, smart_server, patient_id)
    page = await _form(app_client, query(location)["ctx"])
    assert _value(page, "setting") == "Marker Clinic Qxv"
    assert _value(page, "pre_dose.systolic") == "131"  # the last submit's, not the invalid one


async def test_in_redis_a_draft_is_ciphertext_under_a_key_without_ids(
        settings: Settings, redis_url: str) -> None:
    from redis.asyncio import Redis

    from service.state import make_store

    store = make_store(settings.model_copy(update={"redis_url": redis_url}))
    drafts = Drafts(settings, store, DRAFT_FIELDS)
    owner = DraftOwner("https://ehr.example/fhir", "p-redis-77", "sub:n1")
    await drafts.save(owner, "session:abc:h9", TYPED, ["nausea"])
    raw = Redis.from_url(redis_url, decode_responses=True)
    try:
        names = [n async for n in raw.scan_iter("ketamine:draft*")]
        assert len(names) == 2 and not any("p-redis-77" in n for n in names)
        ttl = await raw.ttl(f"ketamine:{drafts.key(owner)}")
        assert 8 * 3600 < ttl <= 12 * 3600  # the draft's 12 hours, not the session's 8
        for name in names:
            value = await raw.get(name)
            assert value.startswith('{"sealed": ') and not any(m in value for m in MARKERS)
    finally:
        await raw.aclose()
        await store.close()
    again = make_store(settings.model_copy(update={"redis_url": redis_url}))
    # Another process without the same KETAMINE_SESSION_KEYS finds it unreadable, not plain.
    assert await Drafts(settings, again, DRAFT_FIELDS).load(owner) is None
    await again.close()
