"""The project's own CodeSystems: their canonical URLs (the one place they are spelled) and
publishing them to a FHIR server.

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
    "codesystem_path",
    "display",
    "load_codesystems",
    "publish_codesystems",
]

log = logging.getLogger(__name__)

BASE = "http://ketamine-screen.example.org/fhir"
"""Canonical base of everything this project defines (CodeSystems, identifier systems)."""
CS_SCREENING = f"{BASE}/CodeSystem/screening"
CS_MOAAS = f"{BASE}/CodeSystem/moaas"
CS_SESSION = f"{BASE}/CodeSystem/session"
CS_CDS_OVERRIDE_REASON = f"{BASE}/CodeSystem/cds-override-reason"
"""Why a clinician overrode a CDS card (https://cds-hooks.hl7.org/2.0/#overridereason)."""
IDENTIFIER_BASE = f"{BASE}/identifier"
"""Identifier systems: ``{IDENTIFIER_BASE}/<what>`` (screening, detected-issue, session, ...)."""

codesystem_path = Path(__file__).resolve().parents[2] / "fhir_maps" / "codesystems"


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
    """The display of ``code`` in one of our CodeSystems; KeyError when it is not defined there."""
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
    """PUT each CodeSystem as a conditional update on its url; returns ``CodeSystem/<id>`` each."""
    published: list[str] = []
    for data in load_codesystems():
        body = {key: value for key, value in data.items() if key != "id"}
        answer = await client.update("CodeSystem", body, [("url", data["url"])])
        published.append(f"CodeSystem/{answer.get('id')}")
        log.info("published CodeSystem %s version %s as %s", data["url"], data["version"],
                 published[-1])
    return published
