"""The records for a CDS call: the client's prefetch, then its FHIR server for what is missing.

CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/#prefetch-template and
https://cds-hooks.hl7.org/2.0/#fhir-resource-access): :data:`PREFETCH` is what we ask the CDS
client to send; what the prefetch lacks is read from ``fhirServer`` with
``fhirAuthorization.access_token``, through a client the caller's ``connect`` makes (it raises
PrefetchIncomplete when that server may not be used). When a prefetch key is missing and the server
cannot be used (or it fails), :class:`~service.errors.PrefetchIncomplete` is raised; the CDS route
answers it with 412 as the spec asks. Medications referenced by a statement or request but not
supplied are read one by one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from service.errors import FhirError, PrefetchIncomplete
from service.fhir.client import FhirClient
from service.fhir.projection import Projected, decode_resource
from service.fhir.record import BP_CODES, OTHER_CODES, loinc_tokens
from service.fhir.references import SCREENED_TYPES, missing_medications
from service.screening.model import RawPatientData, ReadProblem

__all__ = [
    "MAX_MEDICATION_READS",
    "PREFETCH",
    "PREFETCH_OPTIONAL",
    "Connect",
    "Gathered",
    "bundle_resources",
    "draft_orders",
    "gather_records",
]

log = logging.getLogger(__name__)

MAX_MEDICATION_READS = 20
"""Referenced Medications read from the server per call, at most."""

_PATIENT = "{{context.patientId}}"
PREFETCH: dict[str, str] = {
    "patient": f"Patient/{_PATIENT}",
    **{kind.prefetch: f"{name}?patient={_PATIENT}"
       + (f"&{kind.prefetch_filter}" if kind.prefetch_filter else "")
       for name, kind in SCREENED_TYPES.items() if kind.prefetch},
    # Prefetch tokens are context fields only (no dates), so "the last 30 days" is asked as the
    # most recent readings; the engine applies the window itself (service.fhir.quirks).
    "bloodPressure": f"Observation?patient={_PATIENT}&code={loinc_tokens(BP_CODES)}"
                     "&_sort=-date&_count=20",
    "observations": f"Observation?patient={_PATIENT}&code={loinc_tokens(OTHER_CODES)}"
                    "&_sort=-date&_count=50",
}
"""Prefetch templates (https://cds-hooks.hl7.org/2.0/#prefetch-template); key -> query.
Eight queries: the patient, one per screened type (medications of every status, for
eligibility) and two for observations."""
PREFETCH_OPTIONAL: frozenset[str] = frozenset(
    kind.prefetch for kind in SCREENED_TYPES.values() if kind.prefetch and kind.when_listed)
"""Keys whose absence is no reason for a 412: the type is read only where a server has it
(MedicationDispense); missing from the prefetch, it is asked of ``fhirServer`` when there is one,
and left out when that fails."""

Connect = Callable[[], FhirClient]
"""Makes the client for the hook's ``fhirServer``; PrefetchIncomplete when there is none."""


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


def draft_orders(orders: Mapping[str, Any], selections: Sequence[str] | None,
                 patient_id: str) -> RawPatientData:
    """A hook's ``context.draftOrders`` Bundle as records: its MedicationRequests (the selected
    ones, for order-select: ``context.selections`` holds ``MedicationRequest/<id>``) and the
    Medications they may reference."""
    selected = set(selections or [])
    raw = RawPatientData(patient_id=patient_id)
    for data in bundle_resources(orders):
        kind = data.get("resourceType")
        if kind not in ("MedicationRequest", "Medication"):
            continue
        if kind == "MedicationRequest" and selected and f"{kind}/{data.get('id')}" not in selected:
            continue
        resource, _ = decode_resource(data)
        if resource is None:
            continue
        if kind == "Medication":
            raw.medications[f"Medication/{resource.id}"] = resource
        else:
            raw.resources.append(resource)
    return raw


@dataclass(slots=True)
class Gathered:
    """The records of a hook call in the read model, and those that could not be read."""

    resources: list[Projected] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)

    def add(self, found: tuple[Projected | None, ReadProblem | None]) -> None:
        resource, problem = found
        if resource is not None:
            self.resources.append(resource)
        if problem is not None:
            self.problems.append(problem)


