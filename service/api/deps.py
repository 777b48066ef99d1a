"""Dependencies shared by the route modules, as ``Annotated`` aliases.

Every route needs credentials except the few listed in :data:`PUBLIC_ROUTES`
(``tests/auth/test_route_protection.py`` walks ``app.routes`` and enforces it):

* REST API routes take a bearer JWT: declare ``caller: RequireScreen`` (scope ``ketamine.screen``)
  or ``caller: RequireWrite`` (scope ``ketamine.write``) as a parameter, or
  ``dependencies=[Depends(require_scope("..."))]`` on the router.
* Clinician pages take the launch cookie: ``launch: RequireSession``, and their data from
  ``source: PageData``. What must work while the EHR's authorization has lapsed (the session
  form's draft, its submit, which keeps a draft first) takes ``launch: RequireAppSession``: the
  cookie and the stored session, no token refresh.
* CDS services take the CDS client's JWT: ``client: VerifiedCdsClient``.

The app's services (:class:`~service.api.services.AppServices`) come as ``services: Services``.
Each of the three credential checks also tells the request's audit record who is calling
(:mod:`service.api.audit`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Query, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials
from fastapi.openapi.models import OAuthFlows as OAuthFlowsModel
from fastapi.security import OAuth2

from service.api.audit import access_of
from service.api.services import AppServices, services_of
from service.api.sources import Source
from service.auth.api_tokens import Caller
from service.auth.cds_client import CdsCaller, cds_bearer_token
from service.auth.cookies import browser_id
from service.auth.scopes import API_SCOPES, SCOPE_SCREEN, SCOPE_WRITE
from service.auth.session import ActiveLaunch, SmartSession, fresh_session, session_key
from service.config import Settings
from service.errors import BearerError, InputError, SessionExpired
from service.state.drafts import kept_for

__all__ = [
    "PUBLIC_PREFIXES",
    "PUBLIC_ROUTES",
    "AppSettings",
    "CurrentCaller",
    "PageSourceDep",
    "RequireAppSession",
    "RequireScreen",
    "RequireSession",
    "RequireWrite",
    "Services",
    "VerifiedCdsClient",
    "is_public",
    "note_draft_kept",
    "require_scope",
    "single_valued_query",
]

PUBLIC_ROUTES: dict[str, frozenset[str]] = {
    # health
    "/healthz": frozenset({"GET"}),
    "/readyz": frozenset({"GET"}),
    # discovery
    "/cds-services": frozenset({"GET"}),
    "/openapi.json": frozenset({"GET"}),
    # the SMART launch flow (it authenticates the user itself)
    "/launch": frozenset({"GET"}),
    "/launch/standalone": frozenset({"GET"}),
    "/callback": frozenset({"GET"}),
}
"""The only (path, methods) answered without a token or a launch cookie; HEAD follows GET."""
PUBLIC_PREFIXES: dict[str, frozenset[str]] = {
    "/.well-known/": frozenset({"GET"}),
    "/static/": frozenset({"GET"}),
}


def is_public(method: str, path: str) -> bool:
    method = "GET" if method == "HEAD" else method
    if method in PUBLIC_ROUTES.get(path, frozenset()):
        return True
    return any(path.startswith(p) and method in m for p, m in PUBLIC_PREFIXES.items())


def single_valued_query(request: Request) -> None:
    """A query parameter given twice is refused: which value was meant cannot be told."""
    names = [name for name, _ in request.query_params.multi_items()]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"Query parameter(s) given more than once: {', '.join(repeated)}.")


def _services(request: Request) -> AppServices:
    return services_of(request.app)


Services = Annotated[AppServices, Depends(_services)]


def _settings(services: Services) -> Settings:
    return services.settings


AppSettings = Annotated[Settings, Depends(_settings)]

_bearer = OAuth2(
    flows=OAuthFlowsModel(clientCredentials=OAuthFlowClientCredentials(
        tokenUrl="https://idp.example.org/token", scopes=API_SCOPES)),
    scheme_name="apiToken",
    description="A bearer JWT from KETAMINE_API_ISSUER (the tokenUrl is its token endpoint), "
                "checked against KETAMINE_API_JWKS_URL and KETAMINE_API_AUDIENCE; sent as "
                "'Authorization: Bearer ...'.",
    auto_error=False,
)
"""The OpenAPI scheme of the REST API; :func:`require_scope` names each operation's scope."""


