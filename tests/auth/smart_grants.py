"""authlib grant classes, client model and client authentication of the SMART test server.

Authorization code (+ PKCE S256 required, + OpenID Connect id_token with ``fhirUser``), refresh
token (rotated) and client credentials; clients authenticate with ``client_secret_basic`` or
``private_key_jwt`` (RS384 / ES384, assertions of at most five minutes, ``jti`` single use).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from tests.auth.authlib_starlette import StarletteAuthorizationServer

if TYPE_CHECKING:
    from tests.auth.smart_server import SmartTestServer


@dataclass
class Client:
    client_id: str
    redirect_uris: list[str]
    secret: str | None = None
    jwks: KeySet | None = None
    auth_methods: tuple[str, ...] = ("client_secret_basic", "private_key_jwt")

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret is not None and secrets.compare_digest(self.secret, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in {"authorization_code", "refresh_token", "client_credentials"}


@dataclass
class Grant:
    """An authorization code or a refresh token, with the launch context it carries."""

    client_id: str
    scope: str
    user: dict[str, Any]
    redirect_uri: str = ""
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id


@dataclass
class ServerState:
    issuer: str = ""
    practitioner: str = "Practitioner/smart-test-practitioner"
    patient: str = "smart-test-patient"
    need_patient_banner: bool = True
    smart_style_url: str = ""
    access_token_ttl: int = 300
    scopes_v1_only: bool = False
    clients: dict[str, Client] = field(default_factory=dict)
    launches: dict[str, str] = field(default_factory=dict)
    codes: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, tuple[float, Grant]] = field(default_factory=dict)
    refresh_tokens: dict[str, Grant] = field(default_factory=dict)
    seen_jti: set[str] = field(default_factory=set)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    fhir_requests: list[tuple[str, str, bool]] = field(default_factory=list)
    """(method, path, bearer token valid) for every request through the FHIR proxy."""
    paths: list[str] = field(default_factory=list)
    """The path of every request the server received, whatever it answered."""
    issue_id_token: bool = True
    """False: token responses leave out the id_token even when ``openid`` was granted."""
    refuse_refresh: bool = False
    """True: every refresh is answered ``invalid_grant``."""
    withhold_scopes: set[str] = field(default_factory=set)
    """Scopes this EHR drops when it grants (a clinic that grants less than the app asks for); the
    token response's ``scope`` lists what was granted."""
    enforce_scopes: bool = True
    """False: the FHIR proxy checks the token only, as a server that enforces no scopes."""
    scope_checks: list[tuple[str, str, bool]] = field(default_factory=list)
    """(resource type, interaction letter, covered) for every check the FHIR proxy made, Bundle
    entries one by one: what the app's features used (tests/auth/smart_scopes.py)."""


