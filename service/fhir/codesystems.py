"""The project's own CodeSystems: their canonical URLs (the one place they are spelled) and
publishing them to a FHIR server.

Every URL the project defines (CodeSystems, identifier systems) lives under one canonical base,
the setting ``KETAMINE_CANONICAL_BASE``. The module constants (:data:`BASE`, :data:`CS_SCREENING`,
:data:`IDENTIFIER_BASE`, ...) and ``fhir_maps/codesystems/*.json`` are spelled on the development
default; what is written to a chart, searched for or published goes through :func:`canonical`
(or :func:`identifier_system`), which moves a URL onto the configured base. Identifiers already
written keep the base they were written with: changing it is a data migration (README).

No LOINC or SNOMED CT concept exists for the screening result, MOAA/S or CADSS (REFERENCE: Session
observations), and CDS Hooks leaves override-reason codes to each service, so they live in
``fhir_maps/codesystems/*.json``. Publishing uses a conditional
update on ``url`` (https://hl7.org/fhir/R4/http.html#cond-update): idempotent, and it never makes a
second copy of a CodeSystem the server already holds under another id.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhir.resources.R4B.codesystem import CodeSystem

from service.config import get_settings
from service.errors import MapError

if TYPE_CHECKING:
    from service.fhir.client import FhirClient

__all__ = [
    "BASE",
    "CS_CDS_OVERRIDE_REASON",
    "CS_MOAAS",
    "CS_SCREENING",
    "CS_SESSION",
    "IDENTIFIER_BASE",
    "canonical",
    "canonical_base",
    "codesystem_path",
    "display",
    "identifier_system",
    "load_codesystems",
    "publish_codesystems",
    "use_canonical_base",
]

log = logging.getLogger(__name__)

BASE = "http://ketamine-screen.example.org/fhir"
"""The development default of the canonical base (``KETAMINE_CANONICAL_BASE``); the constants
below are spelled on it, :func:`canonical` moves them onto the configured one."""
CS_SCREENING = f"{BASE}/CodeSystem/screening"
CS_MOAAS = f"{BASE}/CodeSystem/moaas"
CS_SESSION = f"{BASE}/CodeSystem/session"
CS_CDS_OVERRIDE_REASON = f"{BASE}/CodeSystem/cds-override-reason"
"""Why a clinician overrode a CDS card (https://cds-hooks.hl7.org/2.0/#overridereason)."""
IDENTIFIER_BASE = f"{BASE}/identifier"
"""Identifier systems: ``{IDENTIFIER_BASE}/<what>`` (screening, detected-issue, session, ...)."""

codesystem_path = Path(__file__).resolve().parents[2] / "fhir_maps" / "codesystems"

_active: str | None = None


def use_canonical_base(base: str | None) -> None:
    """Make ``base`` the process's canonical base (called where the settings are applied:
    ``create_app`` and the command line); None: the process's settings' again."""
    global _active
    _active = base.rstrip("/") if base is not None else None


def canonical_base() -> str:
    """The configured canonical base: as applied by :func:`use_canonical_base`, else the
    process's settings."""
    if _active is None:
        return get_settings().canonical_base.rstrip("/")
    return _active


def canonical(url: str) -> str:
    """``url``, one of this project's (spelled on :data:`BASE`), on the configured base; any other
    URL as it is.

    >>> use_canonical_base("https://screen.clinic.ch/fhir")
    >>> canonical(CS_SESSION)
    'https://screen.clinic.ch/fhir/CodeSystem/session'
    >>> canonical("http://loinc.org")
    'http://loinc.org'
    >>> use_canonical_base(None)
    """
    if url == BASE or url.startswith(BASE + "/"):
        return canonical_base() + url.removeprefix(BASE)
    return url


def identifier_system(what: str) -> str:
    """The identifier system ``<base>/identifier/<what>`` on the configured base."""
    return canonical(f"{IDENTIFIER_BASE}/{what}")


def _spelled(system: str) -> str:
    """A system on the configured base back on :data:`BASE`, as the map files spell it."""
    base = canonical_base()
    if system == base or system.startswith(base + "/"):
        return BASE + system.removeprefix(base)
    return system


@cache
def load_codesystems() -> tuple[dict[str, Any], ...]:
    """Every CodeSystem in fhir_maps/codesystems, checked as R4 CodeSystems; MapError if not."""
    systems: list[dict[str, Any]] = []
    for path in sorted(codesystem_path.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            CodeSystem.model_validate(data)
        except (OSError, ValueError) as exc:
            raise MapError(f"{path.name}: not a valid CodeSystem: {exc}") from exc
        for key in ("url", "version", "description"):
            if not data.get(key):
                raise MapError(f"{path.name}: CodeSystem has no {key}")
        if data.get("status") != "active" or data.get("content") != "complete":
            raise MapError(f"{path.name}: CodeSystem must be active and complete")
        if repeated := _repeated_codes(data.get("concept") or []):
            # R4 csd-1: a server refuses the whole CodeSystem (and so the publish) otherwise.
            raise MapError(f"{path.name}: codes defined twice (csd-1): {', '.join(repeated)}")
        systems.append(data)
    return tuple(systems)


def _repeated_codes(concepts: list[dict[str, Any]]) -> list[str]:
    """Codes that appear more than once anywhere in the concept tree (nested concepts count)."""
    seen: set[str] = set()
    repeated: list[str] = []
    stack = list(concepts)
    while stack:
        concept = stack.pop()
        code = str(concept.get("code"))
        if code in seen:
            repeated.append(code)
        seen.add(code)
        stack.extend(concept.get("concept") or [])
    return sorted(set(repeated))


def display(system: str, code: str) -> str:
    """The display of ``code`` in one of our CodeSystems (its URL on the default or the configured
    base); KeyError when it is not defined there."""
    system = _spelled(system)
    for data in load_codesystems():
        if data["url"] == system:
            found = _find(data.get("concept") or [], code)
            if found is not None:
                return found
    raise KeyError(f"{system}#{code}")


def _find(concepts: list[dict[str, Any]], code: str) -> str | None:
    for concept in concepts:
        if concept.get("code") == code:
            return str(concept.get("display") or code)
        inner = _find(concept.get("concept") or [], code)
        if inner is not None:
            return inner
    return None


async def publish_codesystems(client: FhirClient) -> list[str]:
    """PUT each CodeSystem, its url on the configured base, as a conditional update on that url;
    returns ``CodeSystem/<id>`` each."""
    published: list[str] = []
    for data in load_codesystems():
        url = canonical(str(data["url"]))
        body = {key: value for key, value in data.items() if key != "id"} | {"url": url}
        answer = await client.update("CodeSystem", body, [("url", url)])
        published.append(f"CodeSystem/{answer.get('id')}")
        log.info("published CodeSystem %s version %s as %s", url, data["version"],
                 published[-1])
    return published
