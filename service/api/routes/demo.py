"""Demo mode (``KETAMINE_DEMO=1``, ``make demo-ui``): a launcher page stands in for the EHR.

``GET /demo`` lists the embedded demo patients; ``GET /demo/launch/<id>`` makes a launch session
for one of them, as the SMART callback would, and opens the screening page or the session form.
Those pages then read the demo Bundle instead of a FHIR server, and "Save to chart" shows the
transaction Bundle that *would* be written. ``create_app`` includes :data:`router` and uses
:func:`demo_pages` as the page source only in demo mode.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from service import workflow
from service.api.deps import Services
from service.api.sources import DEMO_ISS, PageData, PageSource, Source, Written
from service.api.templates import templates
from service.auth.cookies import ensure_browser_id
from service.auth.session import ActiveLaunch, SmartSession, session_key
from service.config import Settings
from service.demo import demo_patients
from service.fhir.codesystems import BASE, canonical_base
from service.fhir.transaction import TxEntry, build_transaction
from service.render import charts
from service.render.course_read import CourseRecords, read_course_records, split_resources
from service.render.html import banner
from service.render.session_form import session_defaults
from service.render.session_input import SessionInput
from service.screening.model import RawPatientData, ScreeningResult

__all__ = ["DEMO_AS_OF", "DemoSource", "demo_pages", "router"]

router = APIRouter(prefix="/demo", tags=["demo"], include_in_schema=False)

DEMO_AS_OF = datetime(2026, 11, 27, 23, 59, 59, tzinfo=UTC)
"""The demo Bundles' records are dated for this evaluation time (as ``ketamine-screen demo``)."""


@dataclass(frozen=True, slots=True)
class DemoPatient:
    patient_id: str
    path: Path
    resource: dict[str, Any]


@cache
def demo_index() -> dict[str, DemoPatient]:
    """Demo patients by Patient id, in file order."""
    found: dict[str, DemoPatient] = {}
    for path in demo_patients():
        data = json.loads(path.read_text(encoding="utf-8"))
        for entry in data.get("entry", []):
            resource = entry.get("resource") or {}
            if resource.get("resourceType") == "Patient" and resource.get("id"):
                found[str(resource["id"])] = DemoPatient(str(resource["id"]), path, resource)
    return found


def _entries(entries: list[TxEntry]) -> list[str]:
    return [f"{e.resource_type} {e.full_url} (identifier {e.value})" for e in entries]


class DemoSource:
    """A demo Bundle instead of the EHR; saving shows the transaction instead of sending it."""

    def __init__(self, settings: Settings, launch: ActiveLaunch) -> None:
        self.settings = settings
        self.patient_data = demo_index()[launch.session.patient or ""]
        self.encounter = launch.session.encounter

    def now(self) -> datetime:
        return DEMO_AS_OF

    def _bundle_text(self) -> str:
        """The demo Bundle, its app-written records moved onto the configured canonical base
        (the files spell the development default)."""
        text = self.patient_data.path.read_text(encoding="utf-8")
        return text.replace(f'"{BASE}/', f'"{canonical_base()}/')

    async def patient(self) -> dict[str, Any]:
        return self.patient_data.resource

    async def load(self, as_of: datetime | None, *, history: bool) -> PageData:
        data = json.loads(self._bundle_text())
        result, raw = await workflow.screen_bundle(
            data, source=self.patient_data.path.name, patient_id=self.patient_data.patient_id,
            as_of=as_of or DEMO_AS_OF, settings=self.settings)
        # The charts read the Observations as JSON, identifiers included (the read model has
        # only what screening reads).
        observations = [entry["resource"] for entry in data.get("entry") or []
                        if entry.get("resource", {}).get("resourceType") == "Observation"]
        return PageData(result, raw, self.patient_data.resource, charts.phq9_points(observations),
                        charts.last_session_bp(observations),
                        first_session=charts.first_session_start(observations))

    async def save_screening(self, result: ScreeningResult, raw: RawPatientData) -> Written:
        write = workflow.preview_screening(result, raw, encounter=self.encounter)
        return Written(_entries(write.entries),
                       bundle_json=write.bundle().model_dump_json(indent=2, exclude_none=True))

    async def save_session(self, session: SessionInput) -> Written:
        write = workflow.preview_session(session, encounter=self.encounter)
        return Written(_entries(write.entries), write.warnings,
                       write.bundle().model_dump_json(indent=2, exclude_none=True))

    def _resources(self) -> list[dict[str, Any]]:
        data = json.loads(self._bundle_text())
        return [e["resource"] for e in data.get("entry", []) if e.get("resource")]

    async def course(self) -> CourseRecords:
        found = split_resources(self._resources())
        return read_course_records(found, charts.phq9_points(found["phq9"]))

    async def session_defaults(self) -> tuple[dict[str, str], dict[str, str]]:
        data = await self.load(None, history=False)
        course = await self.course()
        return session_defaults(course.last_documented(), data.result.findings)

    async def save_course(self, item: workflow.CourseWrite, *,
                          task: dict[str, Any] | None = None) -> Written:
        entries = workflow.preview_course_write(item, task=task,
                                               encounter=self.encounter)
        bundle = build_transaction(entries)
        return Written(_entries(entries),
                       bundle_json=bundle.model_dump_json(indent=2, exclude_none=True))


@router.get("", summary="Demo launcher (stands in for the EHR)", response_class=HTMLResponse)
async def launcher(request: Request) -> HTMLResponse:
    patients = [(p, banner(p.resource, p.patient_id), p.path.stem)
                for p in demo_index().values()]
    return templates.TemplateResponse(request, "demo.html", {
        "patients": patients, "as_of": DEMO_AS_OF.date().isoformat()})


@router.get("/launch/{patient_id}", summary="Open a demo patient as if launched from the EHR",
            response_class=RedirectResponse, status_code=303)
async def launch(request: Request, patient_id: str, services: Services,
                 to: Annotated[Literal["app", "session"], Query()] = "app",
                 banner_: Annotated[Literal["1", "0"], Query(alias="banner")] = "1"
                 ) -> RedirectResponse:
    if patient_id not in demo_index():
        raise HTTPException(404, "No such demo patient.")
    settings = services.settings
    response = RedirectResponse("/demo", status_code=303)
    browser = ensure_browser_id(request, response, settings)
    now = time.time()
    session = SmartSession(iss=DEMO_ISS, token_endpoint="", access_token="demo",  # noqa: S106
                           expires_at=now + settings.session_ttl_seconds, issued_at=now,
                           scope="demo", patient=patient_id, fhir_user=None,
                           need_patient_banner=banner_ == "1")
    handle = secrets.token_urlsafe(12)
    await services.store.put(session_key(browser, handle), session.to_json(),
                             settings.session_ttl_seconds)
    response.headers["location"] = f"/app{'/session' if to == 'session' else ''}?ctx={handle}"
    return response


def demo_pages(settings: Settings, fallback: PageSource) -> PageSource:
    """Demo launches read the demo Bundles; any other launch goes to ``fallback``."""

    def source(launch: ActiveLaunch) -> Source:
        if launch.session.iss == DEMO_ISS:
            return DemoSource(settings, launch)
        return fallback(launch)

    return source