def build_auth_server(server: SmartTestServer) -> StarletteAuthorizationServer:
    st = server.state

    class AuthorizationCode(grants.AuthorizationCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS: ClassVar = ["client_secret_basic", "private_key_jwt"]

        def save_authorization_code(self, code: str, request: Any) -> None:
            data = request.payload.data
            st.codes[code] = Grant(
                client_id=request.client.client_id, scope=data.get("scope", ""),
                user=request.user, redirect_uri=data.get("redirect_uri", ""),
                nonce=data.get("nonce"), code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"))

        def query_authorization_code(self, code: str, client: Client) -> Grant | None:
            grant = st.codes.pop(code, None)  # single use, even when the exchange fails
            return grant if grant is not None and grant.check_client(client) else None

        def delete_authorization_code(self, authorization_code: Grant) -> None:
            return None

        def authenticate_user(self, authorization_code: Grant) -> dict[str, Any]:
            return authorization_code.user

    class RefreshToken(grants.RefreshTokenGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS: ClassVar = ["client_secret_basic", "private_key_jwt"]
        INCLUDE_NEW_REFRESH_TOKEN = True

        def authenticate_refresh_token(self, refresh_token: str) -> Grant | None:
            if st.refuse_refresh:  # the user signed out of the EHR, or its policy ended it
                return None
            return st.refresh_tokens.get(refresh_token)

        def authenticate_user(self, refresh_token: Grant) -> dict[str, Any]:
            return refresh_token.user

        def revoke_old_credential(self, refresh_token: Grant) -> None:
            for key, value in list(st.refresh_tokens.items()):
                if value is refresh_token:
                    del st.refresh_tokens[key]

    class ClientCredentials(grants.ClientCredentialsGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS: ClassVar = ["private_key_jwt"]

    class SmartOpenIDCode(OpenIDCode):  # type: ignore[misc]
        def exists_nonce(self, nonce: str, request: Any) -> bool:
            return False

        def generate_user_info(self, user: dict[str, Any], scope: str) -> dict[str, Any]:
            info = {"sub": user["sub"]}
            if "fhirUser" in scope.split():
                info["fhirUser"] = f"{server.fhir_base}/{st.practitioner}"
            return info

        def resolve_client_private_key(self, client: Client) -> RSAKey:
            return server.id_token_key

        def get_client_algorithm(self, client: Client) -> str:
            return "RS384"

        def get_client_claims(self, client: Client) -> dict[str, Any]:
            return {"iss": server.base_url, "aud": [client.client_id]}

        def get_encode_header(self, client: Client) -> dict[str, str]:
            return {"alg": "RS384", "kid": server.id_token_key.kid}

    class PrivateKeyJwt(JWTBearerClientAssertion):  # type: ignore[misc]
        CLIENT_AUTH_METHOD = "private_key_jwt"

        def get_audiences(self) -> list[str]:
            return [f"{server.base_url}/token"]

        def validate_jti(self, claims: Any, jti: str) -> bool:
            if jti in st.seen_jti:
                return False
            st.seen_jti.add(jti)
            return True

        def resolve_client_public_key(self, client: Client) -> KeySet:
            if client.jwks is None:
                raise InvalidClientError(description="No keys registered for this client.")
            return client.jwks

        def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
            try:
                token = jwt.decode(assertion, resolve_key, algorithms=["RS384", "ES384"])
            except JoseError as err:
                raise InvalidClientError(description=err.description) from err
            claims = token.claims
            # SMART: the assertion's exp is no more than five minutes in the future.
            if claims.get("exp", 0) - time.time() > 300 + 5:
                raise InvalidClientError(description="Assertion lives longer than 5 minutes.")
            self.verify_claims(claims)
            return claims

    def query_client(client_id: str) -> Client | None:
        return st.clients.get(client_id)

    def save_token(token: dict[str, Any], request: Any) -> None:
        grant = Grant(client_id=request.client.client_id, scope=token.get("scope", ""),
                      user=request.user or {})
        st.access_tokens[token["access_token"]] = (time.time() + token["expires_in"], grant)
        if token.get("refresh_token"):
            st.refresh_tokens[token["refresh_token"]] = grant

    def generate_token(grant_type: str, client: Client, user: Any = None, scope: str = "",
                       expires_in: int | None = None,
                       include_refresh_token: bool = True) -> dict[str, Any]:
        # The clinic's grant: what the app asked for, less what this EHR withholds.
        scope = " ".join(s for s in scope.split() if s not in st.withhold_scopes)
        token: dict[str, Any] = {"token_type": "Bearer", "access_token": secrets.token_urlsafe(24),
                                 "expires_in": st.access_token_ttl, "scope": scope}
        if user and grant_type != "client_credentials":
            # Real EHRs issue a refresh token to a user launch only when it asked for one.
            if include_refresh_token and {"online_access", "offline_access"} & set(scope.split()):
                token["refresh_token"] = secrets.token_urlsafe(24)
            token["patient"] = user["patient"]
            token["need_patient_banner"] = st.need_patient_banner
            if st.smart_style_url:
                token["smart_style_url"] = st.smart_style_url
        return token

    auth = StarletteAuthorizationServer()
    auth.query_client = query_client
    auth.save_token = save_token
    auth.register_token_generator("default", generate_token)
    auth.register_client_auth_method("private_key_jwt", PrivateKeyJwt())
    auth.register_grant(AuthorizationCode, [CodeChallenge(required=True), SmartOpenIDCode()])
    auth.register_grant(RefreshToken)
    auth.register_grant(ClientCredentials)
    return auth
