"""Searches for one patient's record, their result pages, and resource parsing.

A search answers with a ``searchset`` Bundle whose ``link[relation=next]`` points at the next page
(https://hl7.org/fhir/R4/http.html#paging). Pages are followed until there is no ``next``; a page
that fails fails the whole search (a partial read must never reach the rules). Entries carry
``search.mode``: ``match`` for hits, ``include`` for ``_include`` targets, ``outcome`` for warnings
(https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.search.mode).

Resources are parsed with the **R4B** models of fhir.resources (R4B is wire-compatible with R4 for
the resource types read here); one that fails to parse
becomes a ReadProblem, never silently dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from service.errors import FhirProtocolError
from service.fhir.capabilities import Capabilities
from service.fhir.parse import parse_resource
from service.screening.engine import observation_search_codes
from service.screening.model import RawPatientData, ReadProblem

__all__ = [
    "BP_CODES",
    "LOINC",
    "OTHER_CODES",
    "SearchResult",
    "add_medications",
    "assemble",
    "collect_pages",
    "plan_searches",
    "same_origin",
    "unresolved_medications",
]

log = logging.getLogger(__name__)

LOINC = "http://loinc.org"
BP_CODES, OTHER_CODES = observation_search_codes()
"""The LOINC codes of the rulesets' ``observations`` (REFERENCE: Observations): blood pressure
(panel and parts) is searched within the BP window, the others (heart rate, SpO2, weight,
pregnancy status, hCG, PHQ-9) without a date bound."""

SearchPlan = dict[str, tuple[str, list[tuple[str, str]]]]
"""Search name -> (resource type, query parameters)."""

MAX_PAGES = 1000
"""A server that keeps answering with ``next`` beyond this is broken (or looping)."""


@dataclass(slots=True)
class SearchResult:
    matches: list[dict[str, Any]] = field(default_factory=list)
    includes: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0


def same_origin(url: str, base_url: str) -> bool:
    """True when ``url`` is on the server at ``base_url`` (scheme, host and port agree)."""
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


async def collect_pages(
    first: Mapping[str, Any],
    *,
    base_url: str,
    fetch_page: Callable[[str], Awaitable[Mapping[str, Any]]],
    what: str,
) -> SearchResult:
    """Gather every entry of a search, starting from its first page ``first``.

    ``fetch_page`` GETs an absolute ``next`` URL. ``next`` links must stay on ``base_url``'s origin:
    following one elsewhere would hand our bearer token to another host.
    """
    result = SearchResult()
    page: Mapping[str, Any] = first
    seen: set[str] = set()
    while True:
        if page.get("resourceType") != "Bundle":
            raise FhirProtocolError(f"search {what} answered with {page.get('resourceType')!r}, "
                                    "not a Bundle")
        result.pages += 1
        for entry in page.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                continue
            mode = (entry.get("search") or {}).get("mode", "match")
            if mode == "include":
                result.includes.append(resource)
            elif mode == "outcome" or resource.get("resourceType") == "OperationOutcome":
                log.info("search %s returned an OperationOutcome entry", what)
            else:
                result.matches.append(resource)
        next_url = _next_link(page)
        if next_url is None:
            return result
        if not same_origin(next_url, base_url):
            raise FhirProtocolError(f"search {what}: next page link leaves the server")
        if next_url in seen or result.pages >= MAX_PAGES:
            raise FhirProtocolError(f"search {what}: paging does not end")
        seen.add(next_url)
        page = await fetch_page(next_url)


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


# -- One patient's record -----------------------------------------------------------------------


def plan_searches(caps: Capabilities, patient_id: str, since: datetime) -> SearchPlan:
    """The searches that read a patient's record, fitted to what the server says it supports.

    ``patient`` falls back to ``subject``; MedicationDispense is searched only when the
    statement lists it; ``_include=...:medication`` is asked only when listed
    (else :func:`unresolved_medications` names what to fetch); without ``code`` on Observation,
    all of the patient's Observations are fetched and filtered here; without ``date`` the BP
    search is unbounded (the rules apply the window anyway).
    """

    def supports(rtype: str, param: str) -> bool:
        return rtype not in caps.search_params or caps.supports_search(rtype, param)

    def by_patient(rtype: str) -> tuple[str, str]:
        if supports(rtype, "patient"):
            return ("patient", f"Patient/{patient_id}")
        if supports(rtype, "subject"):
            return ("subject", f"Patient/{patient_id}")
        raise FhirProtocolError(f"the FHIR server cannot search {rtype} by patient")

    plan: SearchPlan = {}
    for rtype in ("Condition", "AllergyIntolerance"):
        plan[rtype] = (rtype, [by_patient(rtype)])
    # Past records of every status are read (no status filter): eligibility needs stopped and
    # completed ones. MedicationDispense only where the server lists it.
    medication_types = ["MedicationStatement", "MedicationRequest"]
    if "MedicationDispense" in caps.search_params:
        medication_types.append("MedicationDispense")
    for rtype in medication_types:
        params = [by_patient(rtype)]
        include = f"{rtype}:medication"
        if caps.supports_include(rtype, include):
            params.append(("_include", include))
        plan[rtype] = (rtype, params)
    patient = by_patient("Observation")
    if supports("Observation", "code"):
        bp = [patient, ("code", _tokens(BP_CODES))]
        if supports("Observation", "date"):
            stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            bp.append(("date", f"ge{stamp}"))
        plan["Observation:bp"] = ("Observation", bp)
        plan["Observation:other"] = ("Observation", [patient, ("code", _tokens(OTHER_CODES))])
    else:
        plan["Observation:all"] = ("Observation", [patient])
    return plan


def _tokens(codes: Iterable[str]) -> str:
    return ",".join(f"{LOINC}|{code}" for code in codes)


def _wanted_observation(resource: Mapping[str, Any]) -> bool:
    wanted = set(BP_CODES) | set(OTHER_CODES)
    codings = (resource.get("code") or {}).get("coding") or []
    return any(isinstance(c, dict) and c.get("system") == LOINC and c.get("code") in wanted
               for c in codings)


def _key(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _add(data: RawPatientData, resource: Mapping[str, Any]) -> Any:
    version = (resource.get("meta") or {}).get("versionId")
    if isinstance(version, str):
        data.versions[_key(resource)] = version
    model, problem = parse_resource(resource)
    if problem is not None:
        data.problems.append(problem)
    return model


def assemble(patient_id: str, results: Mapping[str, Any]) -> RawPatientData:
    """RawPatientData from the Patient read (key ``Patient``) and the planned searches' results."""
    data = RawPatientData(patient_id=patient_id)
    data.patient = _add(data, results["Patient"])
    seen: set[str] = set()
    for name, result in results.items():
        if not isinstance(result, SearchResult):
            continue
        for resource in result.matches:
            key = _key(resource)
            if key in seen or (name == "Observation:all" and not _wanted_observation(resource)):
                continue
            seen.add(key)
            model = _add(data, resource)
            if model is not None:
                data.resources.append(model)
        for resource in result.includes:
            if resource.get("resourceType") == "Medication":
                model = _add(data, resource)
                if model is not None:
                    data.medications[_key(resource)] = model
    return data


