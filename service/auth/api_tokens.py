"""Bearer JWTs for the service's own REST API.

A token is accepted when its signature verifies against ``KETAMINE_API_JWKS_URL`` (RFC 7517), and
``iss``, ``aud``, ``exp`` and ``nbf`` hold (RFC 7519 section 4.1). The ``scope`` claim (RFC 8693
section 4.2; a ``scp`` list is accepted too) decides what the caller may do: see
:data:`service.auth.scopes.API_SCOPES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwt import JWTClaimsRegistry

from service.auth.jwks import JwksCache
from service.config import Settings
from service.errors import BearerError, TokenError

__all__ = ["LEEWAY_SECONDS", "ApiTokenVerifier", "Caller", "validate_claims"]

LEEWAY_SECONDS = 30


def validate_claims(registry: JWTClaimsRegistry, claims: dict[str, Any], *, subject: str,
                    expired: str) -> None:
    """Check ``claims``; a failure becomes a 401 naming the claim (``subject``: "The token")."""
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise BearerError(expired) from None
    except (InvalidClaimError, MissingClaimError) as err:
        raise BearerError(f"{subject}'s '{err.claim}' claim is not acceptable.") from None
    except JoseError as err:
        raise BearerError(f"{subject} is not acceptable ({err.error}).") from None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling the REST API; ids only, safe to log."""

    subject: str
    client_id: str | None
    scopes: frozenset[str]
    token_id: str | None = None


class ApiTokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self._issuer = settings.api_issuer
        self._audience = settings.api_audience
        self._jwks = JwksCache(settings.api_jwks_url) if settings.api_jwks_url else None

    async def verify(self, token: str) -> Caller:
        """The caller a token stands for; raises :class:`BearerError` (401) otherwise."""
        if self._jwks is None or not self._issuer or not self._audience:
            # Refuse rather than accept unchecked tokens when the API is not configured.
            raise BearerError("This service is not configured to accept API tokens.")
        try:
            decoded = await self._jwks.decode(token)
        except TokenError as err:
            raise BearerError(str(err)) from None
        claims = decoded.claims
        registry = JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": self._issuer},
            aud={"essential": True, "value": self._audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        validate_claims(registry, claims, subject="The token", expired="The token has expired.")
        return Caller(
            subject=str(claims["sub"]),
            client_id=_opt_str(claims.get("client_id") or claims.get("azp")),
            scopes=_scopes(claims.get("scope") or claims.get("scp")),
            token_id=_opt_str(claims.get("jti")),
        )


def _scopes(value: object) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
