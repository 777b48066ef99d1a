"""The launch's context on the FHIR path, against real parts (HAPI behind the SMART test
server, as tests/ui/test_fhir_pages.py): a launch in an encounter, with an order in its
``fhirContext``, names the order on the screening page, and what it saves to the chart (the
screening result, a dosing session) names the encounter, as read back from HAPI."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from service.api.services import services_of
from service.auth.session import SmartSession, session_key
from service.render.session import SESSION_SYSTEM
from tests.ui.conftest import VALID_SESSION, csrf_of
from tests.ui.fhir_seed import Seeded, count
from tests.ui.test_fhir_pages import (  # the fixtures of a launch of a seeded patient
    SCREENING_SYSTEM,
    Launched,
    ehr,
    launched,
    seeded,
    style_server,
)

__all__ = ["ehr", "launched", "seeded", "style_server"]  # fixtures, imported to be used here

pytestmark = pytest.mark.integration


async def _in_encounter(launched: Launched, seeded: Seeded, fhir_base_url: str) -> str:
    """An Encounter of the seeded patient on HAPI, and the launch's session put in it (as a
    token response with ``encounter`` and ``fhirContext`` would have)."""
    encounter = f"enc-{uuid.uuid4().hex[:10]}"
    answer = httpx.put(f"{fhir_base_url}/Encounter/{encounter}", json={
        "resourceType": "Encounter", "id": encounter, "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{seeded.patient}"}}, timeout=60)
    assert answer.status_code in (200, 201), answer.text
    transport = launched.client._transport
    assert isinstance(transport, httpx.ASGITransport)
    store = services_of(transport.app).store  # type: ignore[arg-type]
    key = session_key(launched.client.cookies["ketamine-sid"], launched.ctx)
    stored = await store.get(key)
    assert stored is not None
    session = SmartSession.from_json(stored)
    session.apply_token({"access_token": session.access_token, "expires_in": 300,
                         "fhirContext": [{"reference": "MedicationRequest/order-1"},
                                         {"reference": f"Encounter/{encounter}"}]})
    assert session.encounter == encounter and session.order == "order-1"
    await store.put(key, session.to_json(), 3600)
    return encounter


async def test_what_a_launch_in_an_encounter_saves_names_the_encounter(
        launched: Launched, seeded: Seeded, fhir_base_url: str) -> None:
    client, ctx = launched.client, launched.ctx
    encounter = await _in_encounter(launched, seeded, fhir_base_url)
    in_encounter = f"Encounter/{encounter}"

    page = (await client.get("/app", params={"ctx": ctx})).text
    assert ("Screening for the order in context: MedicationRequest/order-1") in page
    as_of = re.search(r'name="as_of" value="([^"]+)"', page)
    assert as_of
    saved = await client.post("/app/save", params={"ctx": ctx},
                              data={"csrf": csrf_of(page), "as_of": as_of.group(1)})
    assert saved.status_code == 200, saved.text
    assert count(fhir_base_url, "Observation", encounter=in_encounter,
                 identifier=f"{SCREENING_SYSTEM}|") == 1

    session_id = f"s-{uuid.uuid4().hex[:8]}"
    form = (await client.get("/app/session", params={"ctx": ctx})).text
    done = await client.post("/app/session", params={"ctx": ctx}, data={
        **VALID_SESSION, "csrf": csrf_of(form), "session_id": session_id})
    assert done.status_code == 200, done.text
    prefix = f"Patient/{seeded.patient}/session/{session_id}"
    written = count(fhir_base_url, "Observation", identifier=f"{SESSION_SYSTEM}|{prefix}/session")
    assert written == 1
    found = httpx.get(f"{fhir_base_url}/Observation",
                      params={"encounter": in_encounter, "_count": "100",
                              "identifier": f"{SESSION_SYSTEM}|"},
                      headers={"Cache-Control": "no-cache"}, timeout=60).json()
    values = sorted(e["resource"]["identifier"][0]["value"] for e in found.get("entry") or [])
    assert values and all(v.startswith(prefix + "/") for v in values)
    assert f"{prefix}/session" in values
    # The esketamine session's REMS form Task is in the encounter too.
    assert count(fhir_base_url, "Task", encounter=in_encounter) == 1
