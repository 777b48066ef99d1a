"""The read side's FHIR R4 resources: only the elements screening reads, with FHIR's names.

Every class mirrors a FHIR R4 type (https://hl7.org/fhir/R4/resourcelist.html) cut down to the
elements the normaliser and the fetch stage read; attribute names are the elements' JSON names, so
code written against fhir.resources models (``obs.valueQuantity.value``, ``res.meta.versionId``,
``res.get_resource_type()``) reads these unchanged. Everything else in a resource is skipped
unread: a record malformed only there is still screened. Values keep their JSON form (dates as
written, numbers as ``float``); :mod:`service.fhir.primitives` gives the checks.

Codes are checked in ``__post_init__`` (:func:`service.fhir.primitives.check_code`), the other
primitives by the decoder. Elements that R4 requires (min 1) are required here too where they are
read (Observation.status and code, a Condition's subject...), and a choice element read here
(``effective[x]``, ``medication[x]``...) may have one form only, as fhir.resources checked: a
record without them is unreadable, not silently dropped.

Instances are msgspec Structs: decoded straight from JSON bytes (or converted from a dict) in C,
without a per-field Python call (``__post_init__`` checks the choices and the codes).
``gc=False``: a decoded tree has no reference cycles.
"""

from __future__ import annotations

from typing import Any, ClassVar

from msgspec import Struct

from service.fhir.primitives import (
    Code,
    Date,
    DateTime,
    Decimal,
    Id,
    Instant,
    String,
    UnsignedInt,
    Uri,
    check_code,
)

__all__ = [
    "RESOURCE_TYPES",
    "AllergyIntolerance",
    "Annotation",
    "AnyResource",
    "CodeableConcept",
    "Coding",
    "Component",
    "Condition",
    "ContainedResource",
    "DispenseRequest",
    "Dosage",
    "HumanName",
    "Identifier",
    "Ingredient",
    "Medication",
    "MedicationDispense",
    "MedicationRequest",
    "MedicationStatement",
    "Meta",
    "Observation",
    "OtherResource",
    "Patient",
    "Period",
    "Quantity",
    "Range",
    "Reaction",
    "ReadResource",
    "Reference",
]


class _Element(Struct, kw_only=True, omit_defaults=True, gc=False):
    """Base of the data types: absent elements omitted when encoded. (``kw_only`` is per class
    in msgspec, so every class below says it: it lets a required element follow optional ones.)"""


def _twice(choice: str) -> ValueError:
    """A choice element (https://hl7.org/fhir/R4/formats.html#choice) has one form at most."""
    return ValueError(f"choice {choice}: more than one form given")


def _missing(choice: str) -> ValueError:
    return ValueError(f"choice {choice}: required")


# The choice checks below are written out (no helper call, no generator): they run once per
# decoded Observation and component, the hot path.


# -- Data types (https://hl7.org/fhir/R4/datatypes.html) -----------------------------------------


class _Value(Struct, kw_only=True, omit_defaults=True, gc=False, frozen=True):
    """Base of the data types that are hashable values (frozen, lists as tuples; msgspec and mypy
    want ``frozen`` said on each class)."""


class Coding(_Value, kw_only=True, frozen=True):
    system: Uri | None = None
    code: Code | None = None
    display: String | None = None

    def __post_init__(self) -> None:
        check_code(self.code, "code")


class CodeableConcept(_Value, kw_only=True, frozen=True):
    """Frozen, with its codings in a tuple, so that it is a hashable value: the normaliser keys
    its memo of concepts on it (hashed in C)."""

    coding: tuple[Coding, ...] | None = None
    text: String | None = None


class Reference(_Element, kw_only=True):
    reference: String | None = None
    display: String | None = None


class Period(_Element, kw_only=True):
    start: DateTime | None = None
    end: DateTime | None = None


class Quantity(_Element, kw_only=True):
    """Quantity, SimpleQuantity and Duration alike: the elements read are the same."""

    value: Decimal | None = None
    unit: String | None = None
    system: Uri | None = None
    code: Code | None = None

    def __post_init__(self) -> None:
        check_code(self.code, "code")


