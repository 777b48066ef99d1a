"""A small SMART on FHIR authorization server for tests, built on authlib's grant classes.

It plays the EHR: discovery at ``<base>/fhir/.well-known/smart-configuration``, an authorize
endpoint with a scripted user (auto-approves as the configured practitioner, picks the configured
patient), a token endpoint (authorization_code + PKCE S256 required, refresh_token,
client_credentials; client_secret_basic or private_key_jwt), a JWKS, RS384 id_tokens with
``fhirUser``, and a FHIR proxy at ``<base>/fhir`` that checks the bearer token before forwarding to
an upstream FHIR server (the HAPI sandbox) and enforces the granted SMART scopes on every request,
Bundle entries one by one (tests/auth/smart_scopes.py), as a scope-enforcing EHR does. It also
issues API JWTs for the service's own REST API (``mint_api_token``; keys at ``/api/jwks``).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.auth.authlib_starlette import StarletteOAuth2Request
from tests.auth.smart_grants import Client, Grant, ServerState, build_auth_server
from tests.auth.smart_scopes import Refusal, check_request, covers, needed_checks
from tests.servers import ThreadServer, free_port


class SmartTestServer:
    """Run with :meth:`start` (uvicorn in a daemon thread, free port); :meth:`stop` ends it."""

    def __init__(self, fhir_upstream: str | None = None) -> None:
        self.state = ServerState()
        self.fhir_upstream = fhir_upstream.rstrip("/") if fhir_upstream else None
        self.id_token_key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS384"})
        self.api_key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"})
        self.id_token_key.ensure_kid()
        self.api_key.ensure_kid()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.fhir_base = f"{self.base_url}/fhir"
        self.state.issuer = self.base_url
        self.auth_server = build_auth_server(self)
        self._server: ThreadServer | None = None

    # -- scripting ---------------------------------------------------------------------------
    def register_client(self, client: Client) -> None:
        self.state.clients[client.client_id] = client

    def new_launch(self, patient: str | None = None) -> str:
        """What an EHR does before opening the app: an opaque launch id bound to a patient."""
        launch = secrets.token_urlsafe(16)
        self.state.launches[launch] = patient or self.state.patient
        return launch

    def mint_api_token(self, *, key: RSAKey | None = None, expires_in: int = 300,
                       **claims: Any) -> str:
        """A JWT for the service's REST API, signed with ``/api/jwks`` unless ``key`` is given."""
        now = int(time.time())
        body = {"iss": f"{self.base_url}/api", "aud": "ketamine-api", "sub": "svc-caller",
                "iat": now, "exp": now + expires_in, "scope": "ketamine.screen",
                "jti": secrets.token_urlsafe(8), **claims}
        key = key or self.api_key
        return jwt.encode({"alg": "RS256", "kid": key.kid}, body, key)

    def expire_access_tokens(self) -> None:
        """What hours passing do to the access tokens issued so far (no test sleeps)."""
        for token, (_, grant) in list(self.state.access_tokens.items()):
            self.state.access_tokens[token] = (0.0, grant)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SmartTestServer:
        self._server = ThreadServer(_build_app(self), port=self.port, lifespan="off").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    # -- tokens ------------------------------------------------------------------------------
    def valid_access_token(self, header: str | None) -> Grant | None:
        if not header or not header.lower().startswith("bearer "):
            return None
        entry = self.state.access_tokens.get(header[7:].strip())
        if entry is None or entry[0] < time.time():
            return None
        return entry[1]

    def smart_configuration(self) -> dict[str, Any]:
        v1 = self.state.scopes_v1_only
        return {
            "issuer": self.base_url,
            "jwks_uri": f"{self.base_url}/jwks",
            "authorization_endpoint": f"{self.base_url}/authorize",
            "token_endpoint": f"{self.base_url}/token",
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
            "grant_types_supported": ["authorization_code", "refresh_token",
                                      "client_credentials"],
            "scopes_supported": ["openid", "fhirUser", "launch", "launch/patient",
                                 "patient/*.read" if v1 else "patient/*.rs",
                                 "system/*.read" if v1 else "system/*.rs"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "capabilities": ["launch-ehr", "launch-standalone", "client-confidential-symmetric",
                             "client-confidential-asymmetric", "context-ehr-patient",
                             "context-standalone-patient", "sso-openid-connect",
                             "permission-patient", "permission-v1" if v1 else "permission-v2"],
        }


def _scope_refusal(st: ServerState, grant: Grant, request: Request, path: str,
                   content: bytes) -> Refusal | None:
    """Check the request against the grant's scopes, logging each check in ``st.scope_checks``."""
    try:
        body = json.loads(content) if content and request.method == "POST" else None
    except ValueError:
        body = None  # not JSON: HAPI answers it; the check is on the URL alone
    needs = needed_checks(request.method, path, request.url.query, dict(request.headers), body)
    scopes = grant.scope.split()
    levels = [s.split("/", 1)[0] for s in scopes if s.startswith(("patient/", "user/", "system/"))]
    level = levels[0] if levels else ("patient" if grant.user.get("patient") else "system")
    st.scope_checks.extend((need.rtype, need.interaction, covers(scopes, need.rtype,
                                                                 need.interaction))
                           for _, need in needs)
    return check_request(scopes, level, needs)


def _drop_uncovered_includes(st: ServerState, grant: Grant, body: bytes) -> bytes:
    """A searchset's ``_include``d resources need ``r`` on their type; those the scopes do not
    cover are left out of the page, as a scope-enforcing EHR filters them (each type checked is
    logged once per page)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict) or data.get("type") != "searchset":
        return body
    scopes = grant.scope.split()
    kept: list[Any] = []
    seen: dict[str, bool] = {}
    for entry in data.get("entry") or []:
        rtype = str((entry.get("resource") or {}).get("resourceType", ""))
        if (entry.get("search") or {}).get("mode") != "include" or not rtype:
            kept.append(entry)
            continue
        if rtype not in seen:
            seen[rtype] = covers(scopes, rtype, "r")
            st.scope_checks.append((rtype, "r", seen[rtype]))
        if seen[rtype]:
            kept.append(entry)
    if all(seen.values()):
        return body
    data["entry"] = kept
    return json.dumps(data).encode()


# -- HTTP surface ----------------------------------------------------------------------------

def _build_app(server: SmartTestServer) -> Starlette:
    st = server.state
    auth = server.auth_server

    async def smart_configuration(request: Request) -> JSONResponse:
        return JSONResponse(server.smart_configuration())

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse(KeySet([server.id_token_key]).as_dict(private=False))

    async def api_jwks(request: Request) -> JSONResponse:
        return JSONResponse(KeySet([server.api_key]).as_dict(private=False))

    async def authorize(request: Request) -> Response:
        oauth_request = await StarletteOAuth2Request.read(request)
        args = request.query_params
        scope = args.get("scope", "").split()
        try:
            if args.get("aud", "").rstrip("/") != server.fhir_base:
                raise InvalidRequestError("'aud' must be this server's FHIR base URL.")
            if "launch" in scope:
                patient = st.launches.pop(args.get("launch", ""), None)
                if patient is None:
                    raise InvalidRequestError("Unknown or used 'launch'.")
            elif "launch/patient" in scope:
                patient = st.patient  # the scripted patient picker
            else:
                raise InvalidRequestError("No launch context requested.")
            user = {"sub": "practitioner-1", "patient": patient}
            grant = auth.get_consent_grant(oauth_request, end_user=user)
        except OAuth2Error as err:
            return JSONResponse({"error": err.error, "error_description": err.description},
                                status_code=400)
        response: Response = auth.create_authorization_response(oauth_request, grant_user=user,
                                                                grant=grant)
        return response

    async def token(request: Request) -> Response:
        oauth_request = await StarletteOAuth2Request.read(request)
        st.token_requests.append(dict(oauth_request.form))
        response: Response = auth.create_token_response(oauth_request)
        if not st.issue_id_token and response.status_code == 200:
            body = json.loads(bytes(response.body))
            body.pop("id_token", None)
            return JSONResponse(body, headers={"Cache-Control": "no-store"})
        return response

    async def fhir_proxy(request: Request) -> Response:
        path = request.path_params["path"]
        grant = server.valid_access_token(request.headers.get("authorization"))
        st.fhir_requests.append((request.method, path, grant is not None))
        if path != "metadata" and grant is None:
            return JSONResponse({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "login", "diagnostics": "bearer token required"}]},
                status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        content = await request.body()
        if grant is not None and st.enforce_scopes:
            refusal = _scope_refusal(st, grant, request, path, content)
            if refusal is not None:  # nothing is forwarded: nothing is written
                return JSONResponse({"resourceType": "OperationOutcome", "issue": [
                    {"severity": "error", "code": "forbidden",
                     "diagnostics": refusal.diagnostics}]}, status_code=403)
        if server.fhir_upstream is None:
            return JSONResponse({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "not-found"}]}, status_code=404)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in {"accept", "content-type", "prefer", "if-match",
                                    "if-none-exist"}}
        async with httpx.AsyncClient(timeout=60) as http:
            upstream = await http.request(
                request.method, f"{server.fhir_upstream}/{path}", params=request.query_params,
                headers=headers, content=content)
        body = upstream.content.replace(server.fhir_upstream.encode(), server.fhir_base.encode())
        if grant is not None and st.enforce_scopes and upstream.status_code == 200:
            body = _drop_uncovered_includes(st, grant, body)
        return Response(body, status_code=upstream.status_code,
                        media_type=upstream.headers.get("content-type"))

    async def ehr_home(request: Request) -> Response:
        """Stand-in for the EHR opening the app: ``/ehr?app=<launch url>``."""
        launch = server.new_launch(request.query_params.get("patient"))
        target = httpx.URL(request.query_params["app"]).copy_merge_params(
            {"iss": server.fhir_base, "launch": launch})
        return RedirectResponse(str(target), status_code=302)

    async def count_paths(request: Request, call_next: Any) -> Response:
        st.paths.append(request.url.path)
        response: Response = await call_next(request)
        return response

    return Starlette(middleware=[Middleware(BaseHTTPMiddleware, dispatch=count_paths)], routes=[
        Route("/fhir/.well-known/smart-configuration", smart_configuration),
        Route("/jwks", jwks),
        Route("/api/jwks", api_jwks),
        Route("/authorize", authorize),
        Route("/token", token, methods=["POST"]),
        Route("/ehr", ehr_home),
        Route("/fhir/{path:path}", fhir_proxy, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ])
