"""Reads one patient's records from a FHIR Bundle (a file, a request body, or decoded JSON).

JSON bytes are decoded once, straight into the read model (:func:`service.fhir.read_bundle.
decode_bundle`); a Bundle already decoded (a dict) is read resource by resource. Whole-file
problems (not JSON, not a Bundle) raise :class:`BundleError`. A single resource that cannot be read
is reported as a ``ReadProblem`` and the rest is screened: never dropped silently. Both
``Patient/id`` references and transaction-style ``urn:uuid`` references are understood.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from service.errors import BundleError
from service.fhir.projection import Projected, decode_resource
from service.fhir.read_bundle import decode_bundle
from service.fhir.references import SCREENED_TYPES, Ref, ScreenedType
from service.screening.model import RawPatientData, ReadProblem

__all__ = ["Entries", "collect", "load_bundle", "parse_bundle"]

Entries = list[tuple[str | None, Projected]]
"""(fullUrl, resource) of each readable entry."""


def load_bundle(path: Path, patient_id: str | None = None) -> RawPatientData:
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the file ({exc.__class__.__name__})") from exc
    return parse_bundle(body, str(path), patient_id)


def parse_bundle(data: bytes | str | object, source: str,
                 patient_id: str | None = None) -> RawPatientData:
    """One patient's records from a Bundle: JSON (bytes or text), or a dict already decoded."""
    if isinstance(data, bytes | bytearray | memoryview | str):
        decoded = decode_bundle(bytes(data) if not isinstance(data, bytes | str) else data,
                                source)
        parsed: Entries = [(e.fullUrl, e.resource) for e in decoded.entries
                           if e.resource is not None]
        problems = decoded.problems
    else:
        parsed, problems = _from_json(data, source)
    return collect(parsed, problems, source, patient_id)


def _from_json(data: object, source: str) -> tuple[Entries, list[ReadProblem]]:
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        kind = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
        raise BundleError(f"{source}: not a FHIR Bundle (resourceType is {kind!r})")
    entries = data.get("entry", [])
    if not isinstance(entries, list):
        raise BundleError(f"{source}: Bundle.entry is not a list")
    parsed: Entries = []
    problems: list[ReadProblem] = []
    for index, entry in enumerate(entries):
        full_url = entry.get("fullUrl") if isinstance(entry, dict) else None
        full_url = full_url if isinstance(full_url, str) else None
        resource = entry.get("resource") if isinstance(entry, dict) else entry
        label = _label(resource, full_url, index)
        if not isinstance(resource, dict):
            problems.append(ReadProblem(label, "entry has no resource"))
            continue
        model, problem = decode_resource(resource)
        if model is not None:
            parsed.append((full_url, model))
        elif problem is not None:
            problems.append(ReadProblem(label, problem.problem))
    return parsed, problems


def _label(resource: object, full_url: str | None, index: int) -> str:
    if isinstance(resource, dict) and resource.get("resourceType") and resource.get("id"):
        return f"{resource['resourceType']}/{resource['id']}"
    return full_url or f"entry[{index}]"


def collect(parsed: Iterable[tuple[str | None, Projected]], problems: Iterable[ReadProblem],
            source: str, patient_id: str | None) -> RawPatientData:
    """RawPatientData of one patient from a Bundle's readable entries (fullUrl, resource):
    the patient (``patient_id``, or the Bundle's only one), its screened records, every
    Medication, and the record versions. BundleError when nothing could be read."""
    entries = parsed if isinstance(parsed, list) else list(parsed)
    problems = list(problems)
    if not entries and problems:
        first = problems[0]
        raise BundleError(f"{source}: no resource in the Bundle could be read "
                          f"({first.reference}: {first.problem})")
    aliases: dict[str, str] = {}
    patients: list[Projected] = []
    for full_url, res in entries:
        if full_url:
            if res.id is None and full_url.startswith("urn:uuid:"):
                res.id = full_url.removeprefix("urn:uuid:")
            if res.id is not None:
                aliases[full_url] = f"{res.get_resource_type()}/{res.id}"
        if res.get_resource_type() == "Patient":
            patients.append(res)
    subjects = _Subjects(aliases)
    patient = _choose_patient(patients, entries, subjects, source, patient_id)
    target = f"Patient/{patient}"
    raw = RawPatientData(patient_id=patient)
    raw.patient = next((p for p in patients if p.id == patient), None)
    raw.problems.extend(problems)
    versions, medications, resources = raw.versions, raw.medications, raw.resources
    for full_url, res in entries:
        kind = res.get_resource_type()
        meta = res.meta
        if meta is not None and meta.versionId:
            versions[f"{kind}/{res.id}"] = meta.versionId
        if kind == "Medication":
            medications[f"{kind}/{res.id}"] = res
            if full_url:
                medications[full_url] = res
        else:
            screened = SCREENED_TYPES.get(kind)
            if screened is not None and subjects.of(res, screened) == target:
                resources.append(res)
    return raw


class _Subjects:
    """``Patient/<id>`` (or what the reference says) of a screened record, a ``urn:uuid`` one
    resolved through the Bundle's fullUrls. Every record of a Bundle names the same patient in
    the same words, so each reference text is parsed once."""

    def __init__(self, aliases: Mapping[str, str]) -> None:
        self.aliases = aliases
        self.known: dict[str, str | None] = {}

    def of(self, res: Projected, kind: ScreenedType) -> str | None:
        ref = getattr(res, kind.patient, None)
        text = ref.reference if ref is not None else None
        if not text:
            return None
        found = self.known.get(text, "")
        if found == "":
            parsed = Ref.parse(text)
            key = parsed.key if parsed is not None else text
            found = self.known[text] = self.aliases.get(key, key)
        return found


def _choose_patient(patients: list[Projected], parsed: Entries, subjects: _Subjects,
                    source: str, wanted: str | None) -> str:
    if wanted:
        return wanted
    if len(patients) == 1 and patients[0].id:
        return str(patients[0].id)
    if len(patients) > 1:
        raise BundleError(f"{source}: the Bundle holds {len(patients)} patients; name one with "
                          "--patient")
    found = {s for _, res in parsed
             for kind in [SCREENED_TYPES.get(res.get_resource_type())] if kind is not None
             for s in [subjects.of(res, kind)] if s and s.startswith("Patient/")}
    if len(found) == 1:
        return found.pop().removeprefix("Patient/")
    raise BundleError(f"{source}: cannot tell which patient to screen; name one with --patient")
