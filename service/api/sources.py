"""Where the clinician's pages get their data: a :class:`Source` per launch.

The EHR's FHIR server (:class:`FhirSource`, with the clinician's access token) or, in demo mode,
a demo Bundle (``service.api.routes.demo.DemoSource``). Which one a launch gets is decided once,
in ``create_app``, and handed to the pages as the app's ``page_source``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from service import workflow
from service.api.middleware import current_request_id
from service.auth.session import ActiveLaunch
from service.clients import FhirClients
from service.config import Settings
from service.errors import FhirError, SessionExpired
from service.fhir.client import FhirClient
from service.fhir.projection import as_json
from service.logs import pseudonym
from service.render import charts
from service.render.course_read import CourseRecords
from service.render.session_input import SessionInput
from service.screening.model import RawPatientData, ScreeningResult

__all__ = ["DEMO_ISS", "FhirSource", "PageData", "PageSource", "Source", "Written",
           "fhir_pages"]

log = logging.getLogger(__name__)

DEMO_ISS = "urn:ketamine-screen:demo"
"""The ``iss`` of launch sessions made by the demo launcher: data from the demo Bundles."""


@dataclass(slots=True)
class PageData:
    result: ScreeningResult
    raw: RawPatientData
    patient: dict[str, Any]
    phq9: list[tuple[datetime, float]] = field(default_factory=list)
    last_session: list[charts.BpPoint] = field(default_factory=list)
    history_problem: str | None = None
    first_session: datetime | None = None
    """Start of the first session on record (the PHQ-9 baseline is the last total before it)."""


@dataclass(slots=True)
class Written:
    """What a save did: ``Type/id`` written, or (demo) the transaction that would have been sent."""

    locations: list[str]
    warnings: list[str] = field(default_factory=list)
    bundle_json: str | None = None


class Source(Protocol):
    def now(self) -> datetime:
        """The time the pages count from (due dates, gaps): now, or the demo's evaluation time."""
        ...

    async def patient(self) -> dict[str, Any]: ...
    async def load(self, as_of: datetime | None, *, history: bool) -> PageData: ...
    async def save_screening(self, result: ScreeningResult, raw: RawPatientData) -> Written: ...
    async def save_session(self, session: SessionInput) -> Written: ...
    async def course(self) -> CourseRecords: ...
    async def session_defaults(self) -> tuple[dict[str, str], dict[str, str]]: ...
    async def save_course(self, item: workflow.CourseWrite, *,
                          task: dict[str, Any] | None = None) -> Written: ...


PageSource = Callable[[ActiveLaunch], Source]


class FhirSource:
    """The launching EHR's FHIR server, with the clinician's access token."""

    def __init__(self, settings: Settings, clients: FhirClients, launch: ActiveLaunch) -> None:
        self.settings = settings
        self.clients = clients
        self.launch = launch
        self.patient_id = launch.session.patient or ""
        self.request_id = current_request_id.get()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def _client(self) -> FhirClient:
        return self.clients.launch(self.launch.session.iss, self.launch.key,
                                   request_id=self.request_id)

    async def patient(self) -> dict[str, Any]:
        async with self._client() as fhir:
            return await fhir.read("Patient", self.patient_id)

    async def load(self, as_of: datetime | None, *, history: bool) -> PageData:
        async with self._client() as fhir:
            screened = workflow.screen_from_fhir(fhir, self.patient_id, as_of=as_of,
                                                 settings=self.settings)
            if not history:
                result, raw = await screened
                return PageData(result, raw, _patient_json(raw))
            (result, raw), past = await asyncio.gather(screened, self._history(fhir))
        data = PageData(result, raw, _patient_json(raw))
        if isinstance(past, str):
            data.history_problem = past
        else:
            data.phq9 = charts.phq9_points(past)
            data.first_session = charts.first_session_start(past)
            data.last_session = charts.last_session_bp(past)
        return data

    async def _history(self, fhir: FhirClient) -> list[dict[str, Any]] | str:
        """The treatment history, or a message when the server fails (the page still shows)."""
        try:
            return await workflow.read_history(fhir, self.patient_id)
        except FhirError as err:
            log.warning("chart data for patient %s: %s (HTTP %s)", pseudonym(self.patient_id),
                        type(err).__name__, err.status)
            return "The treatment history could not be read from the EHR."

    async def save_screening(self, result: ScreeningResult, raw: RawPatientData) -> Written:
        async with self._client() as fhir:
            locations = await workflow.write_screening_result(
                fhir, result, raw, practitioner=self.launch.session.fhir_user,
                encounter=self.launch.session.encounter)
        return Written(locations)

    async def save_session(self, session: SessionInput) -> Written:
        async with self._client() as fhir:
            done = await workflow.write_session(fhir, session,
                                                practitioner=self.launch.session.fhir_user,
                                                encounter=self.launch.session.encounter)
        return Written(list(done.result.locations), done.warnings)

    async def course(self) -> CourseRecords:
        async with self._client() as fhir:
            return await workflow.read_course(fhir, self.patient_id)

    async def session_defaults(self) -> tuple[dict[str, str], dict[str, str]]:
        async with self._client() as fhir:
            return await workflow.session_form_defaults(fhir, self.patient_id,
                                                        settings=self.settings)

    async def save_course(self, item: workflow.CourseWrite, *,
                          task: dict[str, Any] | None = None) -> Written:
        async with self._client() as fhir:
            done = await workflow.write_course(fhir, item, task=task,
                                               practitioner=self.launch.session.fhir_user,
                                               encounter=self.launch.session.encounter)
        return Written(list(done.locations))


def _patient_json(raw: RawPatientData) -> dict[str, Any]:
    return as_json(raw.patient) if raw.patient is not None else {}


def fhir_pages(settings: Settings, clients: FhirClients) -> PageSource:
    """Every launch reads its EHR; a demo launch is refused (demo mode is off)."""

    def source(launch: ActiveLaunch) -> Source:
        if launch.session.iss == DEMO_ISS:
            raise SessionExpired("Demo mode is off; open the app from the EHR.")
        return FhirSource(settings, clients, launch)

    return source