class Range(_Element, kw_only=True):
    low: Quantity | None = None
    high: Quantity | None = None


class Meta(_Element, kw_only=True):
    versionId: Id | None = None


class Annotation(_Element, kw_only=True):
    text: String


class HumanName(_Element, kw_only=True):
    use: Code | None = None
    text: String | None = None
    family: String | None = None
    given: list[String] | None = None

    def __post_init__(self) -> None:
        check_code(self.use, "use")


class Identifier(_Element, kw_only=True):
    type: CodeableConcept | None = None
    system: Uri | None = None
    value: String | None = None


class Dosage(_Element, kw_only=True):
    text: String | None = None
    asNeededBoolean: bool | None = None
    asNeededCodeableConcept: CodeableConcept | None = None
    route: CodeableConcept | None = None

    def __post_init__(self) -> None:
        if self.asNeededBoolean is not None and self.asNeededCodeableConcept is not None:
            raise _twice("asNeeded[x]")


class DispenseRequest(_Element, kw_only=True):
    validityPeriod: Period | None = None
    numberOfRepeatsAllowed: UnsignedInt | None = None
    expectedSupplyDuration: Quantity | None = None


class Ingredient(_Element, kw_only=True):
    itemCodeableConcept: CodeableConcept | None = None
    itemReference: Reference | None = None

    def __post_init__(self) -> None:
        if self.itemCodeableConcept is None:
            if self.itemReference is None:
                raise _missing("item[x]")
        elif self.itemReference is not None:
            raise _twice("item[x]")


class Component(_Element, kw_only=True):
    code: CodeableConcept
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None

    def __post_init__(self) -> None:
        if self.valueQuantity is not None and self.valueCodeableConcept is not None:
            raise _twice("value[x]")


class Reaction(_Element, kw_only=True):
    substance: CodeableConcept | None = None


class ContainedResource(_Element, kw_only=True):
    """A resource inside ``contained``: read as a Medication, whatever its type.

    Only a contained Medication is ever looked at (``medicationReference`` "#id"); other types
    found there (a Practitioner, an Organization) have none of these elements but ``id``, so
    they decode too instead of making the record unreadable.
    """

    resourceType: str
    id: Id | None = None
    code: CodeableConcept | None = None
    ingredient: list[Ingredient] | None = None
    form: CodeableConcept | None = None

    def get_resource_type(self) -> str:
        return self.resourceType


# -- Resources -----------------------------------------------------------------------------------


class ReadResource(_Element, kw_only=True, tag_field="resourceType", tag=True):
    """Base of the projected resources; ``resourceType`` is the tag that picks the class."""

    resource_type: ClassVar[str] = ""
    """The class's FHIR type name (its tag), as a class attribute: read for every record."""
    id: Id | None = None
    meta: Meta | None = None

    def __init_subclass__(cls, **config: Any) -> None:
        super().__init_subclass__(**config)
        cls.resource_type = cls.__name__

    def get_resource_type(self) -> str:
        return self.resource_type


class Patient(ReadResource, kw_only=True):
    identifier: list[Identifier] | None = None
    name: list[HumanName] | None = None
    gender: Code | None = None
    birthDate: Date | None = None

    def __post_init__(self) -> None:
        check_code(self.gender, "gender")


class Condition(ReadResource, kw_only=True):
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    code: CodeableConcept | None = None
    subject: Reference
    onsetDateTime: DateTime | None = None
    onsetPeriod: Period | None = None
    abatementDateTime: DateTime | None = None
    abatementPeriod: Period | None = None
    abatementAge: Quantity | None = None
    abatementRange: Range | None = None
    abatementString: String | None = None
    """Age, Range and String: only whether one is given is read (the condition has abated)."""
    recordedDate: DateTime | None = None
    note: list[Annotation] | None = None

    def __post_init__(self) -> None:
        if self.onsetDateTime is not None and self.onsetPeriod is not None:
            raise _twice("onset[x]")
        if ((self.abatementDateTime is not None) + (self.abatementPeriod is not None)
                + (self.abatementAge is not None) + (self.abatementRange is not None)
                + (self.abatementString is not None)) > 1:
            raise _twice("abatement[x]")


