"""The read side's FHIR R4 resources: only the elements screening reads, with FHIR's names.

Every class mirrors a FHIR R4 type (https://hl7.org/fhir/R4/resourcelist.html) cut down to the
elements the normaliser and the fetch stage read; attribute names are the elements' JSON names, so
code written against fhir.resources models (``obs.valueQuantity.value``, ``res.meta.versionId``,
``res.get_resource_type()``) reads these unchanged. Everything else in a resource is skipped
unread: a record malformed only there is still screened. Values keep their JSON form (dates as
written, numbers as ``float``); :mod:`service.fhir.primitives` gives the checks.

Instances are msgspec Structs: decoded straight from JSON bytes (or converted from a dict) in C,
without a per-field Python call. ``gc=False``: a decoded tree has no reference cycles.
"""

from __future__ import annotations

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
    "Reaction",
    "ReadResource",
    "Reference",
]


class _Element(Struct, kw_only=True, omit_defaults=True, gc=False):
    """Base of the data types: keyword-only, absent elements omitted when encoded."""


# -- Data types (https://hl7.org/fhir/R4/datatypes.html) -----------------------------------------


class Coding(_Element):
    system: Uri | None = None
    code: Code | None = None
    display: String | None = None


class CodeableConcept(_Element):
    coding: list[Coding] | None = None
    text: String | None = None


class Reference(_Element):
    reference: String | None = None
    display: String | None = None


class Period(_Element):
    start: DateTime | None = None
    end: DateTime | None = None


class Quantity(_Element):
    """Quantity, SimpleQuantity and Duration alike: the elements read are the same."""

    value: Decimal | None = None
    unit: String | None = None
    system: Uri | None = None
    code: Code | None = None


class Meta(_Element):
    versionId: Id | None = None


class Annotation(_Element):
    text: String | None = None


class HumanName(_Element):
    use: Code | None = None
    text: String | None = None
    family: String | None = None
    given: list[String] | None = None


class Identifier(_Element):
    type: CodeableConcept | None = None
    system: Uri | None = None
    value: String | None = None


class Dosage(_Element):
    text: String | None = None
    asNeededBoolean: bool | None = None
    asNeededCodeableConcept: CodeableConcept | None = None
    route: CodeableConcept | None = None


class DispenseRequest(_Element):
    validityPeriod: Period | None = None
    numberOfRepeatsAllowed: UnsignedInt | None = None
    expectedSupplyDuration: Quantity | None = None


class Ingredient(_Element):
    itemCodeableConcept: CodeableConcept | None = None
    itemReference: Reference | None = None


class Component(_Element):
    code: CodeableConcept | None = None
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None


class Reaction(_Element):
    substance: CodeableConcept | None = None


class ContainedResource(_Element):
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


class ReadResource(_Element, tag_field="resourceType", tag=True):
    """Base of the projected resources; ``resourceType`` is the tag that picks the class."""

    id: Id | None = None
    meta: Meta | None = None

    def get_resource_type(self) -> str:
        return str(self.__struct_config__.tag)


class Patient(ReadResource):
    identifier: list[Identifier] | None = None
    name: list[HumanName] | None = None
    gender: Code | None = None
    birthDate: Date | None = None


class Condition(ReadResource):
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    code: CodeableConcept | None = None
    subject: Reference | None = None
    onsetDateTime: DateTime | None = None
    onsetPeriod: Period | None = None
    abatementDateTime: DateTime | None = None
    abatementPeriod: Period | None = None
    recordedDate: DateTime | None = None
    note: list[Annotation] | None = None


class AllergyIntolerance(ReadResource):
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    code: CodeableConcept | None = None
    patient: Reference | None = None
    onsetDateTime: DateTime | None = None
    onsetPeriod: Period | None = None
    recordedDate: DateTime | None = None
    note: list[Annotation] | None = None
    reaction: list[Reaction] | None = None


class Observation(ReadResource):
    status: Code | None = None
    code: CodeableConcept | None = None
    subject: Reference | None = None
    effectiveDateTime: DateTime | None = None
    effectivePeriod: Period | None = None
    effectiveInstant: Instant | None = None
    issued: Instant | None = None
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    component: list[Component] | None = None


class Medication(ReadResource):
    code: CodeableConcept | None = None
    form: CodeableConcept | None = None
    ingredient: list[Ingredient] | None = None


class _MedicationUse(ReadResource):
    """What the three medication records share: the drug (a concept, a reference, or a
    contained Medication), the patient and the status."""

    contained: list[ContainedResource] | None = None
    status: Code | None = None
    medicationCodeableConcept: CodeableConcept | None = None
    medicationReference: Reference | None = None
    subject: Reference | None = None


class MedicationStatement(_MedicationUse):
    effectiveDateTime: DateTime | None = None
    effectivePeriod: Period | None = None
    dateAsserted: DateTime | None = None
    note: list[Annotation] | None = None
    dosage: list[Dosage] | None = None


class MedicationRequest(_MedicationUse):
    intent: Code | None = None
    authoredOn: DateTime | None = None
    note: list[Annotation] | None = None
    dosageInstruction: list[Dosage] | None = None
    dispenseRequest: DispenseRequest | None = None


class MedicationDispense(_MedicationUse):
    quantity: Quantity | None = None
    daysSupply: Quantity | None = None
    whenPrepared: DateTime | None = None
    whenHandedOver: DateTime | None = None
    note: list[Annotation] | None = None
    dosageInstruction: list[Dosage] | None = None


class OtherResource(_Element):
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
