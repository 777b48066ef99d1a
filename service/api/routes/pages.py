"""The clinician's pages: the screening result (``/app``, where the SMART launch lands), saving it
to the chart, and documenting a treatment session (``/app/session``).

Server-rendered (Jinja2), no inline script or style, no CDN: the EHR's network and its
Content-Security-Policy allow neither. Every page needs the launch cookie (``RequireSession``) and
every form carries a CSRF token derived from the launch's server-side key. Where the data comes
from is a :class:`Source`: the EHR's FHIR server, or a demo Bundle (``service.api.routes.demo``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Protocol
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from service import workflow
from service.api.deps import ActiveLaunch, RequireSession
from service.api.errors import current_request_id
from service.auth.session import SessionAuth, SessionExpired
from service.config import Settings
from service.errors import FhirError, ServiceError
from service.fhir.client import FhirClient
from service.render import charts
from service.render.html import (
    ADVERSE_EVENTS,
    MOAAS_LEVELS,
    NUMBER_FIELDS,
    ROUTES,
    VERDICTS,
    VITALS,
    Banner,
    banner,
    group_findings,
    parse_session_form,
    smart_style_css,
)
from service.render.session import SessionInput
from service.screening.model import RawPatientData, ScreeningResult

__all__ = ["DEMO_ISS", "PageData", "Source", "Written", "install_pages", "router", "templates"]

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parents[2]
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.trim_blocks = templates.env.lstrip_blocks = True
templates.env.globals["bp_legend"] = (
    ("swatch-systolic", "Systolic: solid line, circles"),
    ("swatch-diastolic", "Diastolic: dotted line, squares"),
    ("swatch-uncontrolled", "Dashed red: uncontrolled limit (CH-KETAMINE)"),
    ("swatch-elevated", "Dashed brown: elevated limit (SPRAVATO-PI 5.6)"),
)
router = APIRouter(prefix="/app", tags=["pages"], include_in_schema=False)

DEMO_ISS = "urn:ketamine-screen:demo"
"""The ``iss`` of launch sessions made by the demo launcher: data from the demo Bundles."""
_CSRF_CONTEXT = b"ketamine-screen csrf v1"


@dataclass(slots=True)
class PageData:
    result: ScreeningResult
    raw: RawPatientData
    patient: dict[str, Any]
    phq9: list[tuple[datetime, float]] = field(default_factory=list)
    last_session: list[charts.BpPoint] = field(default_factory=list)
    history_problem: str | None = None


@dataclass(slots=True)
class Written:
    """What a save did: ``Type/id`` written, or (demo) the transaction that would have been sent."""

    locations: list[str]
    warnings: list[str] = field(default_factory=list)
    bundle_json: str | None = None


class Source(Protocol):
    async def patient(self) -> dict[str, Any]: ...
    async def load(self, as_of: datetime | None, *, history: bool) -> PageData: ...
    async def save_screening(self, result: ScreeningResult, raw: RawPatientData) -> Written: ...
    async def save_session(self, session: SessionInput) -> Written: ...


class FhirSource:
    """The launching EHR's FHIR server, with the clinician's access token."""

    def __init__(self, request: Request, launch: ActiveLaunch) -> None:
        self.settings: Settings = request.app.state.settings
        self.launch = launch
        self.auth = SessionAuth(request.app.state.smart, launch.key)
        self.patient_id = launch.session.patient or ""
        self.request_id = current_request_id.get()

    def _client(self) -> FhirClient:
        return FhirClient(self.launch.session.iss, settings=self.settings, auth=self.auth,
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
            data.last_session = charts.last_session_bp(past)
        return data

    async def _history(self, fhir: FhirClient) -> list[dict[str, Any]] | str:
        """PHQ-9 totals and this app's session BP panels; a message when the server fails."""
        patient = ("patient", f"Patient/{self.patient_id}")
        try:
            found = await asyncio.gather(
                fhir.search("Observation", [patient, ("code", "http://loinc.org|44261-6")]),
                fhir.search("Observation", [patient, ("code", "http://loinc.org|85354-9"),
                                            ("identifier", f"{charts.SESSION_SYSTEM}|")]))
        except FhirError as err:
            log.warning("chart data for patient=%s: %s", self.patient_id, err)
            return "The treatment history could not be read from the EHR."
        return [r for result in found for r in result.matches]

    async def save_screening(self, result: ScreeningResult, raw: RawPatientData) -> Written:
        async with self._client() as fhir:
            locations = await workflow.write_screening_result(
                fhir, result, raw, practitioner=self.launch.session.fhir_user)
        return Written(locations)

    async def save_session(self, session: SessionInput) -> Written:
        async with self._client() as fhir:
            done = await workflow.write_session(fhir, session,
                                                practitioner=self.launch.session.fhir_user)
        return Written(list(done.result.locations), done.warnings)


