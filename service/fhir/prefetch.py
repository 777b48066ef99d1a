"""The records for a CDS call: the client's prefetch, then its FHIR server for what is missing.

CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/#prefetch-template and
https://cds-hooks.hl7.org/2.0/#fhir-resource-access): what the prefetch lacks is read from
``fhirServer`` with ``fhirAuthorization.access_token``, only when that server is one of
``KETAMINE_ALLOWED_ISSUERS``. When a prefetch key is missing and the server cannot be used (or it
fails), :class:`PrefetchIncomplete` is raised; the CDS route answers it with 412 as the spec asks.
Medications referenced by a statement or request but not supplied are read one by one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator, Mapping
from typing import Any
from urllib.parse import parse_qsl

import httpx

from service.auth.discovery import normalise_issuer
from service.config import Settings
from service.errors import FhirError, ServiceError
from service.fhir.client import FhirClient

__all__ = [
    "MAX_MEDICATION_READS",
    "BearerToken",
    "PrefetchIncomplete",
    "bundle_resources",
    "gather_records",
]

log = logging.getLogger(__name__)

MAX_MEDICATION_READS = 20
"""Referenced Medications read from the server per call, at most."""


class PrefetchIncomplete(ServiceError):
    """Prefetch lacks records and the FHIR server cannot supply them (HTTP 412 in CDS Hooks)."""


class BearerToken(httpx.Auth):
    """The CDS client's ``fhirAuthorization.access_token``, sent as it is (never refreshed)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


def bundle_resources(value: object) -> Generator[dict[str, Any]]:
    """The resources of a Bundle's entries, or ``value`` itself when it is a single resource."""
    if not isinstance(value, dict):
        return
    if value.get("resourceType") != "Bundle":
        if isinstance(value.get("resourceType"), str):
            yield value
        return
    for entry in value.get("entry") or []:
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            yield entry["resource"]


async def gather_records(
    prefetch: Mapping[str, Any] | None,
    templates: Mapping[str, str],
    patient_id: str,
    *,
    fhir_server: str | None,
    access_token: str | None,
    settings: Settings,
    request_id: str | None = None,
) -> list[dict[str, Any]]:
    """Every resource for ``patient_id``: the prefetch answers to ``templates`` (key -> query with
    ``{{context.patientId}}``), plus what the FHIR server gives for the missing keys and for
    unresolved Medication references. PrefetchIncomplete when a key stays unanswered."""
    prefetch = prefetch or {}
    entries: list[dict[str, Any]] = []
    for key in templates:
        entries.extend(bundle_resources(prefetch.get(key)))
    missing = [key for key in templates if key not in prefetch]
    if not missing and not _unresolved_medications(entries):
        return entries
    client = _fhir_client(fhir_server, access_token, settings, required=bool(missing),
                          request_id=request_id)
    if client is None:
        return entries
    async with client:
        try:
            fetched = await asyncio.gather(
                *(_fetch(client, templates[key], patient_id) for key in missing))
            entries += [r for found in fetched for r in found]
            wanted = _unresolved_medications(entries)[:MAX_MEDICATION_READS]
            entries += await asyncio.gather(*(client.read("Medication", mid) for mid in wanted))
        except FhirError as err:
            raise PrefetchIncomplete(
                f"Prefetch incomplete and the FHIR server failed: {err}") from None
    log.info("cds: read %s from the FHIR server", ", ".join(missing) or "medications")
    return entries


def _fhir_client(fhir_server: str | None, access_token: str | None, settings: Settings, *,
                 required: bool, request_id: str | None) -> FhirClient | None:
    problem = None
    if not fhir_server or access_token is None:
        problem = "the request has no fhirServer and fhirAuthorization"
    elif normalise_issuer(fhir_server) not in {normalise_issuer(a)
                                               for a in settings.allowed_issuers}:
        problem = "fhirServer is not one of the FHIR servers this service may use"
    else:
        return FhirClient(normalise_issuer(fhir_server), settings=settings,
                          auth=BearerToken(access_token), request_id=request_id)
    if required:
        raise PrefetchIncomplete(f"Prefetch incomplete and {problem}.")
    return None


async def _fetch(client: FhirClient, template: str, patient_id: str) -> list[dict[str, Any]]:
    """One prefetch template run against the server (our ``_count`` gives way to paging)."""
    query = template.replace("{{context.patientId}}", patient_id)
    if "?" not in query:
        kind, rid = query.split("/", 1)
        return [await client.read(kind, rid)]
    kind, params = query.split("?", 1)
    pairs = [(k, v) for k, v in parse_qsl(params) if k != "_count"]
    result = await client.search(kind, pairs)
    return result.matches + result.includes


def _unresolved_medications(entries: list[dict[str, Any]]) -> list[str]:
    """Ids of Medications referenced by a statement or request but not among ``entries``."""
    have = {r.get("id") for r in entries if r.get("resourceType") == "Medication"}
    wanted: list[str] = []
    for resource in entries:
        if resource.get("resourceType") not in ("MedicationStatement", "MedicationRequest"):
            continue
        med = resource.get("medicationReference")
        ref = med.get("reference") if isinstance(med, dict) else None
        if not isinstance(ref, str) or ref.startswith("#"):
            continue
        parts = ref.split("/_history/")[0].split("/")
        if len(parts) >= 2 and parts[-2] == "Medication" and parts[-1] not in have:
            wanted.append(parts[-1])
            have.add(parts[-1])
    return wanted
