"""Plain data that flows through the screening pipeline.

``RawPatientData`` is what the fetch stage hands over (parsed FHIR R4B resources plus the
problems met while reading them). ``PatientFacts`` is the normalised, terminology-mapped view the
rules read. ``ScreeningResult`` is what the rules return. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import IntEnum
from typing import Any, Literal

from service.screening.schema import PRODUCTS, Product

__all__ = [
    "PRODUCTS",
    "AllergyFact",
    "BloodPressureReading",
    "Concept",
    "ConditionFact",
    "Eligibility",
    "Finding",
    "FindingKind",
    "MedicationFact",
    "ObservationFact",
    "PatientFacts",
    "Quantity",
    "RawPatientData",
    "ReadProblem",
    "ScreeningResult",
    "Trial",
    "Verdict",
]

FindingKind = Literal["contraindication", "precaution", "interaction", "missing-data", "info"]


class Verdict(IntEnum):
    """Ordered so that ``max()`` picks the verdict a set of findings reaches (REFERENCE)."""

    SUITABLE = 0
    INSUFFICIENT_DATA = 1
    NEEDS_REVIEW = 2
    CONTRAINDICATED = 3

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


@dataclass(frozen=True, slots=True)
class ReadProblem:
    """A record that could not be used, e.g. an unparseable resource inside a valid Bundle."""

    reference: str
    """``ResourceType/id`` where known, else ``entry[N]``."""
    problem: str


@dataclass(slots=True)
class RawPatientData:
    """One patient's records as read from a Bundle file or a FHIR server (fhir.resources R4B)."""

    patient_id: str
    patient: Any | None = None
    resources: list[Any] = field(default_factory=list)
    """Condition, MedicationStatement, MedicationRequest, MedicationDispense,
    AllergyIntolerance, Observation."""
    medications: dict[str, Any] = field(default_factory=dict)
    """Referenced Medication resources by ``Medication/id``."""
    problems: list[ReadProblem] = field(default_factory=list)
    not_offered: list[str] = field(default_factory=list)
    """Record types not searched because the FHIR server does not offer them."""
    versions: dict[str, str] = field(default_factory=dict)
    """``ResourceType/id`` -> ``meta.versionId`` where the source gave one."""


