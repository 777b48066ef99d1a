"""No PHI in logs (issue 15): representative flows run against the real parts, with marker values
planted in every place PHI or a secret can travel, and no marker may reach a log line.

The service runs under uvicorn, as ``ketamine-screen serve`` runs it, with the JSON
handler of :mod:`service.logs` at DEBUG, writing to a buffer: the lines a deployment would get,
not pytest's caplog. The flows: an EHR launch through the tests' SMART server in front of HAPI,
the screening page, save to chart, the session form; the REST API (screen with write-back, a
patient that does not exist, a session, ``$evaluate``, bad bodies, bad and URL tokens); CDS
Hooks (prefetch, a fhirServer that refuses the token, feedback with a comment); an unknown path.
Markers: patient ids, the patient's names, free-text notes, every token and code issued, the
launch handle, the cookie, query values.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import KeySet, RSAKey

from service.config import Settings
from service.logs import DEFAULT_PSEUDONYM_KEY, pseudonym, set_pseudonym_key
from service.main import create_app
from tests.auth.conftest import CLIENT_ID  # importing it also allows authlib plain HTTP
from tests.auth.flow import authorize, callback, query
from tests.auth.smart_grants import Client
from tests.auth.smart_server import SmartTestServer
from tests.cds.conftest import (
    ESKETAMINE,
    draft_order,
    hook_request,
    mint_cds_jwt,
    prefetch_for,
    recent_patient,
)
from tests.logcapture import Captured, captured_logs
from tests.render.test_session import session_body
from tests.servers import ThreadServer, free_port
from tests.ui.conftest import VALID_SESSION, csrf_of

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
PATIENT = f"lgmkpat{RUN}"
GONE = f"lgmkgone{RUN}"
FAMILY, GIVEN = f"Zqlgmkfamily{RUN}", f"Yqlgmkgiven{RUN}"
NOTES = {"form": f"lgmk form note {RUN}", "api": f"lgmk api note {RUN}",
         "feedback": f"lgmk feedback comment {RUN}"}
PLANTED = {"query": f"lgmkquery{RUN}", "bearer": f"lgmkbearer{RUN}",
           "url_token": f"lgmkurltoken{RUN}", "cds_token": f"lgmkcdstoken{RUN}",
           "body": f"lgmkbody{RUN}"}


def _put_patient(fhir_base_url: str) -> None:
    p = recent_patient(PATIENT)
    p.condition("I71.4", "Abdominal aortic aneurysm")
    patient = {**p.patient(), "name": [{"family": FAMILY, "given": [GIVEN]}]}
    practitioner = {"resourceType": "Practitioner", "id": f"{PATIENT}-dr"}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"{fhir_base_url}/{r['resourceType']}/{r['id']}", "resource": r,
         "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in [patient, practitioner, *p.resources]]}
    answer = httpx.post(fhir_base_url, json=bundle, timeout=60,
                        headers={"Content-Type": "application/fhir+json"})
    assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def ehr(fhir_base_url: str, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[tuple[SmartTestServer, Path, int]]:
    """The SMART test server in front of HAPI, our key registered with it, the app's port."""
    _put_patient(fhir_base_url)
    key = RSAKey.generate_key(2048)
    key_file = tmp_path_factory.mktemp("lgmk") / "client.pem"
    key_file.write_bytes(key.as_pem(private=True))
    port = free_port()
    server = SmartTestServer(fhir_upstream=fhir_base_url)
    server.state.patient = PATIENT
    server.state.practitioner = f"Practitioner/{PATIENT}-dr"
    server.register_client(Client(CLIENT_ID, [f"http://127.0.0.1:{port}/callback"],
                                  jwks=KeySet([RSAKey.import_key(key.as_dict(private=False))])))
    server.start()
    yield server, key_file, port
    server.stop()


def _settings(server: SmartTestServer, key_file: Path, origin: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, environment="test", base_url=origin, client_id=CLIENT_ID,
        private_key_file=key_file, allowed_issuers=[server.fhir_base],
        redirect_uri=f"{origin}/callback", cookie_secure=False,
        api_issuer=f"{server.base_url}/api", api_audience="ketamine-api",
        api_jwks_url=f"{server.base_url}/api/jwks", cds_allowed_issuers=[server.base_url],
        cds_jwks_urls={server.base_url: f"{server.base_url}/jwks"},
        log_pseudonym_key=f"lgmk-key-{RUN}-0123456789", fhir_max_retries=0)


