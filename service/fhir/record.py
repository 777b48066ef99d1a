"""One patient's record from a FHIR server: the searches to run, and their answers assembled.

The searches follow :data:`service.fhir.references.SCREENED_TYPES`, fitted to what the server's
CapabilityStatement says it supports (https://hl7.org/fhir/R4/capabilitystatement.html).
Resources are parsed with the **R4B** models of fhir.resources (R4B is wire-compatible with R4 for
the resource types read here); one that fails to parse becomes a ReadProblem, never silently
dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from service.errors import FhirProtocolError
from service.fhir.capabilities import Capabilities
from service.fhir.paging import SearchResult
from service.fhir.parse import parse_resource
from service.fhir.references import SCREENED_TYPES, missing_medications, resource_key
from service.screening.engine import observation_search_codes
from service.screening.model import RawPatientData, ReadProblem

__all__ = [
    "BP_CODES",
    "LOINC",
    "OTHER_CODES",
    "SearchPlan",
    "add_medications",
    "assemble",
    "loinc_tokens",
    "plan_searches",
    "unresolved_medications",
]

LOINC = "http://loinc.org"
BP_CODES, OTHER_CODES = observation_search_codes()
"""The LOINC codes of the rulesets' ``observations`` (REFERENCE: Observations): blood pressure
(panel and parts) is searched within the BP window, the others (heart rate, SpO2, weight,
pregnancy status, hCG, PHQ-9) without a date bound. The CDS prefetch asks for the same."""

SearchPlan = dict[str, tuple[str, list[tuple[str, str]]]]
"""Search name -> (resource type, query parameters)."""


def loinc_tokens(codes: Iterable[str]) -> str:
    """A ``code`` search value: ``http://loinc.org|a,http://loinc.org|b``."""
    return ",".join(f"{LOINC}|{code}" for code in codes)


def plan_searches(caps: Capabilities, patient_id: str, since: datetime) -> SearchPlan:
    """The searches that read a patient's record, fitted to what the server says it supports.

    ``patient`` falls back to ``subject`` (service.fhir.quirks); a type marked ``when_listed``
    (MedicationDispense) is searched only when the statement lists it; past records of every
    status are read (no status filter: eligibility needs stopped and completed ones);
    ``_include=...:medication`` is asked only when listed (else :func:`unresolved_medications`
    names what to fetch); without
    ``code`` on Observation, all of the patient's Observations are fetched and filtered here;
    without ``date`` the BP search is unbounded (the rules apply the window anyway).
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
    for rtype, kind in SCREENED_TYPES.items():
        if rtype == "Observation" or (kind.when_listed and rtype not in caps.search_params):
            continue
        params = [by_patient(rtype)]
        include = f"{rtype}:medication"
        if kind.medication and caps.supports_include(rtype, include):
            params.append(("_include", include))
        plan[rtype] = (rtype, params)
    patient = by_patient("Observation")
    if supports("Observation", "code"):
        bp = [patient, ("code", loinc_tokens(BP_CODES))]
        if supports("Observation", "date"):
            stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            bp.append(("date", f"ge{stamp}"))
        plan["Observation:bp"] = ("Observation", bp)
        plan["Observation:other"] = ("Observation",
                                     [patient, ("code", loinc_tokens(OTHER_CODES))])
    else:
        plan["Observation:all"] = ("Observation", [patient])
    return plan


def _wanted_observation(resource: Mapping[str, Any]) -> bool:
    wanted = set(BP_CODES) | set(OTHER_CODES)
    codings = (resource.get("code") or {}).get("coding") or []
    return any(isinstance(c, dict) and c.get("system") == LOINC and c.get("code") in wanted
               for c in codings)


def _add(data: RawPatientData, resource: Mapping[str, Any]) -> Any:
    version = (resource.get("meta") or {}).get("versionId")
    if isinstance(version, str):
        data.versions[resource_key(resource)] = version
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
            key = resource_key(resource)
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
                    data.medications[resource_key(resource)] = model
    return data


def unresolved_medications(
    data: RawPatientData, results: Mapping[str, Any], base_url: str
) -> list[str]:
    """Ids of Medications referenced by the medication searches but not yet in ``data``; a
    reference to a Medication elsewhere becomes a ReadProblem."""
    records = [resource for name, kind in SCREENED_TYPES.items() if kind.medication
               for result in [results.get(name)] if isinstance(result, SearchResult)
               for resource in result.matches]
    have = {key.removeprefix("Medication/") for key in data.medications}
    missing, elsewhere = missing_medications(records, have, base_url=base_url)
    data.problems += [ReadProblem(key, "medication reference not on this server")
                      for key in elsewhere]
    return missing


def add_medications(
    data: RawPatientData, wanted: Iterable[str], found: Iterable[Mapping[str, Any]]
) -> None:
    for resource in found:
        if resource.get("resourceType") == "Medication":
            model = _add(data, resource)
            if model is not None:
                data.medications[resource_key(resource)] = model
    for mid in wanted:
        if f"Medication/{mid}" not in data.medications and not any(
                p.reference == f"Medication/{mid}" for p in data.problems):
            data.problems.append(ReadProblem(f"Medication/{mid}",
                                             "referenced Medication not found on the server"))
