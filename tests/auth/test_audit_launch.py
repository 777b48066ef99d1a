"""The audit trail of a clinician's launch (issue 16): the launch, each page, the failures; who
is the signed-in user (fhirUser), the patient is the launch's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx

from service.api.services import services_of
from service.config import Settings
from service.main import create_app
from tests.auth.conftest import APP_ORIGIN
from tests.auth.flow import authorize, callback
from tests.auth.smart_server import SmartTestServer


async def test_a_launch_and_its_pages_are_recorded(make_settings: Callable[..., Settings],
                                                   browser_http: httpx.AsyncClient,
                                                   smart_server: SmartTestServer,
                                                   tmp_path: Path) -> None:
    trail = tmp_path / "audit.jsonl"
    app = create_app(make_settings(audit_log=str(trail)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=APP_ORIGIN) as client:
        cb, _ = await authorize(client, browser_http, "/launch",
                                {"iss": smart_server.fhir_base,
                                 "launch": smart_server.new_launch("patient-audited")})
        done = await callback(client, cb)
        page = await client.get(done.headers["location"], headers={"Accept": "text/html"})
        replay = await callback(client, cb)
    await services_of(app).audit.aclose()
    assert (done.status_code, page.status_code, replay.status_code) == (303, 502, 400)
    user = f"{smart_server.fhir_base}/{smart_server.state.practitioner}"
    found = [json.loads(line) for line in trail.read_text().splitlines()]
    assert [(r["action"], r["outcome"], r.get("who"), r.get("who_kind"), r.get("patient"),
             r["status"]) for r in found] == [
        ("launch-begin", "success", None, "unknown", None, 302),
        ("launch", "success", user, "user", "patient-audited", 303),
        ("screen", "failure", user, "user", "patient-audited", 502),  # 502: no FHIR data
        ("launch", "failure", None, "unknown", None, 400),
    ]
    assert found[3]["detail"] == "LaunchError"
