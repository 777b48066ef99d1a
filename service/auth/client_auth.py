"""How this app authenticates itself at a token endpoint (a confidential SMART client).

Either ``client_secret_basic`` (``KETAMINE_CLIENT_SECRET``) or ``private_key_jwt`` with an RS384 /
ES384 key (``KETAMINE_PRIVATE_KEY_FILE``), as SMART asks:
https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from authlib.oauth2.rfc7523 import ClientSecretJWT, PrivateKeyJWT
from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign
from joserfc import jwk

from service.auth.httpx_pin import AsyncOAuth2Client
from service.config import Settings
from service.errors import AuthError

__all__ = [
    "ASSERTION_LIFETIME_SECONDS",
    "ShortLivedPrivateKeyJWT",
    "load_private_key",
    "oauth_client",
    "public_jwks",
]

ASSERTION_LIFETIME_SECONDS = 300
"""SMART: client assertions expire no more than five minutes after issue."""

SigningKey = jwk.RSAKey | jwk.ECKey


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """authlib's ``private_key_jwt`` with a 5-minute ``exp`` and the key's ``kid`` in the header.

    authlib adds a fresh random ``jti`` to every assertion.
    """

    def __init__(self, token_endpoint: str, key: SigningKey, alg: str) -> None:
        super().__init__(token_endpoint, headers={"kid": key.kid, "typ": "JWT"}, alg=alg)
        self._key = key

    def sign(self, auth: Any, token_endpoint: str) -> str:
        return str(
            private_key_jwt_sign(
                self._key,
                client_id=auth.client_id,
                token_endpoint=token_endpoint,
                alg=self.alg,
                header=dict(self.headers),
                expires_in=ASSERTION_LIFETIME_SECONDS,
            )
        )


@lru_cache(maxsize=4)
def load_private_key(path: Path, alg: str) -> SigningKey:
    """Read a PEM (or JWK JSON) private key; RS384 needs RSA, ES384 a P-384 EC key."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise AuthError(f"Cannot read KETAMINE_PRIVATE_KEY_FILE ({err.strerror}).") from None
    key_type = "RSA" if alg.startswith("RS") else "EC"
    try:
        key = jwk.RSAKey.import_key(data) if key_type == "RSA" else jwk.ECKey.import_key(data)
    except Exception as err:  # joserfc / cryptography raise several types here
        raise AuthError(f"KETAMINE_PRIVATE_KEY_FILE is not a {key_type} private key.") from err
    if not isinstance(key, jwk.RSAKey | jwk.ECKey) or not key.is_private:
        raise AuthError(f"KETAMINE_PRIVATE_KEY_FILE is not a {key_type} private key.")
    if isinstance(key, jwk.ECKey) and key.curve_name != "P-384":
        raise AuthError("ES384 needs a P-384 key.")
    key.ensure_kid()
    return key


def public_jwks(settings: Settings) -> dict[str, Any]:
    """Our public key set, to register with an EHR (served at ``/.well-known/jwks.json``)."""
    if settings.private_key_file is None:
        return {"keys": []}
    key = load_private_key(settings.private_key_file, settings.private_key_alg)
    public = key.as_dict(private=False)
    public.update({"alg": settings.private_key_alg, "use": "sig"})
    return {"keys": [public]}


def oauth_client(
    settings: Settings,
    token_endpoint: str,
    *,
    http: dict[str, Any] | None = None,
    jwt_only: bool = False,
    **metadata: Any,
) -> AsyncOAuth2Client:
    """An authlib client that authenticates as configured; the caller closes it.

    ``jwt_only`` (Backend Services) swaps ``client_secret_basic`` for ``client_secret_jwt``.
    """
    kwargs: dict[str, Any] = {"timeout": settings.fhir_timeout_seconds, **(http or {})}
    if settings.private_key_file is not None:
        key = load_private_key(settings.private_key_file, settings.private_key_alg)
        auth = ShortLivedPrivateKeyJWT(token_endpoint, key, settings.private_key_alg)
        return AsyncOAuth2Client(
            client_id=settings.client_id,
            client_secret=key,
            token_endpoint_auth_method=auth,
            **metadata,
            **kwargs,
        )
    if settings.client_secret and jwt_only:
        return AsyncOAuth2Client(
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            token_endpoint_auth_method=ClientSecretJWT(token_endpoint, alg="HS384"),
            **metadata,
            **kwargs,
        )
    if settings.client_secret:
        return AsyncOAuth2Client(
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
            **metadata,
            **kwargs,
        )
    raise AuthError(
        "No client credentials: set KETAMINE_CLIENT_SECRET or KETAMINE_PRIVATE_KEY_FILE."
    )
