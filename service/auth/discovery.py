"""SMART configuration discovery, restricted to the issuers we trust.

Spec: https://hl7.org/fhir/smart-app-launch/conformance.html (``.well-known/smart-configuration``),
with the fallback to the CapabilityStatement's ``oauth-uris`` extension that SMART v1 servers use
(https://hl7.org/fhir/smart-app-launch/1.0.0/conformance/index.html#declaring-support-for-oauth2-endpoints).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from service.errors import LaunchError
from service.urls import trusted

__all__ = ["SmartConfig", "SmartDiscovery", "check_issuer"]

_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def check_issuer(iss: str | None, allowed: list[str]) -> str:
    """The normalised ``iss`` when it is one we are configured to trust; never fetch any other."""
    if not iss:
        raise LaunchError("The launch carries no 'iss' (FHIR server) parameter.")
    wanted = trusted(iss, allowed)
    if wanted is None:
        raise LaunchError(
            "This FHIR server is not one this app is configured to trust "
            "(add it to KETAMINE_ALLOWED_ISSUERS)."
        )
    return wanted


@dataclass(frozen=True, slots=True)
class SmartConfig:
    """The parts of a server's SMART configuration this app uses."""

    iss: str
    authorization_endpoint: str
    token_endpoint: str
    issuer: str | None = None
    """OpenID Connect issuer of id_tokens (``issuer`` in the discovery document)."""
    jwks_uri: str | None = None
    capabilities: tuple[str, ...] = ()
    scopes_supported: tuple[str, ...] = ()
    token_endpoint_auth_methods: tuple[str, ...] = field(default=())

    @property
    def supports_v2_scopes(self) -> bool:
        """SMART v2 (``.rs``) scopes unless the server advertises only v1 (``.read``) ones."""
        if "permission-v2" in self.capabilities:
            return True
        if "permission-v1" in self.capabilities:
            return False
        scopes = [s for s in self.scopes_supported if "/" in s and "." in s]
        if scopes and all(s.rsplit(".", 1)[1] in {"read", "write", "*"} for s in scopes):
            return False
        return True

    @classmethod
    def from_document(cls, iss: str, doc: dict[str, Any]) -> SmartConfig:
        try:
            return cls(
                iss=iss,
                authorization_endpoint=str(doc["authorization_endpoint"]),
                token_endpoint=str(doc["token_endpoint"]),
                issuer=_opt_str(doc.get("issuer")),
                jwks_uri=_opt_str(doc.get("jwks_uri")),
                capabilities=_str_tuple(doc.get("capabilities")),
                scopes_supported=_str_tuple(doc.get("scopes_supported")),
                token_endpoint_auth_methods=_str_tuple(
                    doc.get("token_endpoint_auth_methods_supported")
                ),
            )
        except KeyError as err:
            raise LaunchError(f"The SMART configuration of {iss} lacks {err.args[0]}.") from None


class SmartDiscovery:
    """Discovery documents cached per issuer for ``ttl_seconds``."""

    def __init__(self, *, ttl_seconds: float = 3600, timeout: float = 10.0) -> None:
        self._timeout = timeout
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, SmartConfig]] = {}

    async def get(self, iss: str) -> SmartConfig:
        """``iss`` must already have passed :func:`check_issuer`."""
        cached = self._cache.get(iss)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        config = await self._fetch(iss)
        self._cache[iss] = (time.monotonic() + self._ttl, config)
        return config

    async def _fetch(self, iss: str) -> SmartConfig:
        doc = await self._get_json(f"{iss}/.well-known/smart-configuration")
        if doc is not None and "authorization_endpoint" in doc:
            return SmartConfig.from_document(iss, doc)
        capability = await self._get_json(f"{iss}/metadata")
        if capability is not None:
            uris = _oauth_uris(capability)
            if "authorize" in uris and "token" in uris:
                return SmartConfig(iss, uris["authorize"], uris["token"])
        raise LaunchError(f"{iss} publishes no SMART configuration.")

    async def _get_json(self, url: str) -> dict[str, Any] | None:
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as http:
                resp = await http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as err:
            raise LaunchError(f"Could not reach the FHIR server for discovery ({err}).") from err
        if resp.status_code != 200:
            return None
        try:
            body = resp.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None


def _oauth_uris(capability: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for rest in capability.get("rest") or []:
        for ext in (rest.get("security") or {}).get("extension") or []:
            if ext.get("url") != _OAUTH_URIS:
                continue
            for sub in ext.get("extension") or []:
                if isinstance(sub.get("valueUri"), str):
                    found[str(sub.get("url"))] = sub["valueUri"]
    return found


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _str_tuple(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))
