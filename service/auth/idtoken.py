"""Verify the OpenID Connect id_token of a SMART launch.

https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation and
https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#scopes-for-requesting-identity-data
"""

from __future__ import annotations

from typing import Any

from authlib.oidc.core import CodeIDToken
from joserfc.errors import JoseError

from service.auth.discovery import SmartConfig
from service.auth.jwks import JwksCache
from service.errors import LaunchError, TokenError

__all__ = ["verify_id_token"]

ID_TOKEN_ALGS = ("RS256", "RS384", "ES256", "ES384")
LEEWAY_SECONDS = 60


async def verify_id_token(
    id_token: str,
    *,
    config: SmartConfig,
    jwks: JwksCache,
    client_id: str,
    nonce: str,
    access_token: str | None,
) -> dict[str, Any]:
    """The verified claims (signature, ``iss``, ``aud``, ``exp``, ``nonce``, ``at_hash``)."""
    try:
        decoded = await jwks.decode(id_token, ID_TOKEN_ALGS)
    except TokenError as err:
        raise LaunchError(f"The id_token from the EHR is not valid: {err}") from None
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": config.issuer or config.iss},
        "aud": {"essential": True, "value": client_id},
    }
    params: dict[str, Any] = {"nonce": nonce, "client_id": client_id}
    if access_token:
        params["access_token"] = access_token
    claims = CodeIDToken(decoded.claims, decoded.header, options, params)
    try:
        claims.validate(leeway=LEEWAY_SECONDS)
    except JoseError as err:
        raise LaunchError(f"The id_token from the EHR is not valid ({err.description}).") from None
    return dict(claims)