@dataclass(frozen=True, slots=True)
class Concept:
    """A CodeableConcept reduced to what matching needs."""

    codes: frozenset[tuple[str, str]]
    """(system key, normalised code): system keys are those of ``fhir_maps/terminology.yaml``."""
    texts: tuple[str, ...]
    """``text`` and every ``coding.display``, as written."""
    loinc: frozenset[str] = field(default=frozenset(), compare=False, hash=False)
    """The LOINC codes among ``codes``, kept apart because observation rules test them often."""
    free_texts: frozenset[str] = frozenset()
    """The ``text`` values among ``texts`` that are not a copy of a coding's display: only these
    are read for negation (REFERENCE, Which records count)."""
    _hash: int = field(default=0, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Concepts key the matchers' memos on every record of every screen: hash them once.
        object.__setattr__(self, "_hash", hash((self.codes, self.texts, self.free_texts)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def label(self) -> str:
        return self.texts[0] if self.texts else ", ".join(f"{s} {c}" for s, c in sorted(self.codes))


@dataclass(frozen=True, slots=True)
class ConditionFact:
    ref: str
    concept: Concept
    clinical_status: str | None
    verification_status: str | None
    recorded: datetime | None
    """recordedDate, else the onset: when the chart learnt of it (shown in reports)."""
    onset: datetime | None = None
    """onsetDateTime or onsetPeriod.start (recency counts from it, else from ``recorded``)."""
    known_from: datetime | None = None
    """The latest of onset and recordedDate: before it, the record does not count."""
    abated_at: datetime | None = None
    abated: bool = False
    """Any abatement[x] is present (dated or not)."""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MedicationFact:
    ref: str
    """``MedicationStatement/id``, ``MedicationRequest/id`` or ``MedicationDispense/id``."""
    concept: Concept
    """The medication's own code plus the codes of its ingredients."""
    status: str | None
    period_end: datetime | None
    recorded: datetime | None
    medication_ref: str | None = None
    """``Medication/id`` or ``#contained`` when the drug came from a Medication resource."""
    unresolved: bool = False
    """The referenced Medication was not found, so the drug is known by its display at best."""
    kind: str = ""
    """The resource type."""
    intent: str | None = None
    start: datetime | None = None
    """effectivePeriod.start / effectiveDateTime, authoredOn, or whenHandedOver."""
    known_from: datetime | None = None
    """The latest of the record's own dates: before it, the record does not count."""
    supply_days: float | None = None
    """expectedSupplyDuration (a request) or daysSupply (a dispense), in days."""
    repeats: int | None = None
    as_needed: bool = False
    context: tuple[str, ...] = ()
    """Dosage, route and reason texts: what kind of product or use this is."""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AllergyFact:
    ref: str
    concept: Concept
    clinical_status: str | None
    verification_status: str | None
    recorded: datetime | None
    known_from: datetime | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Quantity:
    value: float
    unit: str | None
    """UCUM code where given, else the printed unit; ``None`` when the data has neither."""


@dataclass(frozen=True, slots=True)
class ObservationFact:
    ref: str
    concept: Concept
    status: str | None
    effective: datetime | None
    quantity: Quantity | None
    answer: Concept | None
    components: tuple[tuple[Concept, Quantity | None], ...]
    known_from: datetime | None = None
    """The latest of effective[x] and issued."""


@dataclass(frozen=True, slots=True)
class BloodPressureReading:
    at: datetime
    systolic: float | None
    diastolic: float | None
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PatientFacts:
    patient: str
    """``Patient/id``."""
    birth_date: date | None
    conditions: tuple[ConditionFact, ...] = ()
    medications: tuple[MedicationFact, ...] = ()
    allergies: tuple[AllergyFact, ...] = ()
    observations: tuple[ObservationFact, ...] = ()
    problems: tuple[ReadProblem, ...] = ()
    not_offered: tuple[str, ...] = ()
    """Record types the FHIR server does not offer (none of them were read)."""


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    rule: str
    severity: str
    summary: str
    evidence: tuple[str, ...]
    source: str
    detail: str = ""
    """Longer text for people: what to do, what to collect, the management of an interaction."""
    records: tuple[tuple[str, str, datetime | None], ...] = ()
    """(reference, what it is, when recorded) for each evidence record, for reports."""
    products: tuple[Product, ...] = PRODUCTS
    """The products (of those asked about) this finding concerns."""

    def as_contract(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rule": self.rule,
            "severity": self.severity,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "source": self.source,
            "products": list(self.products),
        }


@dataclass(frozen=True, slots=True)
class Trial:
    """One antidepressant's exposure in the current episode (REFERENCE, Indication)."""

    ingredient: str
    drug_class: str
    start: date
    days: int
    evidence: tuple[str, ...]
    basis: str
    """How the duration was told: period, supply x repeats, repeated orders, dispense days
    supply, ongoing (joined by ", " when several sources add up)."""

    def as_contract(self) -> dict[str, Any]:
        return {"ingredient": self.ingredient, "class": self.drug_class,
                "start": self.start.isoformat(), "days": self.days,
                "evidence": list(self.evidence), "basis": self.basis}


EligibilityStatus = Literal["trd-documented", "mdsi-pathway", "not-documented"]


@dataclass(frozen=True, slots=True)
class Eligibility:
    """Is the patient a candidate (treatment-resistant depression)? Never changes the verdict."""

    status: EligibilityStatus
    diagnosis: tuple[str, ...]
    trials: tuple[Trial, ...]
    classes: int
    missing: tuple[str, ...]
    summary: str
    source: str
    episode_start: date | None = None
    other_exposures: tuple[tuple[Trial, str], ...] = ()
    """Antidepressant exposures that are not counted trials, each with the reason."""
    suicidality: tuple[str, ...] = ()
    current: tuple[str, ...] = ()
    """Records of a current oral antidepressant (the MDSI pathway)."""

    def as_contract(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "diagnosis": list(self.diagnosis),
            "trials": [t.as_contract() for t in self.trials],
            "classes": self.classes,
            "missing": list(self.missing),
            "summary": self.summary,
            "episode_start": self.episode_start.isoformat() if self.episode_start else None,
            "other_exposures": [{**t.as_contract(), "reason": why}
                                for t, why in self.other_exposures],
            "suicidality": list(self.suicidality),
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    patient: str
    as_of: datetime
    ruleset: str
    verdict: Verdict
    findings: tuple[Finding, ...]
    products: tuple[Product, ...] = PRODUCTS
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    """Product -> the verdict for that product (the products asked about)."""
    thresholds: dict[str, float] = field(default_factory=dict)
    """The configured thresholds this result was computed with (named in what is written)."""
    eligibility: Eligibility | None = None

    def as_contract(self) -> dict[str, Any]:
        """The JSON contract shared by the CLI and the REST API."""
        return {
            "patient": self.patient,
            "as_of": self.as_of.isoformat().replace("+00:00", "Z"),
            "ruleset": self.ruleset,
            "products": list(self.products),
            "verdict": self.verdict.label,
            "verdicts": {p: v.label for p, v in self.verdicts.items()},
            "thresholds": dict(self.thresholds),
            "findings": [f.as_contract() for f in self.findings],
            "eligibility": self.eligibility.as_contract() if self.eligibility else None,
        }