def unresolved_medications(
    data: RawPatientData, results: Mapping[str, Any], base_url: str
) -> list[str]:
    """Ids of Medications referenced by the medication searches but not yet in ``data``."""
    missing: list[str] = []
    base = base_url.rstrip("/") + "/"
    for name in ("MedicationStatement", "MedicationRequest", "MedicationDispense"):
        result = results.get(name)
        for resource in result.matches if isinstance(result, SearchResult) else []:
            ref = (resource.get("medicationReference") or {}).get("reference")
            if not isinstance(ref, str) or ref.startswith("#"):
                continue
            if ref.startswith(base):
                ref = ref[len(base):]
            parts = ref.split("/")
            if len(parts) != 2 or parts[0] != "Medication":
                data.problems.append(ReadProblem(_key(resource),
                                                 "medication reference not on this server"))
                continue
            if ref not in data.medications and parts[1] not in missing:
                missing.append(parts[1])
    return missing


def add_medications(
    data: RawPatientData, wanted: Iterable[str], found: Iterable[Mapping[str, Any]]
) -> None:
    for resource in found:
        if resource.get("resourceType") == "Medication":
            model = _add(data, resource)
            if model is not None:
                data.medications[_key(resource)] = model
    for mid in wanted:
        if f"Medication/{mid}" not in data.medications and not any(
                p.reference == f"Medication/{mid}" for p in data.problems):
            data.problems.append(ReadProblem(f"Medication/{mid}",
                                             "referenced Medication not found on the server"))