async def gather_records(
    prefetch: Mapping[str, Any] | None,
    templates: Mapping[str, str],
    patient_id: str,
    *,
    connect: Connect,
    optional: Collection[str] = (),
) -> Gathered:
    """Every resource for ``patient_id``: the prefetch answers to ``templates`` (key -> query with
    ``{{context.patientId}}``), plus what the FHIR server gives for the missing keys and for
    unresolved Medication references. PrefetchIncomplete when a key stays unanswered, unless it
    is one of ``optional`` (then it is left out)."""
    prefetch = prefetch or {}
    gathered = Gathered()
    for key in templates:
        for data in bundle_resources(prefetch.get(key)):
            gathered.add(_prefetched(data, len(gathered.resources) + len(gathered.problems)))
    missing = [key for key in templates if key not in prefetch and key not in optional]
    extra = [key for key in templates if key not in prefetch and key in optional]
    if not missing and not extra and not _unresolved_medications(gathered.resources):
        return gathered
    try:
        client = connect()
    except PrefetchIncomplete:
        if missing:
            raise
        return gathered
    async with client:
        try:
            fetched = await asyncio.gather(
                *(_fetch(client, templates[key], patient_id) for key in missing),
                *(_fetch_optional(client, templates[key], patient_id) for key in extra))
            for found in fetched:
                gathered.resources += found.resources
                gathered.problems += found.problems
            wanted = _unresolved_medications(gathered.resources)[:MAX_MEDICATION_READS]
            for read in await asyncio.gather(*(client.read_record("Medication", mid)
                                               for mid in wanted)):
                gathered.add(read)
        except FhirError as err:
            raise PrefetchIncomplete(
                f"Prefetch incomplete and the FHIR server failed: {err}") from None
    log.info("cds: read %s from the FHIR server", ", ".join([*missing, *extra]) or "medications")
    return gathered


def _prefetched(data: dict[str, Any], index: int
                ) -> tuple[Projected | None, ReadProblem | None]:
    """One prefetched resource; a problem without ``Type/id`` is named by its place among the
    hook call's records (``entry[N]``)."""
    resource, problem = decode_resource(data)
    if problem is not None and "/" not in problem.reference:
        problem = ReadProblem(f"entry[{index}]", problem.problem)
    return resource, problem


async def _fetch_optional(client: FhirClient, template: str, patient_id: str) -> Gathered:
    """An optional key: a server that cannot answer it gives nothing, not a failed call."""
    try:
        return await _fetch(client, template, patient_id)
    except FhirError as err:
        log.info("cds: optional prefetch %s not read (%s)", template.split("?", 1)[0],
                 type(err).__name__)
        return Gathered()


async def _fetch(client: FhirClient, template: str, patient_id: str) -> Gathered:
    """One prefetch template run against the server (our ``_count`` gives way to paging)."""
    query = template.replace("{{context.patientId}}", patient_id)
    found = Gathered()
    if "?" not in query:
        kind, rid = query.split("/", 1)
        found.add(await client.read_record(kind, rid))
        return found
    kind, params = query.split("?", 1)
    pairs = [(k, v) for k, v in parse_qsl(params) if k != "_count"]
    result = await client.search(kind, pairs)
    found.resources = result.matches + result.includes
    found.problems = result.problems
    return found


def _unresolved_medications(resources: list[Projected]) -> list[str]:
    """Ids of Medications referenced by a statement or request but not among ``resources``."""
    have = {str(r.id) for r in resources if r.get_resource_type() == "Medication"}
    return missing_medications(resources, have)[0]
