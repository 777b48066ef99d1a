"""The treatment course pages: a session's printable REMS form and its submission, the REMS forms
due, integration sessions, PHQ-9 entry, and the patient's treatment timeline.

Like the other pages (service.api.routes.pages): server-rendered, no inline script or style, every
page behind the launch cookie, every form with the launch's CSRF token, and every write one
idempotent transaction through service.workflow (via the launch's Source). The print view is the
session's REMS form content in the session form's order, styled for paper by ``print.css``; its
PDF is the browser's "Save as PDF" of that view (no server-side renderer and its native libraries).
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from service.api.deps import AppSettings, PageSourceDep, RequireSession
from service.api.routes.pages import csrf_ok, page_banner, problem_page, render
from service.auth.session import ActiveLaunch
from service.errors import ServiceError
from service.render import charts
from service.render.course import due_rows, first_dose, print_sections, timeline
from service.render.course_forms import (
    INTEGRATION_ORDER,
    PHQ9_ORDER,
    SUBMISSION_ORDER,
    ParsedForm,
    modality_choices,
    parse_integration_form,
    parse_phq9_form,
    parse_submission_form,
    phq9_choices,
    session_options,
)
from service.render.html import banner
from service.render.phq9 import phq9_outcome
from service.render.rems_form import SubmissionInput
from service.render.session_items import REMS_SUBMISSION_DAYS

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/app", tags=["pages"], include_in_schema=False)

SessionId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
_EXPIRED = ("This form expired or did not come from this app. Go back, reload the page and "
            "submit again.")


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


async def _posted(request: Request, launch: ActiveLaunch) -> dict[str, str] | None:
    """The posted fields (strings only), or None when the CSRF token is not this launch's."""
    form = await request.form()
    values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    return values if csrf_ok(launch, values.pop("csrf", "")) else None


def _refused(request: Request, launch: ActiveLaunch) -> HTMLResponse:
    return render(request, launch, "problem.html", 403, patient_id=launch.session.patient or "",
                  message=_EXPIRED)


@router.get("/session/{session_id}/print", summary="A session's REMS form, for print and PDF",
            response_class=HTMLResponse)
async def session_print(request: Request, launch: RequireSession, source: PageSourceDep,
                        session_id: SessionId) -> HTMLResponse:
    try:
        patient = await source.patient()
        course = await source.course()
    except ServiceError as err:
        return problem_page(request, launch, err)
    record = course.session(session_id)
    if record is None:
        return render(request, launch, "problem.html", 404, patient_id=launch.session.patient,
                      message="No session with this identifier is on the chart.")
    return render(request, launch, "session_print.html", nav="rems", rems_days=REMS_SUBMISSION_DAYS,
                  patient_id=launch.session.patient or "",
                  patient=banner(patient, launch.session.patient or ""),
                  print_patient=banner(patient, launch.session.patient or ""),
                  record=record, sections=print_sections(record),
                  clinician=", ".join(record.performers("monitoring-minutes")) or "not recorded",
                  task=course.task_of(session_id), today=_today(),
                  values={"submitted_on": _today()}, errors={}, summary=[])


def _submission_dates(checked: ParsedForm[SubmissionInput], dose_at: datetime | None,
                      now: datetime) -> None:
    """A form is submitted after its session and not in the future (errors at the date)."""
    if checked.parsed is None:
        return
    day = checked.parsed.submitted_on
    if dose_at is not None and day < dose_at.date():
        checked.errors["submitted_on"] = (f"The form cannot have been submitted before the "
                                          f"session ({dose_at.date().isoformat()}).")
    elif day > now.date():
        checked.errors["submitted_on"] = "The date submitted cannot be in the future."
    if checked.errors:
        checked.parsed = None


@router.post("/session/{session_id}/submitted", summary="Mark a session's REMS form submitted",
             response_class=HTMLResponse)
async def mark_submitted(request: Request, launch: RequireSession, source: PageSourceDep,
                         session_id: SessionId) -> Response:
    values = await _posted(request, launch)
    if values is None:
        return _refused(request, launch)
    checked = parse_submission_form(values)
    try:
        course = await source.course()
        task = course.task_of(session_id)
        if task is None:
            return render(request, launch, "problem.html", 404,
                          patient_id=launch.session.patient,
                          message="This session has no REMS form to submit (not esketamine).")
        record = course.session(session_id)
        _submission_dates(checked, record.dose_at if record else None, source.now())
        if checked.parsed is None:
            patient = await source.patient()
            return render(request, launch, "session_print.html", 422, nav="rems",
                          rems_days=REMS_SUBMISSION_DAYS,
                          patient_id=launch.session.patient or "",
                          patient=banner(patient, launch.session.patient or ""),
                          print_patient=banner(patient, launch.session.patient or ""),
                          record=record, sections=print_sections(record) if record else [],
                          clinician="", task=task, today=_today(), values=checked.values,
                          errors=checked.errors,
                          summary=checked.error_list(SUBMISSION_ORDER))
        written = await source.save_course(checked.parsed, task=task.resource)
        patient_banner = await page_banner(source, launch)
    except ServiceError as err:
        return problem_page(request, launch, err)
    log.info("REMS form of session %s marked submitted for patient=%s", session_id,
             launch.session.patient)
    return render(request, launch, "saved.html", patient=patient_banner,
                  patient_id=launch.session.patient or "", written=written,
                  heading="REMS form marked submitted", nav="rems")


