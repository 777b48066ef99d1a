"""FHIR references and the records screening reads: the one place either is spelled out.

A reference (https://hl7.org/fhir/R4/references.html#literal) is relative (``Patient/1``),
absolute (``https://ehr.example/fhir/Patient/1``), either of them versioned
(``.../_history/2``), a ``urn:uuid:`` inside a Bundle (https://hl7.org/fhir/R4/bundle.html#references),
or contained (``#med1``). :meth:`Ref.parse` reads every form; everything else uses it.

:data:`SCREENED_TYPES` lists the resource types screening reads, with the element that names
their patient and whether they reference a Medication: the Bundle reader, the server searches, the
Bulk export, the SMART scopes and the CDS prefetch all follow it, so a new type is one row here.

Every id that goes into a URL is checked here (:func:`resource_path`, :data:`FHIR_ID_PATTERN`):
the FHIR id grammar, and never ``.`` or ``..``, which a URL resolves as a path step
(https://www.rfc-editor.org/rfc/rfc3986#section-5.2.4): ``Patient/.`` is the search of every
patient, ``Patient/..`` the server's base.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import quote

from service.errors import InputError

__all__ = [
    "FHIR_ID_GRAMMAR",
    "FHIR_ID_PATTERN",
    "MEDICATION_BATCH",
    "MEDICATION_REQUEST_INTENTS",
    "SCREENED_TYPES",
    "Record",
    "Ref",
    "ScreenedType",
    "is_fhir_id",
    "medication_ref",
    "missing_medications",
    "patient_ref",
    "reference_to",
    "resource_key",
    "resource_path",
]

_TYPE = re.compile(r"^[A-Z][A-Za-z]+$")
FHIR_ID_GRAMMAR = (r"(?:[A-Za-z0-9\-][A-Za-z0-9\-.]{0,63}|\.[A-Za-z0-9\-][A-Za-z0-9\-.]{0,62}"
                   r"|\.\.[A-Za-z0-9\-.][A-Za-z0-9\-.]{0,61})")
"""An id (https://hl7.org/fhir/R4/datatypes.html#id: ``[A-Za-z0-9-.]{1,64}``) that is not
``.`` or ``..``; written without look-ahead so pydantic and OpenAPI take it as it is."""
FHIR_ID_PATTERN = f"^{FHIR_ID_GRAMMAR}$"
_ID = re.compile(FHIR_ID_PATTERN)


def is_fhir_id(value: object) -> bool:
    """A FHIR id that is safe as a URL path segment.

    >>> [is_fhir_id(v) for v in ("p1", "a.b", "...", ".", "..", "x?y", "", "a" * 65)]
    [True, True, True, False, False, False, False, False]
    """
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def resource_path(resource_type: str, resource_id: str) -> str:
    """``Type/id`` for a request URL; InputError (before anything is sent) for a bad id.

    >>> resource_path("Patient", "p-1")
    'Patient/p-1'
    >>> resource_path("Patient", "..")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    service.errors.InputError: A Patient id must be a FHIR id (...), not '.' or '..'.
    """
    if not _TYPE.fullmatch(resource_type):
        raise InputError("Not a FHIR resource type.")
    if not is_fhir_id(resource_id):
        raise InputError(f"A {resource_type} id must be a FHIR id ([A-Za-z0-9-.], 1 to 64 "
                         "characters), not '.' or '..'.")
    # The grammar leaves nothing to encode; quoting keeps that true if the grammar ever widens.
    return f"{resource_type}/{quote(resource_id, safe='')}"

MEDICATION_BATCH = 50
"""Medication ids asked for in one ``_id`` search (a URL stays well under 2 kB)."""


class Record(Protocol):
    """A resource as the fetch stage reads it (the read model's, :mod:`service.fhir.read_model`,
    or an export line's header): its type and id; its references are read by element name."""

    @property
    def id(self) -> str | None: ...
    def get_resource_type(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ScreenedType:
    name: str
    patient: str
    """The element that references the patient (``subject`` or ``patient``)."""
    medication: bool = False
    """Has ``medication[x]``: a ``medicationReference`` may point at a Medication to fetch."""
    prefetch: str = ""
    """CDS prefetch key, and the search filter the prefetch template adds (after ``&``)."""
    prefetch_filter: str = ""
    when_listed: bool = False
    """Searched only where the server's CapabilityStatement lists the type (and its CDS prefetch
    key is optional: a CDS client or server without the type does not make the call fail)."""


MEDICATION_REQUEST_INTENTS = ("proposal,plan,order,original-order,reflex-order,filler-order,"
                              "instance-order,option")
"""Every code of http://hl7.org/fhir/CodeSystem/medicationrequest-intent (R4). US Core's
required MedicationRequest search is ``patient`` + ``intent`` ("Mandatory Search Parameters",
https://hl7.org/fhir/us/core/StructureDefinition-us-core-medicationrequest.html); asking for
every intent reads what a search without ``intent`` reads, and the rules then decide which
intents count (REFERENCE, Which records count)."""

SCREENED_TYPES: dict[str, ScreenedType] = {t.name: t for t in (
    ScreenedType("Condition", "subject", prefetch="conditions"),
    # Medication records of every status: eligibility counts stopped and completed trials.
    ScreenedType("MedicationStatement", "subject", medication=True,
                 prefetch="medicationStatements"),
    ScreenedType("MedicationRequest", "subject", medication=True,
                 prefetch="medicationRequests",
                 prefetch_filter=f"intent={MEDICATION_REQUEST_INTENTS}"),
    ScreenedType("MedicationDispense", "subject", medication=True, when_listed=True,
                 prefetch="medicationDispenses"),
    ScreenedType("AllergyIntolerance", "patient", prefetch="allergies"),
    ScreenedType("Observation", "subject"),
)}
"""What screening reads besides the Patient, in the order searches and prefetch keys list them.
Observations are searched by code (service.fhir.record), not by this table's prefetch columns."""


@dataclass(frozen=True, slots=True)
class Ref:
    """One parsed reference. ``type`` and ``id`` are None for a ``urn:`` and for a contained
    reference's type.

    >>> Ref.parse("Patient/1")
    Ref(form='relative', type='Patient', id='1', version=None, base=None, text='Patient/1')
    >>> Ref.parse("https://ehr.example/fhir/Patient/1/_history/2").key
    'Patient/1'
    >>> Ref.parse("https://ehr.example/fhir/Patient/1/_history/2").version
    '2'
    >>> Ref.parse("https://ehr.example/fhir/Patient/1").base
    'https://ehr.example/fhir'
    >>> Ref.parse("urn:uuid:8f7c4a9e-0d1b-4c3a-9d5e-2b6f1a0c7e31").key
    'urn:uuid:8f7c4a9e-0d1b-4c3a-9d5e-2b6f1a0c7e31'
    >>> Ref.parse("#med1").form, Ref.parse("#med1").id
    ('contained', 'med1')
    >>> Ref.parse("not a reference") is None
    True
    """

    form: Literal["relative", "absolute", "urn", "contained"]
    type: str | None
    id: str | None
    version: str | None = None
    base: str | None = None
    """The server part of an absolute reference, without a trailing slash."""
    text: str = ""

    @classmethod
    def parse(cls, text: object) -> Ref | None:
        if not isinstance(text, str) or not text:
            return None
        if text.startswith("urn:"):
            return cls("urn", None, None, text=text)
        if text.startswith("#"):
            return cls("contained", None, text[1:] or None, text=text)
        head, _, version = text.partition("/_history/")
        parts = head.rstrip("/").split("/")
        if len(parts) < 2 or not _TYPE.match(parts[-2]) or not is_fhir_id(parts[-1]):
            return None
        base = "/".join(parts[:-2]) or None
        if base is not None and "://" not in base:
            return None
        return cls("absolute" if base else "relative", parts[-2], parts[-1], version or None,
                   base, text)

    @property
    def key(self) -> str:
        """``Type/id`` (without server or version); a ``urn:`` or ``#id`` as written."""
        if self.type is None or self.id is None:
            return self.text
        return f"{self.type}/{self.id}"

    def on(self, base_url: str) -> bool:
        """Relative, or absolute on the server at ``base_url``.

        >>> Ref.parse("https://ehr.example/fhir/Medication/m1").on("https://ehr.example/fhir/")
        True
        >>> Ref.parse("https://other.example/fhir/Medication/m1").on("https://ehr.example/fhir")
        False
        """
        return self.form == "relative" or (
            self.form == "absolute" and self.base == base_url.rstrip("/"))


def reference_to(kind: str, ref: str) -> str:
    """``Kind/id`` from ``Kind/id`` or a bare id.

    >>> reference_to("Patient", "p1"), reference_to("Patient", "Patient/p1")
    ('Patient/p1', 'Patient/p1')
    """
    return ref if ref.startswith(f"{kind}/") else f"{kind}/{ref}"


def resource_key(resource: Record) -> str:
    """``Type/id`` of a resource."""
    return f"{resource.get_resource_type()}/{resource.id}"


def _reference(value: object) -> Ref | None:
    return Ref.parse(getattr(value, "reference", None))


def patient_ref(resource: Record) -> Ref | None:
    """The reference to the patient a screened record is about."""
    kind = SCREENED_TYPES.get(resource.get_resource_type())
    return _reference(getattr(resource, kind.patient if kind else "subject", None))


def medication_ref(resource: Record) -> Ref | None:
    """A record's ``medicationReference``, when it is not a contained one."""
    kind = SCREENED_TYPES.get(resource.get_resource_type())
    if kind is None or not kind.medication:
        return None
    ref = _reference(getattr(resource, "medicationReference", None))
    return None if ref is None or ref.form == "contained" else ref


def missing_medications(records: Iterable[Record], have: Collection[str], *,
                        base_url: str | None = None) -> tuple[list[str], list[str]]:
    """Ids of the Medications ``records`` reference that are not among ``have`` (ids), in order
    and once each; and the keys of records whose Medication is not on ``base_url`` (any server
    when ``base_url`` is None), which cannot be fetched."""
    wanted: list[str] = []
    elsewhere: list[str] = []
    for record in records:
        kind = SCREENED_TYPES.get(record.get_resource_type())
        if kind is None or not kind.medication:
            continue
        text = getattr(getattr(record, "medicationReference", None), "reference", None)
        if not isinstance(text, str):
            continue  # a concept, or a display-only reference
        ref = Ref.parse(text)
        if ref is not None and ref.form == "contained":
            continue
        if (ref is None or ref.type != "Medication" or ref.id is None
                or (base_url is not None and not ref.on(base_url))):
            elsewhere.append(resource_key(record))
            continue
        if ref.id not in have and ref.id not in wanted:
            wanted.append(ref.id)
    return wanted, elsewhere