def _patient_json(raw: RawPatientData) -> dict[str, Any]:
    if raw.patient is None:
        return {}
    data: dict[str, Any] = raw.patient.model_dump(mode="json", exclude_none=True)
    return data


def source_for(request: Request, launch: ActiveLaunch) -> Source:
    demo = getattr(request.app.state, "demo_source", None)
    if launch.session.iss == DEMO_ISS:
        if demo is None:
            raise SessionExpired("Demo mode is off; open the app from the EHR.")
        source: Source = demo(launch)
        return source
    return FhirSource(request, launch)


def csrf_token(launch: ActiveLaunch) -> str:
    """Tied to this launch: derived from its store key, which holds the cookie's hash."""
    return hmac.new(launch.key.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def _csrf_ok(launch: ActiveLaunch, token: str) -> bool:
    return hmac.compare_digest(csrf_token(launch), token)


def style_href(url: str | None, request: Request, ctx: str) -> str | None:
    """A stylesheet for the EHR's ``smart_style_url``: only https or same-origin, else None.

    SMART styles are JSON (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
    #styling); a ``.css`` URL is linked as is, JSON is turned into CSS variables by
    ``/app/smart-style.css``.
    """
    if not url:
        return None
    parts, own = urlsplit(url), urlsplit(str(request.base_url))
    if parts.scheme != "https" and (parts.scheme, parts.netloc) != (own.scheme, own.netloc):
        return None
    return url if parts.path.endswith(".css") else f"/app/smart-style.css?ctx={ctx}"


def render(request: Request, launch: ActiveLaunch, name: str, status: int = 200,
           **context: Any) -> HTMLResponse:
    session = launch.session
    page = templates.TemplateResponse(request, name, {
        "ctx": launch.handle, "csrf": csrf_token(launch),
        "demo": session.iss == DEMO_ISS,
        "show_banner": session.need_patient_banner,
        "style_url": session.smart_style_url,
        "style_href": style_href(session.smart_style_url, request, launch.handle),
        **context}, status_code=status)
    return page


def _problem_page(request: Request, launch: ActiveLaunch, err: ServiceError,
                  status: int) -> HTMLResponse:
    log.warning("page %s for patient=%s: %s", request.url.path, launch.session.patient, err)
    return render(request, launch, "problem.html", status, message=str(err),
                  patient_id=launch.session.patient or "")


@router.get("", summary="Screening result for the launch's patient", response_class=HTMLResponse)
async def screening_page(request: Request, launch: RequireSession) -> HTMLResponse:
    try:
        data = await source_for(request, launch).load(None, history=True)
    except ServiceError as err:
        return _problem_page(request, launch, err, 502 if isinstance(err, FhirError) else 400)
    settings: Settings = request.app.state.settings
    result = data.result
    return render(
        request, launch, "screening.html",
        patient=banner(data.patient, result.patient.removeprefix("Patient/")),
        patient_id=launch.session.patient or "",
        verdict=VERDICTS[result.verdict.label], result=result,
        as_of=result.as_of.isoformat().replace("+00:00", "Z"),
        groups=group_findings(result), problems=data.raw.problems,
        phq9=charts.phq9_chart(data.phq9) if data.phq9 else None,
        last_session=charts.session_bp_chart(
            data.last_session, elevated=(settings.bp_systolic_elevated,
                                         settings.bp_diastolic_elevated),
            uncontrolled=(settings.bp_systolic_uncontrolled,
                          settings.bp_diastolic_uncontrolled)) if data.last_session else None,
        history_problem=data.history_problem)


@router.post("/save", summary="Write the screening result to the chart",
             response_class=HTMLResponse)
async def save_screening(request: Request, launch: RequireSession,
                         csrf: Annotated[str, Form(max_length=128)] = "",
                         as_of: Annotated[str, Form(max_length=64)] = "") -> HTMLResponse:
    if not _csrf_ok(launch, csrf):
        return render(request, launch, "problem.html", 403, patient_id=launch.session.patient,
                      message="This form expired or did not come from this app. Go back, "
                              "reload the page and save again.")
    try:
        when = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
    except ValueError:
        when = datetime.now(UTC)
    source = source_for(request, launch)
    try:
        data = await source.load(when, history=False)
        written = await source.save_screening(data.result, data.raw)
    except ServiceError as err:
        return _problem_page(request, launch, err, 502 if isinstance(err, FhirError) else 400)
    return render(request, launch, "saved.html", patient_id=launch.session.patient or "",
                  patient=banner(data.patient, launch.session.patient or ""),
                  verdict=VERDICTS[data.result.verdict.label], written=written,
                  heading="Screening result saved")


def _session_context(form_values: dict[str, str], adverse: list[str],
                     errors: dict[str, str], summary: list[tuple[str, str]]) -> dict[str, Any]:
    return {"values": form_values, "adverse": adverse, "errors": errors, "summary": summary,
            "numbers": NUMBER_FIELDS, "vitals": VITALS, "routes": ROUTES,
            "moaas_options": [(str(n), f"{n}: {text}") for n, text in MOAAS_LEVELS],
            "adverse_events": ADVERSE_EVENTS}


async def _banner(source: Source, launch: ActiveLaunch) -> Banner | None:
    """The banner when the EHR wants one (read failures then surface as a problem page)."""
    if not launch.session.need_patient_banner:
        return None
    return banner(await source.patient(), launch.session.patient or "")


@router.get("/session", summary="Treatment session form", response_class=HTMLResponse)
async def session_form(request: Request, launch: RequireSession) -> HTMLResponse:
    values = {"session_id": f"s-{secrets.token_hex(8)}",
              "session_date": datetime.now(UTC).date().isoformat(), "tz": "UTC"}
    try:
        patient = await _banner(source_for(request, launch), launch)
    except ServiceError as err:
        return _problem_page(request, launch, err, 502 if isinstance(err, FhirError) else 400)
    return render(request, launch, "session.html", patient=patient,
                  patient_id=launch.session.patient or "",
                  **_session_context(values, [], {}, []))


@router.post("/session", summary="Record a treatment session", response_class=HTMLResponse)
async def session_submit(request: Request, launch: RequireSession) -> Response:
    posted = await request.form()
    values = {k: v for k, v in posted.multi_items() if isinstance(v, str) and k != "ae"}
    adverse = [v for v in posted.getlist("ae") if isinstance(v, str)]
    patient_id = launch.session.patient or ""
    if not _csrf_ok(launch, values.pop("csrf", "")):
        return render(request, launch, "problem.html", 403, patient_id=patient_id,
                      message="This form expired or did not come from this app. Go back, "
                              "reload the page and submit again.")
    checked = parse_session_form(values, adverse, patient_id=patient_id)
    source = source_for(request, launch)
    try:
        patient = await _banner(source, launch)
        if checked.session is None:
            return render(request, launch, "session.html", 422, patient=patient,
                          patient_id=patient_id,
                          **_session_context(checked.values, checked.adverse, checked.errors,
                                             checked.error_list()))
        written = await source.save_session(checked.session)
    except ServiceError as err:
        return _problem_page(request, launch, err, 502 if isinstance(err, FhirError) else 400)
    settings: Settings = request.app.state.settings
    session = checked.session
    chart = charts.session_bp_chart(
        charts.session_bp_points(session.pre_dose, session.at_40_min, session.discharge),
        elevated=(settings.bp_systolic_elevated, settings.bp_diastolic_elevated),
        uncontrolled=(settings.bp_systolic_uncontrolled, settings.bp_diastolic_uncontrolled))
    return render(request, launch, "saved.html", patient=patient, patient_id=patient_id,
                  written=written, heading="Treatment session recorded", chart=chart,
                  session=session)


@router.get("/smart-style.css", summary="The EHR's SMART style as CSS variables")
async def smart_style(launch: RequireSession) -> Response:
    """Fetches the launch's ``smart_style_url`` (https only, small, short timeout) as CSS."""
    url = launch.session.smart_style_url or ""
    css = ""
    if url.startswith("https://"):
        try:
            async with httpx.AsyncClient(timeout=3, follow_redirects=False) as http:
                answer = await http.get(url, headers={"Accept": "application/json"})
            if answer.status_code == 200 and len(answer.content) <= 65536:
                css = smart_style_css(answer.json())
        except (httpx.HTTPError, ValueError) as err:
            log.warning("smart_style_url unusable: %s", type(err).__name__)
    return Response(css, media_type="text/css",
                    headers={"Cache-Control": "private, max-age=3600"})


def install_pages(app: FastAPI, settings: Settings) -> None:
    """Static files, the clinician's pages and, in demo mode only, the demo launcher."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    if settings.demo:
        from service.api.routes.demo import install as install_demo

        install_demo(app)
