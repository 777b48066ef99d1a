"""Reads one patient's records from a FHIR Bundle (a file, or a JSON body already in memory).

Whole-file problems (not JSON, not a Bundle) raise :class:`BundleError`. A single resource that
fails to parse is reported as a ``ReadProblem`` and the rest is screened: never dropped silently.
Both ``Patient/id`` references and transaction-style ``urn:uuid`` references are understood.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from service.errors import BundleError
from service.fhir.parse import parse_resource
from service.fhir.references import SCREENED_TYPES, Ref
from service.screening.model import RawPatientData, ReadProblem

__all__ = ["load_bundle", "parse_bundle"]


def load_bundle(path: Path, patient_id: str | None = None) -> RawPatientData:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: cannot read the file ({exc.__class__.__name__})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: not JSON (line {exc.lineno}, column {exc.colno})") from exc
    return parse_bundle(data, str(path), patient_id)


def _entries(data: object, source: str) -> list[tuple[str | None, object]]:
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        kind = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
        raise BundleError(f"{source}: not a FHIR Bundle (resourceType is {kind!r})")
    entries = data.get("entry", [])
    if not isinstance(entries, list):
        raise BundleError(f"{source}: Bundle.entry is not a list")
    out: list[tuple[str | None, object]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            out.append((None, entry))
            continue
        full_url = entry.get("fullUrl")
        out.append((full_url if isinstance(full_url, str) else None, entry.get("resource")))
    return out


def parse_bundle(data: object, source: str, patient_id: str | None = None) -> RawPatientData:
    parsed: list[tuple[str | None, Any]] = []
    problems: list[ReadProblem] = []
    for index, (full_url, resource) in enumerate(_entries(data, source)):
        label = _label(resource, full_url, index)
        if not isinstance(resource, dict):
            problems.append(ReadProblem(label, "entry has no resource"))
            continue
        model, problem = parse_resource(resource)
        if model is not None:
            parsed.append((full_url, model))
        elif problem is not None:
            problems.append(ReadProblem(label, problem.problem))
    if not parsed and problems:
        first = problems[0]
        raise BundleError(f"{source}: no resource in the Bundle could be read "
                          f"({first.reference}: {first.problem})")
    return _collect(parsed, problems, source, patient_id)


def _label(resource: object, full_url: str | None, index: int) -> str:
    if isinstance(resource, dict) and resource.get("resourceType") and resource.get("id"):
        return f"{resource['resourceType']}/{resource['id']}"
    return full_url or f"entry[{index}]"


def _collect(parsed: list[tuple[str | None, Any]], problems: list[ReadProblem], source: str,
             patient_id: str | None) -> RawPatientData:
    aliases: dict[str, str] = {}
    for full_url, res in parsed:
        if res.id is None and full_url and full_url.startswith("urn:uuid:"):
            res.id = full_url.removeprefix("urn:uuid:")
        if res.id is not None and full_url:
            aliases[full_url] = f"{res.get_resource_type()}/{res.id}"
    patients = [res for _, res in parsed if res.get_resource_type() == "Patient"]
    patient = _choose_patient(patients, parsed, aliases, source, patient_id)
    target = f"Patient/{patient}"
    raw = RawPatientData(patient_id=patient)
    raw.patient = next((p for p in patients if p.id == patient), None)
    raw.problems.extend(problems)
    for full_url, res in parsed:
        key = f"{res.get_resource_type()}/{res.id}"
        if res.meta is not None and res.meta.versionId:
            raw.versions[key] = res.meta.versionId
        if res.get_resource_type() == "Medication":
            raw.medications[key] = res
            if full_url:
                raw.medications[full_url] = res
        elif res.get_resource_type() in SCREENED_TYPES and _subject(res, aliases) == target:
            raw.resources.append(res)
    return raw


def _subject(res: Any, aliases: Mapping[str, str]) -> str | None:
    """``Patient/<id>`` (or what the reference says) of a screened record; a ``urn:uuid`` one
    resolved through the Bundle's fullUrls."""
    kind = SCREENED_TYPES.get(res.get_resource_type())
    ref = getattr(res, kind.patient if kind else "subject", None)
    text = ref.reference if ref is not None else None
    if not text:
        return None
    parsed = Ref.parse(text)
    key = parsed.key if parsed is not None else text
    return aliases.get(key, key)


def _choose_patient(patients: list[Any], parsed: Iterable[tuple[str | None, Any]],
                    aliases: Mapping[str, str], source: str, wanted: str | None) -> str:
    if wanted:
        return wanted
    if len(patients) == 1 and patients[0].id:
        return str(patients[0].id)
    if len(patients) > 1:
        raise BundleError(f"{source}: the Bundle holds {len(patients)} patients; name one with "
                          "--patient")
    subjects = {s for _, res in parsed if res.get_resource_type() in SCREENED_TYPES
                for s in [_subject(res, aliases)] if s and s.startswith("Patient/")}
    if len(subjects) == 1:
        return subjects.pop().removeprefix("Patient/")
    raise BundleError(f"{source}: cannot tell which patient to screen; name one with --patient")
