"""One patient's record from a FHIR server: the searches to run, and their answers assembled.

The searches follow :data:`service.fhir.references.SCREENED_TYPES`, fitted to what the server's
CapabilityStatement says it supports (https://hl7.org/fhir/R4/capabilitystatement.html).
Each search page arrives decoded into the read model (:mod:`service.fhir.read_model`); a resource
that cannot be read is a ReadProblem, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from service.fhir.capabilities import Capabilities
from service.fhir.paging import SearchResult
from service.fhir.projection import Projected
from service.fhir.references import (
    MEDICATION_REQUEST_INTENTS,
    SCREENED_TYPES,
    missing_medications,
    resource_key,
)
from service.screening.engine import observation_search_codes
from service.screening.model import RawPatientData, ReadProblem

__all__ = [
    "BP_CODES",
    "LOINC",
    "OTHER_CODES",
    "REFUSED_SEARCH_STATUSES",
    "WANTED_CODES",
    "SearchPlan",
    "add_medications",
    "assemble",
    "loinc_tokens",
    "plan_searches",
    "relaxed",
    "unavailable_types",
    "unresolved_medications",
    "wanted_observation",
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

    ``patient`` falls back to ``subject`` where only that is listed, and after a refusal
    (:func:`relaxed`; service.fhir.quirks); a type marked ``when_listed``
    (MedicationDispense) is searched only when the statement lists it; past records of every
    status are read (no status filter: eligibility needs stopped and completed ones);
    ``_include=...:medication`` is asked only when listed (else :func:`unresolved_medications`
    names what to fetch); without
    ``code`` on Observation, all of the patient's Observations are fetched and filtered here;
    without ``date`` the BP search is unbounded (the rules apply the window anyway).
    """

    def supports(rtype: str, param: str) -> bool:
        # A type listed without any searchParam says nothing about its parameters (a sparse
        # statement, quirk "sparse statement"): the standard ones are tried.
        return not caps.search_params.get(rtype) or caps.supports_search(rtype, param)

    def by_patient(rtype: str) -> tuple[str, str]:
        if supports(rtype, "patient"):
            return ("patient", f"Patient/{patient_id}")
        if supports(rtype, "subject"):
            return ("subject", f"Patient/{patient_id}")
        # Listing neither is more likely an incomplete statement than a server that cannot
        # search by patient: the standard search is tried, and a refusal relaxes it.
        return ("patient", f"Patient/{patient_id}")

    plan: SearchPlan = {}
    skipped = set(unavailable_types(caps))
    for rtype, kind in SCREENED_TYPES.items():
        if rtype == "Observation" or rtype in skipped or (
                kind.when_listed and rtype not in caps.search_params):
            continue
        params = [by_patient(rtype)]
        if rtype == "MedicationRequest" and supports(rtype, "intent"):
            params.append(("intent", MEDICATION_REQUEST_INTENTS))
        include = f"{rtype}:medication"
        if kind.medication and caps.supports_include(rtype, include):
            params.append(("_include", include))
        plan[rtype] = (rtype, params)
    if "Observation" in skipped:
        return plan
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


REFUSED_SEARCH_STATUSES = frozenset({400, 422})
"""A search the server answers with one of these refused a parameter (quirk "refused
parameter"): it is tried again with one parameter relaxed. Any other error fails the read."""

_RELAXATIONS: tuple[tuple[str, str | None], ...] = (
    ("_include", None),
    ("intent", None),
    ("date", None),
    ("patient", "subject"),
)
"""In order: (parameter, what replaces its name, or None to drop it). Each keeps the same
records: Medications not included are read by id, every intent is what no ``intent`` reads, the
rules apply the BP window themselves, and ``subject`` is ``patient`` for these types."""


def relaxed(params: list[tuple[str, str]]) -> tuple[str, list[tuple[str, str]]] | None:
    """The next, more tolerant form of a refused search: (the step, its parameters), or None
    when nothing is left to relax.

    >>> relaxed([("patient", "Patient/1"), ("intent", "order"), ("_include", "x")])
    ('_include', [('patient', 'Patient/1'), ('intent', 'order')])
    >>> relaxed([("patient", "Patient/1")])
    ('patient', [('subject', 'Patient/1')])
    >>> relaxed([("subject", "Patient/1")]) is None
    True
    """
    names = [name for name, _ in params]
    for name, replacement in _RELAXATIONS:
        if name in names:
            if replacement is None:
                return name, [(n, v) for n, v in params if n != name]
            return name, [(replacement if n == name else n, v) for n, v in params]
    return None


def unavailable_types(caps: Capabilities) -> list[str]:
    """Screened types a usable statement does not list (quirk "type not offered", e.g.
    MedicationStatement, which US Core 4 and later dropped): they are not searched, and the screen
    says they were not read. An empty or unusable statement lists nothing and hides nothing."""
    if not caps.search_params:
        return []
    return [rtype for rtype, kind in SCREENED_TYPES.items()
            if not kind.when_listed and rtype not in caps.search_params]


WANTED_CODES = frozenset(BP_CODES) | frozenset(OTHER_CODES)


def wanted_observation(code: Any) -> bool:
    """Whether an Observation's ``code`` (a CodeableConcept, or anything with its
    ``coding[].system`` and ``.code``) is one the rules read (a LOINC code of
    :data:`WANTED_CODES`): where a search cannot ask by code, and for a Bulk export's lines."""
    return code is not None and any(
        c.system == LOINC and c.code in WANTED_CODES for c in code.coding or ())


def _keep_version(data: RawPatientData, resource: Projected) -> None:
    if resource.meta is not None and resource.meta.versionId:
        data.versions[resource_key(resource)] = resource.meta.versionId


def assemble(patient_id: str, results: Mapping[str, Any]) -> RawPatientData:
    """RawPatientData from the Patient read (key ``Patient``: the resource, or the problem that
    made it unreadable) and the planned searches' results (each page already decoded)."""
    data = RawPatientData(patient_id=patient_id)
    patient, problem = results["Patient"]
    if patient is not None:
        _keep_version(data, patient)
        data.patient = patient
    if problem is not None:
        data.problems.append(problem)
    seen: set[str] = set()
    for name, result in results.items():
        if not isinstance(result, SearchResult):
            continue
        data.problems += result.problems
        for resource in result.matches:
            key = resource_key(resource)
            if key in seen or (name == "Observation:all"
                               and not wanted_observation(getattr(resource, "code", None))):
                continue
            seen.add(key)
            _keep_version(data, resource)
            data.resources.append(resource)
        for resource in result.includes:
            if resource.get_resource_type() == "Medication":
                _keep_version(data, resource)
                data.medications[resource_key(resource)] = resource
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


def add_medications(data: RawPatientData, wanted: Iterable[str], found: SearchResult) -> None:
    """The Medications read by id (``found``) into ``data``; a wanted one not found is a
    problem."""
    data.problems += found.problems
    for resource in found.matches:
        if resource.get_resource_type() == "Medication":
            _keep_version(data, resource)
            data.medications[resource_key(resource)] = resource
    for mid in wanted:
        if f"Medication/{mid}" not in data.medications and not any(
                p.reference == f"Medication/{mid}" for p in data.problems):
            data.problems.append(ReadProblem(f"Medication/{mid}",
                                             "referenced Medication not found on the server"))
