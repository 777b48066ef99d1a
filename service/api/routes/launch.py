"""SMART launch routes (EHR and standalone), the callback, and the placeholder clinician page.

The screening UI proper comes later; ``GET /app`` shows the launch's patient id, a banner when the
EHR asks for one, and the verdict once ``service.screening.engine`` exists.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse

from service.api.deps import RequireScreen
from service.auth.client_auth import public_jwks
from service.auth.cookies import browser_id, ensure_browser_id
from service.auth.launch import begin_launch, complete_launch
from service.auth.smart import SmartApp
from service.config import Settings

__all__ = ["api_router", "router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["launch"])
api_router = APIRouter(prefix="/api/v1", tags=["api"])

Param = Annotated[str | None, Query(max_length=2048)]


def _smart(request: Request) -> SmartApp:
    smart: SmartApp = request.app.state.smart
    return smart


async def _start(request: Request, iss: str | None, launch: str | None,
                 standalone: bool) -> RedirectResponse:
    settings: Settings = request.app.state.settings
    response = RedirectResponse("/", status_code=302)
    bid = ensure_browser_id(request, response, settings)
    url = await begin_launch(_smart(request), iss=iss, launch=launch, standalone=standalone,
                             browser_id=bid)
    response.headers["location"] = url
    return response


@router.get("/launch", summary="SMART EHR launch", response_class=RedirectResponse,
            status_code=302)
async def ehr_launch(request: Request, iss: Param = None, launch: Param = None) -> RedirectResponse:
    return await _start(request, iss, launch, standalone=False)


@router.get("/launch/standalone", summary="SMART standalone launch",
            response_class=RedirectResponse, status_code=302)
async def standalone_launch(request: Request, iss: Param = None) -> RedirectResponse:
    return await _start(request, iss, None, standalone=True)


@router.get("/callback", summary="SMART redirect URI", response_class=RedirectResponse,
            status_code=303)
async def callback(request: Request, state: Param = None, code: Param = None,
                   error: Param = None) -> RedirectResponse:
    settings: Settings = request.app.state.settings
    done = await complete_launch(_smart(request), state=state, code=code, error=error,
                                 browser_id=browser_id(request, settings))
    return RedirectResponse(f"/app?ctx={done.handle}", status_code=303)


@router.get("/.well-known/jwks.json", summary="This client's public keys (private_key_jwt)")
async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(public_jwks(request.app.state.settings))


@api_router.get("/whoami", summary="The caller as the API sees it (needs ketamine.screen)")
async def whoami(caller: RequireScreen) -> dict[str, Any]:
    return {"subject": caller.subject, "client_id": caller.client_id,
            "scopes": sorted(caller.scopes)}


def _banner(patient: dict[str, Any]) -> str:
    names = patient.get("name") or [{}]
    name = names[0] if isinstance(names, list) and names else {}
    given = " ".join(name.get("given") or [])
    text = name.get("text") or f"{given} {name.get('family', '')}".strip() or "(no name)"
    return f"{text} · born {patient.get('birthDate', '?')} · {patient.get('gender', '?')}"