async def _launch_flow(app: httpx.AsyncClient, server: SmartTestServer,
                       seen: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=30) as browser:
        launch = server.new_launch(PATIENT)
        back, sent = await authorize(app, browser, "/launch",
                                     {"iss": server.fhir_base, "launch": launch})
        seen |= {"launch": launch, "code": query(back)["code"], "state": sent["state"],
                 "nonce": sent["nonce"], "challenge": sent["code_challenge"]}
        done = await callback(app, back)
        assert done.status_code == 303, done.text
    ctx = query(done.headers["location"])["ctx"]
    seen |= {"ctx": ctx, "cookie": app.cookies["ketamine-sid"]}
    page = await app.get("/app", params={"ctx": ctx}, headers={"Accept": "text/html"})
    assert page.status_code == 200 and FAMILY in page.text, page.text[:500]
    saved = await app.post("/app/save", params={"ctx": ctx},
                           data={"csrf": csrf_of(page.text), "as_of": ""})
    assert saved.status_code == 200, saved.text.split("id='problem'")[-1][:300]
    form = await app.get("/app/session", params={"ctx": ctx})
    done_form = await app.post("/app/session", params={"ctx": ctx}, data={
        **VALID_SESSION, "csrf": csrf_of(form.text), "session_id": f"s-lgmk{RUN}",
        "ae": "other", "ae_other_text": NOTES["form"]})
    assert done_form.status_code == 200, done_form.text[:800]


async def _rest_flow(app: httpx.AsyncClient, server: SmartTestServer,
                     seen: dict[str, str]) -> None:
    token = server.mint_api_token(scope="ketamine.screen ketamine.write")
    seen["api_token"] = token
    auth = {"Authorization": f"Bearer {token}"}
    screened = await app.post("/api/v1/screenings", headers=auth,
                              json={"patient": PATIENT, "write_back": True})
    assert screened.status_code == 200 and screened.json()["written"], screened.text
    missing = await app.post("/api/v1/screenings", headers=auth, json={"patient": GONE})
    assert missing.status_code == 404, missing.text
    body = session_body(patient_id=PATIENT, practitioner_id=None, session_id=f"S-lgmk{RUN}",
                        adverse_events=[{"code": "other", "text": NOTES["api"]}])
    session = await app.post("/api/v1/sessions", headers=auth, json=body)
    assert session.status_code == 200, session.text
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": PATIENT,
                      "name": [{"family": FAMILY, "given": [GIVEN]}]}}]}
    evaluated = await app.post("/api/v1/screenings/$evaluate", headers=auth, json=bundle,
                               params={"patient": PATIENT, "as_of": "2026-11-27T09:00:00Z"})
    assert evaluated.status_code == 200, evaluated.text
    invalid = await app.post("/api/v1/screenings", headers=auth,
                             json={"patient": PATIENT, "note": PLANTED["body"]})
    assert invalid.status_code == 422
    bad_bundle = await app.post("/api/v1/screenings/$evaluate", headers=auth,
                                content=f'{{"resourceType": "{PLANTED["body"]}"'.encode())
    assert bad_bundle.status_code == 422
    refused = await app.post("/api/v1/screenings", json={"patient": PATIENT},
                             headers={"Authorization": f"Bearer {PLANTED['bearer']}"})
    assert refused.status_code == 401
    in_url = await app.get("/api/v1/ruleset", params={"access_token": PLANTED["url_token"]})
    assert in_url.status_code == 400


