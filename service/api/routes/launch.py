"""SMART launch routes (EHR and standalone), the callback, our public keys and ``whoami``.

The callback sends the browser to the clinician's pages (``/app``, service.api.routes.pages).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse

from service.api.audit import AuditAccess
from service.api.deps import RequireScreen, Services
from service.api.examples import json_example
from service.auth.client_auth import public_jwks
from service.auth.cookies import browser_id, ensure_browser_id
from service.auth.launch import begin_launch, complete_launch
from service.state.drafts import draft_owner

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


_TO_AUTHORIZE = {"description": "To the EHR's authorize endpoint (PKCE S256, state, nonce)",
                 "headers": {"Location": {"schema": {"type": "string"}, "example":
                             "https://ehr.example.org/authorize?response_type=code&..."}}}


@router.get("/launch", summary="SMART EHR launch", response_class=RedirectResponse,
            status_code=302, operation_id="startEhrLaunch",
            responses={302: _TO_AUTHORIZE, 400: {"description": "iss not allowed, or the EHR's "
                                                 "SMART configuration is unusable"}})
async def ehr_launch(request: Request, services: Services, iss: Param = None,
                     launch: Param = None) -> RedirectResponse:
    """The EHR opens this with its FHIR base URL (``iss``, one of KETAMINE_ALLOWED_ISSUERS) and a
    ``launch`` id; the browser is sent on to the EHR's authorize endpoint
    (https://hl7.org/fhir/smart-app-launch/app-launch.html#step-1-app-registration)."""
    return await _start(request, services, iss, launch, standalone=False)


@router.get("/launch/standalone", summary="SMART standalone launch",
            response_class=RedirectResponse, status_code=302,
            operation_id="startStandaloneLaunch",
            responses={302: _TO_AUTHORIZE, 400: {"description": "iss not allowed"}})
async def standalone_launch(request: Request, services: Services,
                            iss: Param = None) -> RedirectResponse:
    """Opened outside the EHR: the clinician picks the patient at the EHR
    (``launch/patient`` scope)."""
    return await _start(request, services, iss, None, standalone=True)


@router.get("/callback", summary="SMART redirect URI", response_class=RedirectResponse,
            status_code=303, operation_id="completeLaunch", responses={
                303: {"description": "To the screening page of the launched patient, or to the "
                                     "treatment session form when a draft of it is waiting for "
                                     "this patient and user",
                      "headers": {"Location": {"schema": {"type": "string"},
                                               "example": "/app?ctx=Qm9vdGVk"}}},
                400: {"description": "Unknown or used state, refused authorization, bad "
                                     "id_token"},
                401: {"description": "This browser did not start the launch"},
                502: {"description": "The EHR's token endpoint failed"}})
async def callback(request: Request, services: Services, access: AuditAccess,
                   state: Param = None, code: Param = None,
                   error: Param = None) -> RedirectResponse:
    """The EHR's answer to the authorize request: the code is exchanged for tokens (kept on the
    server, never sent to the browser) and the browser goes to the app."""
    done = await complete_launch(services.smart, state=state, code=code, error=error,
                                 browser_id=browser_id(request, services.settings))
    session = done.session
    access.by(session.fhir_user or session.id_token_sub, "user")
    access.patient = session.patient
    # A draft of the session form waiting for this patient and user: straight back to the form.
    owner = draft_owner(session.iss, session.patient, session.fhir_user, session.id_token_sub)
    page = "/app/session" if owner and await services.drafts.load(owner) else "/app"
    return RedirectResponse(f"{page}?ctx={done.handle}", status_code=303)


@router.get("/.well-known/jwks.json", summary="This client's public keys (private_key_jwt)",
            operation_id="getJwks", responses={200: json_example(
                {"keys": [{"kty": "RSA", "kid": "c0ffee", "alg": "RS384", "use": "sig",
                           "n": "u1SU1L...", "e": "AQAB"}]})})
async def jwks(services: Services) -> JSONResponse:
    """The public half of KETAMINE_PRIVATE_KEY_FILE, to register with the EHR (empty without
    a key)."""
    return JSONResponse(public_jwks(services.settings))


@api_router.get("/whoami", summary="The caller as the API sees it (needs ketamine.screen)",
                operation_id="whoAmI", responses={200: json_example(
                    {"subject": "svc-scheduler", "client_id": "scheduler",
                     "scopes": ["ketamine.screen"]})})
async def whoami(caller: RequireScreen) -> dict[str, Any]:
    """The token's subject, client and scopes as this service read them: a first call to check
    an integration."""
    return {"subject": caller.subject, "client_id": caller.client_id,
            "scopes": sorted(caller.scopes)}
