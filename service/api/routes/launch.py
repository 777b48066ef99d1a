"""SMART launch routes (EHR and standalone), the callback, our public keys and ``whoami``.

The callback sends the browser to the clinician's pages (``/app``, service.api.routes.pages).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse

from service.api.deps import RequireScreen, Services
from service.auth.client_auth import public_jwks
from service.auth.cookies import browser_id, ensure_browser_id
from service.auth.launch import begin_launch, complete_launch

__all__ = ["api_router", "router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["launch"])
api_router = APIRouter(prefix="/api/v1", tags=["api"])

Param = Annotated[str | None, Query(max_length=2048)]


async def _start(request: Request, services: Services, iss: str | None, launch: str | None,
                 standalone: bool) -> RedirectResponse:
    response = RedirectResponse("/", status_code=302)
    bid = ensure_browser_id(request, response, services.settings)
    url = await begin_launch(services.smart, iss=iss, launch=launch, standalone=standalone,
                             browser_id=bid)
    response.headers["location"] = url
    return response


@router.get("/launch", summary="SMART EHR launch", response_class=RedirectResponse,
            status_code=302)
async def ehr_launch(request: Request, services: Services, iss: Param = None,
                     launch: Param = None) -> RedirectResponse:
    return await _start(request, services, iss, launch, standalone=False)


@router.get("/launch/standalone", summary="SMART standalone launch",
            response_class=RedirectResponse, status_code=302)
async def standalone_launch(request: Request, services: Services,
                            iss: Param = None) -> RedirectResponse:
    return await _start(request, services, iss, None, standalone=True)


@router.get("/callback", summary="SMART redirect URI", response_class=RedirectResponse,
            status_code=303)
async def callback(request: Request, services: Services, state: Param = None,
                   code: Param = None, error: Param = None) -> RedirectResponse:
    done = await complete_launch(services.smart, state=state, code=code, error=error,
                                 browser_id=browser_id(request, services.settings))
    return RedirectResponse(f"/app?ctx={done.handle}", status_code=303)


@router.get("/.well-known/jwks.json", summary="This client's public keys (private_key_jwt)")
async def jwks(services: Services) -> JSONResponse:
    return JSONResponse(public_jwks(services.settings))


@api_router.get("/whoami", summary="The caller as the API sees it (needs ketamine.screen)")
async def whoami(caller: RequireScreen) -> dict[str, Any]:
    return {"subject": caller.subject, "client_id": caller.client_id,
            "scopes": sorted(caller.scopes)}