async def _cds_flow(app: httpx.AsyncClient, server: SmartTestServer, origin: str) -> None:
    service = "ketamine-order-sign"

    def auth(suffix: str = "") -> dict[str, str]:
        jwt = mint_cds_jwt(server, service, aud=f"{origin}/cds-services/{service}{suffix}")
        return {"Authorization": f"Bearer {jwt}"}

    patient = recent_patient(PATIENT)
    patient.condition("I71.4", "Abdominal aortic aneurysm")
    prefetch = prefetch_for(patient)
    prefetch["patient"]["name"] = [{"family": FAMILY, "given": [GIVEN]}]
    order = [draft_order(PATIENT, ESKETAMINE)]
    carded = await app.post(f"/cds-services/{service}", headers=auth(), json=hook_request(
        PATIENT, order, prefetch, fhirServer=server.fhir_base,
        fhirAuthorization={"access_token": PLANTED["cds_token"], "token_type": "Bearer",
                           "scope": "patient/*.rs", "subject": "ketamine-screen"}))
    assert carded.status_code == 200 and carded.json()["cards"], carded.text
    refused = await app.post(f"/cds-services/{service}", headers=auth(), json=hook_request(
        PATIENT, order, None, fhirServer=server.fhir_base,
        fhirAuthorization={"access_token": PLANTED["cds_token"], "token_type": "Bearer",
                           "scope": "patient/*.rs", "subject": "ketamine-screen"}))
    assert refused.status_code >= 400, refused.text
    feedback = await app.post(f"/cds-services/{service}/feedback", headers=auth("/feedback"),
                              json={"feedback": [{
                                  "card": str(uuid.uuid4()), "outcome": "overridden",
                                  "overrideReason": {"userComment": NOTES["feedback"]},
                                  "outcomeTimestamp": "2026-11-27T09:00:00Z"}]})
    assert feedback.status_code == 200, feedback.text


async def test_no_marker_reaches_a_log_line(ehr: tuple[SmartTestServer, Path, int]) -> None:
    server, key_file, port = ehr
    origin = f"http://127.0.0.1:{port}"
    seen: dict[str, str] = {}
    logs: Captured
    try:
        with captured_logs("DEBUG") as logs:
            app = create_app(_settings(server, key_file, origin))
            # As `ketamine-screen serve` runs it: uvicorn's access log off (its lines carry the
            # raw path; ours, service.access, the route template). The SMART test server in
            # this process logs its own accesses to the same logger: that is the EHR's log,
            # not ours, so that logger is quietened after the start.
            running = ThreadServer(app, port=port, log_config=None, access_log=False,
                                   log_level="debug").start()
            logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
            try:
                async with httpx.AsyncClient(base_url=origin, timeout=120) as client:
                    await _launch_flow(client, server, seen)
                    await _rest_flow(client, server, seen)
                    await _cds_flow(client, server, origin)
                    lost = await client.get(f"/no/{PLANTED['query']}",
                                            params={"patient": PLANTED["query"]})
                    assert lost.status_code == 404
            finally:
                running.stop()
    finally:
        set_pseudonym_key(DEFAULT_PSEUDONYM_KEY)

    markers: dict[str, Any] = {"patient id": PATIENT, "missing patient id": GONE,
                               "family name": FAMILY, "given name": GIVEN,
                               **{f"note ({k})": v for k, v in NOTES.items()},
                               **PLANTED, **seen}
    markers |= {f"access token {n}": t for n, t in enumerate(server.state.access_tokens)}
    markers |= {f"refresh token {n}": t for n, t in enumerate(server.state.refresh_tokens)}
    leaked = {name: value for name, value in markers.items() if value in logs.text}
    where = [line for line in logs.text.splitlines() if any(v in line for v in leaked.values())]
    assert leaked == {}, f"markers in the log output: {sorted(leaked)}; lines: {where[:5]}"

    # The log is the real one, and rich enough that a leak would have shown.
    lines = logs.lines()
    assert len(server.state.access_tokens) >= 2  # the launch's and Backend Services'
    routes = {(line.get("route"), line.get("status")) for line in lines
              if line["logger"] == "service.access"}
    assert {("/callback", 303), ("/app/save", 200), ("/app/session", 200),
            ("/api/v1/screenings", 200), ("/api/v1/screenings", 404),
            ("/api/v1/sessions", 200), ("/cds-services/{service_id}", 200),
            ("unmatched", 404)} <= routes
    assert any(line["logger"] == "uvicorn.error" for line in lines)  # uvicorn's own lines too
    set_pseudonym_key(f"lgmk-key-{RUN}-0123456789")
    try:
        assert any(pseudonym(PATIENT) in line["message"] for line in lines)
    finally:
        set_pseudonym_key(DEFAULT_PSEUDONYM_KEY)
    assert all(line["request_id"] != "-" for line in lines if line["logger"] == "service.access")
