"""What a FHIR server says it can search, read from its CapabilityStatement (``GET /metadata``).

Spec: https://hl7.org/fhir/R4/capabilitystatement.html (``rest.resource.searchParam``,
``rest.resource.searchInclude``, ``rest.searchParam`` for parameters common to all resources) and
https://hl7.org/fhir/R4/http.html#capabilities. The statement is read once per server base URL and
kept for the life of the process; :func:`clear_cache` forgets it (tests, or a server upgrade).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Capabilities", "cached_capabilities", "clear_cache"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    search_params: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Resource type -> names of its search parameters."""
    includes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Resource type -> ``searchInclude`` values (``Type:param``, or ``*``)."""
    common_params: frozenset[str] = frozenset()
    """``rest.searchParam``: parameters the server supports on every type."""
    fhir_version: str | None = None

    @classmethod
    def from_statement(cls, statement: Mapping[str, Any]) -> Capabilities:
        params: dict[str, frozenset[str]] = {}
        includes: dict[str, frozenset[str]] = {}
        common: set[str] = set()
        for rest in statement.get("rest") or []:
            if not isinstance(rest, dict) or rest.get("mode", "server") != "server":
                continue
            common.update(_names(rest.get("searchParam")))
            for resource in rest.get("resource") or []:
                if not isinstance(resource, dict) or not isinstance(resource.get("type"), str):
                    continue
                rtype = resource["type"]
                params[rtype] = frozenset(_names(resource.get("searchParam")))
                includes[rtype] = frozenset(
                    value for value in resource.get("searchInclude") or []
                    if isinstance(value, str))
        version = statement.get("fhirVersion")
        return cls(params, includes, frozenset(common),
                   version if isinstance(version, str) else None)

    def supports_search(self, resource_type: str, param: str) -> bool:
        return param in self.search_params.get(resource_type, ()) or param in self.common_params

    def supports_include(self, resource_type: str, include: str) -> bool:
        listed = self.includes.get(resource_type, frozenset())
        return include in listed or "*" in listed


def _names(search_params: Any) -> set[str]:
    return {p["name"] for p in search_params or [] if isinstance(p, dict)
            and isinstance(p.get("name"), str)}


_cache: dict[str, Capabilities] = {}
_locks: dict[str, asyncio.Lock] = {}


async def cached_capabilities(
    base_url: str, fetch: Callable[[], Awaitable[Mapping[str, Any]]]
) -> Capabilities:
    """The server's capabilities, fetched with ``fetch`` the first time only (per base URL)."""
    key = base_url.rstrip("/")
    if key in _cache:
        return _cache[key]
    lock = _locks.setdefault(key, asyncio.Lock())
    async with lock:
        if key not in _cache:
            _cache[key] = Capabilities.from_statement(await fetch())
        return _cache[key]


def clear_cache() -> None:
    _cache.clear()
    _locks.clear()
