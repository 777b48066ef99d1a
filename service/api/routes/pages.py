"""The clinician's pages: the screening result (``/app``, where the SMART launch lands), saving it
to the chart, and documenting a treatment session (``/app/session``).

Server-rendered (Jinja2), no inline script or style, no CDN: the EHR's network and its
Content-Security-Policy allow neither. Every page needs the launch cookie (``RequireSession``) and
every form carries a CSRF token derived from the launch's server-side key. The session form keeps
a draft on the server (:mod:`service.state.drafts`): app.js autosaves it, a submit keeps it before
it asks the EHR anything, and the chart having the session deletes it. Where the data comes
from is the launch's :class:`~service.api.sources.Source` (``PageSourceDep``): the EHR's FHIR
server, or a demo Bundle.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import FormData

from service.api.deps import (
    AppSettings,
    PageSourceDep,
    RequireAppSession,
    RequireSession,
    Services,
)
from service.api.observe import route_template
from service.api.sources import DEMO_ISS, Source
from service.api.templates import templates
from service.auth.session import ActiveLaunch
from service.config import Settings
from service.errors import FhirError, ServiceError, SessionExpired
from service.logs import pseudonym
from service.render import charts
from service.render.html import (
    Banner,
    banner,
    eligibility_view,
    group_findings,
    ordered_first,
    product_verdicts,
    smart_style_css,
)
from service.render.phq9 import phq9_outcome
from service.render.session_form import form_choices, parse_session_form
from service.render.texts import VERDICTS, limits_line
from service.state.drafts import Draft, DraftOwner, draft_owner, kept_for
from service.workflow import order_products

__all__ = ["csrf_ok", "draft_time", "page_banner", "problem_page", "render", "router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/app", tags=["pages"], include_in_schema=False)

_CSRF_CONTEXT = b"ketamine-screen csrf v1"


def csrf_token(launch: ActiveLaunch) -> str:
    """Tied to this launch: derived from its store key, which holds the cookie's hash."""
    return hmac.new(launch.key.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_ok(launch: ActiveLaunch, token: str) -> bool:
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


def problem_page(request: Request, launch: ActiveLaunch, err: ServiceError, *,
                 draft_kept: str | None = None) -> HTMLResponse:
    """The page's own error page (inside the app's frame, with its navigation): 502 when the EHR
    failed us, 400 for anything else; ``draft_kept`` says how long the form's draft is kept."""
    log.warning("page %s for patient %s: %s", route_template(request.scope),
                pseudonym(launch.session.patient), type(err).__name__)
    status = 502 if isinstance(err, FhirError) else 400
    return render(request, launch, "problem.html", status, message=str(err),
                  patient_id=launch.session.patient or "", draft_kept=draft_kept)


def _bp_chart(settings: Settings, points: list[charts.BpPoint]) -> charts.Chart:
    return charts.session_bp_chart(
        points, elevated=(settings.bp_systolic_elevated, settings.bp_diastolic_elevated),
        uncontrolled=(settings.bp_systolic_uncontrolled, settings.bp_diastolic_uncontrolled))


@router.get("", summary="Screening result for the launch's patient", response_class=HTMLResponse)
async def screening_page(request: Request, launch: RequireSession, source: PageSourceDep,
                         settings: AppSettings) -> HTMLResponse:
    try:
        data = await source.load(None, history=True)
    except ServiceError as err:
        return problem_page(request, launch, err)
    result = data.result
    outcome = phq9_outcome(data.phq9, data.first_session)
    return render(
        request, launch, "screening.html",
        patient=banner(data.patient, result.patient.removeprefix("Patient/")),
        patient_id=launch.session.patient or "",
        verdict=VERDICTS[result.verdict.label], result=result,
        order=launch.session.order,
        verdicts=ordered_first(product_verdicts(result), order_products(
            data.raw, launch.session.order, ruleset=result.ruleset)),
        eligibility=eligibility_view(result),
        limits=limits_line(result.thresholds),
        as_of=result.as_of.isoformat().replace("+00:00", "Z"),
        groups=group_findings(result), problems=data.raw.problems,
        phq9=charts.phq9_chart(data.phq9, outcome=outcome) if data.phq9 else None,
        outcome=outcome,
        last_session=_bp_chart(settings, data.last_session) if data.last_session else None,
        history_problem=data.history_problem)


@router.post("/save", summary="Write the screening result to the chart",
             response_class=HTMLResponse)
async def save_screening(request: Request, launch: RequireSession, source: PageSourceDep,
                         csrf: Annotated[str, Form(max_length=128)] = "",
                         as_of: Annotated[str, Form(max_length=64)] = "") -> HTMLResponse:
    if not csrf_ok(launch, csrf):
        return render(request, launch, "problem.html", 403, patient_id=launch.session.patient,
                      message="This form expired or did not come from this app. Go back, "
                              "reload the page and save again.")
    try:
        when = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
    except ValueError:
        when = datetime.now(UTC)
    try:
        data = await source.load(when, history=False)
        written = await source.save_screening(data.result, data.raw)
    except ServiceError as err:
        return problem_page(request, launch, err)
    return render(request, launch, "saved.html", patient_id=launch.session.patient or "",
                  patient=banner(data.patient, launch.session.patient or ""),
                  verdict=VERDICTS[data.result.verdict.label], written=written,
                  heading="Screening result saved")


def _session_context(form_values: dict[str, str], adverse: list[str],
                     errors: dict[str, str], summary: list[tuple[str, str]],
                     notes: dict[str, str] | None = None) -> dict[str, Any]:
    return {"values": form_values, "adverse": adverse, "errors": errors, "summary": summary,
            "notes": notes or {}, **form_choices()}


async def page_banner(source: Source, launch: ActiveLaunch) -> Banner | None:
    """The banner when the EHR wants one (read failures then surface as a problem page)."""
    if not launch.session.need_patient_banner:
        return None
    return banner(await source.patient(), launch.session.patient or "")


@router.get("/session", summary="Treatment session form", response_class=HTMLResponse)
async def session_form(request: Request, launch: RequireSession, source: PageSourceDep,
                       services: Services) -> HTMLResponse:
    values = {"session_id": f"s-{secrets.token_hex(8)}",
              "session_date": datetime.now(UTC).date().isoformat(), "tz": "UTC"}
    try:
        patient = await page_banner(source, launch)
    except ServiceError as err:
        return problem_page(request, launch, err)
    owner = _owner(launch)
    draft = await services.drafts.load(owner) if owner else None
    if draft is not None:
        # What the nurse typed wins over every default, the session id included, so a session
        # that did reach the chart before the page died is not written twice.
        return render(request, launch, "session.html", patient=patient,
                      patient_id=launch.session.patient or "",
                      draft_note=f"A draft from {draft_time(draft)} was restored; nothing has "
                                 "been written to the chart yet. Check it and save.",
                      **_session_context({**values, **draft.values}, draft.adverse, {}, []))
    try:
        defaults, notes = await source.session_defaults()
        note = ("Pre-filled from the last session (product, dose, route, setting) and the "
                "latest screen (concomitant medications): check each before saving."
                if "product" in notes else "Pre-filled from the latest screen (concomitant "
                "medications): check each before saving.")
    except FhirError as err:
        log.warning("session form pre-fill for patient=%s: %s", pseudonym(launch.session.patient),
                    type(err).__name__)
        defaults, notes = {}, {}
        note = "The last session and the screen could not be read: nothing is pre-filled."
    return render(request, launch, "session.html", patient=patient,
                  patient_id=launch.session.patient or "", prefill_note=note,
                  **_session_context({**defaults, **values}, [], {}, [], notes))


def _owner(launch: ActiveLaunch) -> DraftOwner | None:
    s = launch.session
    return draft_owner(s.iss, s.patient, s.fhir_user, s.id_token_sub)


def draft_time(draft: Draft) -> str:
    """When the draft was saved, in the form's time zone: HH:MM, with the date when not today."""
    try:
        zone: tzinfo = ZoneInfo(draft.values.get("tz", "").strip() or "UTC")
    except (ValueError, ZoneInfoNotFoundError):
        zone = UTC
    saved = datetime.fromtimestamp(draft.saved_at, zone)
    same_day = saved.date() == datetime.now(zone).date()
    return saved.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")


def _posted(form: FormData) -> tuple[dict[str, str], list[str]]:
    values = {k: v for k, v in form.multi_items() if isinstance(v, str) and k != "ae"}
    return values, [v for v in form.getlist("ae") if isinstance(v, str)]


@router.post("/session/draft", summary="Keep a draft of the treatment session form")
async def session_draft(request: Request, launch: RequireAppSession,
                        services: Services) -> JSONResponse:
    """The page's autosave: kept on this server (sealed), never sent to the EHR, so it works
    after the EHR's authorization has lapsed. Answers JSON for app.js."""
    values, adverse = _posted(await request.form())
    if not csrf_ok(launch, values.pop("csrf", "")):
        return JSONResponse({"saved": False, "reason": "csrf"}, status_code=403)
    owner = _owner(launch)
    if owner is None:
        return JSONResponse({"saved": False, "reason": "no-user"}, status_code=409)
    draft = await services.drafts.save(owner, launch.key, values, adverse)
    return JSONResponse({"saved": True, "at": draft_time(draft)})


@router.post("/session", summary="Record a treatment session", response_class=HTMLResponse)
async def session_submit(request: Request, launch: RequireAppSession, services: Services,
                         settings: AppSettings) -> Response:
    values, adverse = _posted(await request.form())
    patient_id = launch.session.patient or ""
    if not csrf_ok(launch, values.pop("csrf", "")):
        return render(request, launch, "problem.html", 403, patient_id=patient_id,
                      message="This form expired or did not come from this app. Go back, "
                              "reload the page and submit again.")
    owner = _owner(launch)
    # Kept before the EHR is asked anything: whatever fails next (the EHR's authorization, the
    # EHR itself, a field), what was typed is on this server until the chart has it.
    if owner is not None:
        await services.drafts.save(owner, launch.key, values, adverse)
    kept = kept_for(services.drafts.ttl_seconds) if owner is not None else None
    checked = parse_session_form(values, adverse, patient_id=patient_id)
    try:
        source = services.page_source(launch)
        patient = await page_banner(source, launch)
        if checked.session is None:
            return render(request, launch, "session.html", 422, patient=patient,
                          patient_id=patient_id, draft_kept=kept,
                          **_session_context(checked.values, checked.adverse, checked.errors,
                                             checked.error_list()))
        written = await source.save_session(checked.session)
    except SessionExpired as err:
        err.draft_kept_for = kept
        raise
    except ServiceError as err:
        return problem_page(request, launch, err, draft_kept=kept)
    if owner is not None:
        await services.drafts.delete(owner, launch.key, checked.session.session_id)
    session = checked.session
    chart = _bp_chart(settings, charts.session_bp_points(session.pre_dose, session.at_40_min,
                                                         session.discharge))
    return render(request, launch, "saved.html", patient=patient, patient_id=patient_id,
                  written=written, heading="Treatment session recorded", chart=chart,
                  session=session, print_href=f"/app/session/{session.session_id}/print")


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