@router.get("/rems", summary="REMS Patient Monitoring Forms due", response_class=HTMLResponse)
async def rems_due(request: Request, launch: RequireSession,
                   source: PageSourceDep) -> HTMLResponse:
    try:
        patient = await page_banner(source, launch)
        course = await source.course()
    except ServiceError as err:
        return problem_page(request, launch, err)
    rows = due_rows(course, source.now().date())
    return render(request, launch, "rems_due.html", nav="rems", rems_days=REMS_SUBMISSION_DAYS,
                  patient=patient,
                  patient_id=launch.session.patient or "", rows=rows)


def _integration_context(course: Any, values: dict[str, str], errors: dict[str, str],
                         summary: list[tuple[str, str]]) -> dict[str, Any]:
    return {"sessions": session_options(course.sessions), "modalities": modality_choices(),
            "values": values, "errors": errors, "summary": summary, "nav": "integration"}


@router.get("/integration", summary="Document an integration session",
            response_class=HTMLResponse)
async def integration_form(request: Request, launch: RequireSession, source: PageSourceDep,
                           follows: str = "") -> HTMLResponse:
    try:
        patient = await page_banner(source, launch)
        course = await source.course()
    except ServiceError as err:
        return problem_page(request, launch, err)
    options = session_options(course.sessions)
    chosen = follows if follows in dict(options) else (options[0][0] if options else "")
    values = {"integration_id": f"i-{secrets.token_hex(8)}", "date": _today(), "tz": "UTC",
              "follows": chosen, "minutes": "50"}
    return render(request, launch, "integration.html", patient=patient,
                  patient_id=launch.session.patient or "",
                  **_integration_context(course, values, {}, []))


@router.post("/integration", summary="Record an integration session",
             response_class=HTMLResponse)
async def integration_submit(request: Request, launch: RequireSession,
                             source: PageSourceDep) -> Response:
    values = await _posted(request, launch)
    if values is None:
        return _refused(request, launch)
    try:
        patient = await page_banner(source, launch)
        course = await source.course()
        checked = parse_integration_form(values, patient_id=launch.session.patient or "",
                                         sessions=course.sessions)
        if checked.parsed is None:
            return render(request, launch, "integration.html", 422, patient=patient,
                          patient_id=launch.session.patient or "",
                          **_integration_context(course, checked.values, checked.errors,
                                                 checked.error_list(INTEGRATION_ORDER)))
        written = await source.save_course(checked.parsed)
    except ServiceError as err:
        return problem_page(request, launch, err)
    return render(request, launch, "saved.html", patient=patient,
                  patient_id=launch.session.patient or "", written=written,
                  heading="Integration session recorded", nav="integration")


@router.get("/timeline", summary="The patient's treatment timeline", response_class=HTMLResponse)
async def timeline_page(request: Request, launch: RequireSession, source: PageSourceDep,
                        settings: AppSettings) -> HTMLResponse:
    try:
        patient = await page_banner(source, launch)
        course = await source.course()
    except ServiceError as err:
        return problem_page(request, launch, err)
    window = settings.integration_window_days
    outcome = phq9_outcome(course.phq9, first_dose(course))
    chart = charts.phq9_chart(course.phq9, outcome=outcome) if course.phq9 else None
    return render(request, launch, "timeline.html", nav="timeline", patient=patient,
                  patient_id=launch.session.patient or "",
                  events=timeline(course, source.now(), window), window=window,
                  outcome=outcome, phq9=chart)


@router.get("/phq9", summary="Enter a PHQ-9", response_class=HTMLResponse)
async def phq9_form(request: Request, launch: RequireSession,
                    source: PageSourceDep) -> HTMLResponse:
    try:
        patient = await page_banner(source, launch)
    except ServiceError as err:
        return problem_page(request, launch, err)
    values = {"response_id": f"q-{secrets.token_hex(8)}", "date": _today(), "tz": "UTC"}
    return render(request, launch, "phq9.html", nav="phq9", patient=patient,
                  patient_id=launch.session.patient or "", values=values, errors={},
                  summary=[], **phq9_choices())


@router.post("/phq9", summary="Record a PHQ-9", response_class=HTMLResponse)
async def phq9_submit(request: Request, launch: RequireSession,
                      source: PageSourceDep) -> Response:
    values = await _posted(request, launch)
    if values is None:
        return _refused(request, launch)
    checked = parse_phq9_form(values, patient_id=launch.session.patient or "")
    try:
        patient = await page_banner(source, launch)
        if checked.parsed is None:
            return render(request, launch, "phq9.html", 422, nav="phq9", patient=patient,
                          patient_id=launch.session.patient or "", values=checked.values,
                          errors=checked.errors, summary=checked.error_list(PHQ9_ORDER),
                          **phq9_choices())
        written = await source.save_course(checked.parsed)
    except ServiceError as err:
        return problem_page(request, launch, err)
    return render(request, launch, "saved.html", patient=patient,
                  patient_id=launch.session.patient or "", written=written, nav="phq9",
                  heading=f"PHQ-9 recorded: total {checked.parsed.total}")