class AllergyIntolerance(ReadResource, kw_only=True):
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    code: CodeableConcept | None = None
    patient: Reference
    onsetDateTime: DateTime | None = None
    onsetPeriod: Period | None = None
    recordedDate: DateTime | None = None
    note: list[Annotation] | None = None
    reaction: list[Reaction] | None = None

    def __post_init__(self) -> None:
        if self.onsetDateTime is not None and self.onsetPeriod is not None:
            raise _twice("onset[x]")


class Observation(ReadResource, kw_only=True):
    status: Code
    code: CodeableConcept
    subject: Reference | None = None
    effectiveDateTime: DateTime | None = None
    effectivePeriod: Period | None = None
    effectiveInstant: Instant | None = None
    issued: Instant | None = None
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    component: list[Component] | None = None

    def __post_init__(self) -> None:
        check_code(self.status, "status")
        if ((self.effectiveDateTime is not None) + (self.effectivePeriod is not None)
                + (self.effectiveInstant is not None)) > 1:
            raise _twice("effective[x]")
        if self.valueQuantity is not None and self.valueCodeableConcept is not None:
            raise _twice("value[x]")


class Medication(ReadResource, kw_only=True):
    code: CodeableConcept | None = None
    form: CodeableConcept | None = None
    ingredient: list[Ingredient] | None = None


class _MedicationUse(ReadResource, kw_only=True):
    """What the three medication records share: the drug (a concept, a reference, or a
    contained Medication), the patient and the status."""

    contained: list[ContainedResource] | None = None
    status: Code
    medicationCodeableConcept: CodeableConcept | None = None
    medicationReference: Reference | None = None

    def __post_init__(self) -> None:
        check_code(self.status, "status")
        if self.medicationCodeableConcept is None:
            if self.medicationReference is None:
                raise _missing("medication[x]")
        elif self.medicationReference is not None:
            raise _twice("medication[x]")


class MedicationStatement(_MedicationUse, kw_only=True):
    subject: Reference
    effectiveDateTime: DateTime | None = None
    effectivePeriod: Period | None = None
    dateAsserted: DateTime | None = None
    reasonCode: list[CodeableConcept] | None = None
    note: list[Annotation] | None = None
    dosage: list[Dosage] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.effectiveDateTime is not None and self.effectivePeriod is not None:
            raise _twice("effective[x]")


class MedicationRequest(_MedicationUse, kw_only=True):
    subject: Reference
    intent: Code
    authoredOn: DateTime | None = None
    reasonCode: list[CodeableConcept] | None = None
    note: list[Annotation] | None = None
    dosageInstruction: list[Dosage] | None = None
    dispenseRequest: DispenseRequest | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_code(self.intent, "intent")


class MedicationDispense(_MedicationUse, kw_only=True):
    subject: Reference | None = None
    quantity: Quantity | None = None
    daysSupply: Quantity | None = None
    whenPrepared: DateTime | None = None
    whenHandedOver: DateTime | None = None
    note: list[Annotation] | None = None
    dosageInstruction: list[Dosage] | None = None


class OtherResource(_Element, kw_only=True):
    """A resource of a type screening does not read (Encounter, Claim...): its name and id only,
    so a Bundle's references to it can still be resolved."""

    resourceType: str
    id: Id | None = None
    meta: Meta | None = None

    def get_resource_type(self) -> str:
        return self.resourceType


AnyResource = (Patient | Condition | AllergyIntolerance | Observation | Medication
               | MedicationStatement | MedicationRequest | MedicationDispense)
"""The projected types; msgspec picks one by the ``resourceType`` tag."""
RESOURCE_TYPES: dict[str, type[ReadResource]] = {
    cls.__name__: cls
    for cls in (Patient, Condition, AllergyIntolerance, Observation, Medication,
                MedicationStatement, MedicationRequest, MedicationDispense)
}
"""The projected types by ``resourceType``."""