async def current_caller(
    request: Request,
    services: Services,
    authorization: Annotated[str | None, Depends(_bearer)],
) -> Caller:
    if not authorization:
        raise BearerError("This API needs a bearer token.", missing=True)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BearerError("Only 'Authorization: Bearer <JWT>' is accepted.")
    caller = await services.api_tokens.verify(token.strip())
    who = caller.subject if caller.client_id in (None, caller.subject) else \
        f"{caller.subject} (client {caller.client_id})"
    access_of(request).by(who, "client")
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def require_scope(scope: str) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that admits callers whose token carries ``scope``."""

    # The scope is given to Security as well, so the OpenAPI document names it per operation.
    verified = Security(current_caller, scopes=[scope])

    async def dependency(caller: Caller = verified) -> Caller:
        if scope not in caller.scopes:
            raise BearerError(f"This call needs the '{scope}' scope.", "insufficient_scope",
                              scope=scope)
        return caller

    dependency.__name__ = f"require_{scope.replace('.', '_')}"
    return dependency


RequireScreen = Annotated[Caller, Depends(require_scope(SCOPE_SCREEN))]
RequireWrite = Annotated[Caller, Depends(require_scope(SCOPE_WRITE))]


LaunchHandle = Annotated[str | None, Query(max_length=64, description="launch handle")]


async def _launch(request: Request, services: Services, ctx: str | None, *,
                  fresh: bool) -> ActiveLaunch:
    bid = browser_id(request, services.settings)
    if bid is None or not ctx:
        raise SessionExpired("No active launch in this browser; open the app from the EHR.")
    key = session_key(bid, ctx)
    try:
        if fresh:
            session = await fresh_session(services.smart, key)
        else:
            stored = await services.store.get(key)
            if stored is None:
                raise SessionExpired("Your session has ended; launch the app again from the EHR.")
            session = SmartSession.from_json(stored)
    except SessionExpired as err:
        await note_draft_kept(services, key, err)
        raise
    access = access_of(request)
    access.by(session.fhir_user or session.id_token_sub, "user")
    access.patient = session.patient
    return ActiveLaunch(key=key, handle=ctx, session=session)


async def note_draft_kept(services: AppServices, key: str, err: SessionExpired) -> None:
    """Tell the expired page whether (and how long) this launch's session-form draft is kept."""
    seconds = await services.drafts.kept_seconds(key)
    if seconds is not None:
        err.draft_kept_for = kept_for(seconds)


async def current_launch(request: Request, services: Services,
                         ctx: LaunchHandle = None) -> ActiveLaunch:
    return await _launch(request, services, ctx, fresh=True)


async def stored_launch(request: Request, services: Services,
                        ctx: LaunchHandle = None) -> ActiveLaunch:
    return await _launch(request, services, ctx, fresh=False)


RequireSession = Annotated[ActiveLaunch, Depends(current_launch)]
RequireAppSession = Annotated[ActiveLaunch, Depends(stored_launch)]
"""The launch cookie and its session in the store, without asking the EHR for a fresh token:
for what works while the EHR's authorization has lapsed (saving a draft), and for handlers that
meet an ended authorization themselves (the session form's submit keeps a draft first)."""


def _page_source(services: Services, launch: RequireSession) -> Source:
    return services.page_source(launch)


PageSourceDep = Annotated[Source, Depends(_page_source)]
"""Where this launch's pages read and write (the EHR, or a demo Bundle)."""


def _cds_audiences(request: Request, settings: Settings) -> list[str]:
    """This endpoint's URL; for ``.../feedback``, the service's URL is accepted as well."""
    base = str(settings.base_url).rstrip("/")
    path = request.url.path
    audiences = [base + path]
    if path.endswith("/feedback"):
        audiences.append(base + path.removesuffix("/feedback"))
    return audiences


async def verified_cds_client(request: Request, services: Services) -> CdsCaller:
    """The CDS client whose JWT passed every check, or a 401 problem (BearerError)."""
    token = cds_bearer_token(request.headers.get("authorization", ""))
    client = await services.cds_jwt.verify(token, _cds_audiences(request, services.settings))
    access_of(request).by(client.issuer, "client")
    return client


VerifiedCdsClient = Annotated[CdsCaller, Depends(verified_cds_client)]
