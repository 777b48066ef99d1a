"""Turns parsed FHIR R4 resources into the plain facts the rules read.

This is the only place that knows FHIR's shapes on the read side: choice types
(``medicationCodeableConcept`` / ``medicationReference``), contained resources, partial dates,
status codings. Code systems are mapped to the short keys of ``fhir_maps/terminology.yaml``.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from operator import attrgetter
from typing import Any

from service.screening.matching import icd_key
from service.screening.model import (
    AllergyFact,
    Concept,
    ConditionFact,
    MedicationFact,
    ObservationFact,
    PatientFacts,
    Quantity,
    RawPatientData,
    ReadProblem,
)
from service.screening.ruleset import Terminology

__all__ = ["normalise", "to_datetime"]


def to_datetime(value: object, *, end: bool = False) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware UTC datetime.

    Partial dates ("2024", "2024-03") and plain dates stand for a span: its start, or with
    ``end=True`` its last instant, so that a period ending "2024-03" has not ended on 2024-03-15.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        day = value
        if end:
            return datetime.combine(day, time.max, UTC)
        return datetime.combine(day, time.min, UTC)
    if isinstance(value, str):
        return _partial(value, end=end)
    return None


def _partial(text: str, *, end: bool) -> datetime | None:
    parts = text.split("-")
    try:
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else (12 if end else 1)
    except ValueError:
        return None
    if len(parts) > 2:
        try:
            return to_datetime(datetime.fromisoformat(text), end=end)
        except ValueError:
            return None
    if not end:
        return datetime(year, month, 1, tzinfo=UTC)
    last = calendar.monthrange(year, month)[1]
    return datetime(year, month, last, tzinfo=UTC) + timedelta(days=1, microseconds=-1)


def _to_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        start = _partial(value, end=False)
        return start.date() if start else None
    return None


_CODING = attrgetter("system", "code", "display")


class _Normaliser:
    def __init__(self, raw: RawPatientData, terminology: Terminology,
                 memo: dict[Any, Concept]) -> None:
        self.raw = raw
        self.memo = memo
        self.systems = terminology.systems.map
        self.problems: list[ReadProblem] = list(raw.problems)

    # Concepts ---------------------------------------------------------------------------

    def concept(self, *concepts: Any) -> Concept:
        """Several CodeableConcepts (a drug and its ingredients) as one Concept."""
        key = tuple(
            (cc.text, tuple(map(_CODING, cc.coding or ()))) for cc in concepts if cc is not None
        )
        return self._lookup(key)

    def one(self, cc: Any) -> Concept:
        # The hot path: one CodeableConcept per Observation code and component.
        return self._lookup(((cc.text, tuple(map(_CODING, cc.coding or ()))),))

    def _lookup(self, key: Any) -> Concept:
        found = self.memo.get(key)
        if found is None:
            found = self._concept(key)
            if len(self.memo) >= _MEMO_LIMIT:
                self.memo.clear()
            self.memo[key] = found
        return found

    def _concept(self, key: tuple[tuple[str | None, tuple[tuple[Any, Any, Any], ...]], ...]
                 ) -> Concept:
        codes: set[tuple[str, str]] = set()
        texts: list[str] = []
        for text, codings in key:
            if text:
                texts.append(text)
            for system_uri, code, display in codings:
                if display:
                    texts.append(display)
                if code:
                    system = self.systems.get(system_uri or "", system_uri or "")
                    code = code.strip()
                    codes.add((system, icd_key(code) if system == "icd10cm" else code))
        loinc = frozenset(code for system, code in codes if system == "loinc")
        return Concept(frozenset(codes), tuple(dict.fromkeys(texts)), loinc)

    @staticmethod
    def status(cc: Any) -> str | None:
        if cc is None:
            return None
        for coding in cc.coding or ():
            if coding.code:
                return str(coding.code)
        return None

    # Medicines --------------------------------------------------------------------------

    def medication(self, resource: Any) -> tuple[Concept, str | None, bool]:
        if resource.medicationCodeableConcept is not None:
            return self.concept(resource.medicationCodeableConcept), None, False
        reference = resource.medicationReference
        target = reference.reference if reference is not None else None
        medication = None
        if target and target.startswith("#"):
            medication = next(
                (c for c in resource.contained or () if c.id == target[1:]), None
            )
        elif target:
            key = "/".join(target.split("/")[-2:])
            medication = self.raw.medications.get(key)
        if medication is None:
            display = reference.display if reference is not None else None
            return Concept(frozenset(), (display,) if display else ()), target, True
        ingredients = [
            item.itemCodeableConcept for item in medication.ingredient or ()
            if getattr(item, "itemCodeableConcept", None) is not None
        ]
        return self.concept(medication.code, *ingredients), target, False

    def medication_fact(self, resource: Any, ref: str) -> MedicationFact:
        concept, medication_ref, unresolved = self.medication(resource)
        if resource.get_resource_type() == "MedicationStatement":
            period = resource.effectivePeriod
            period_end = to_datetime(period.end, end=True) if period is not None else None
            recorded = to_datetime(resource.dateAsserted) or to_datetime(
                resource.effectiveDateTime or (period.start if period is not None else None)
            )
        else:
            period_end = None
            recorded = to_datetime(resource.authoredOn)
        return MedicationFact(
            ref, concept, resource.status, period_end, recorded, medication_ref, unresolved
        )

    # Observations -----------------------------------------------------------------------

    @staticmethod
    def quantity(q: Any) -> Quantity | None:
        if q is None or q.value is None:
            return None
        unit = q.code or q.unit
        return Quantity(float(q.value), str(unit) if unit else None)

    def observation_fact(self, obs: Any, ref: str) -> ObservationFact:
        effective = (
            to_datetime(obs.effectiveDateTime)
            or to_datetime(obs.effectiveInstant)
            or (to_datetime(obs.effectivePeriod.end or obs.effectivePeriod.start)
                if obs.effectivePeriod is not None else None)
        )
        one, quantity = self.one, self.quantity
        components = tuple([(one(c.code), quantity(c.valueQuantity))
                            for c in obs.component or ()])
        answer = one(obs.valueCodeableConcept) if obs.valueCodeableConcept else None
        return ObservationFact(
            ref, one(obs.code), obs.status, effective, quantity(obs.valueQuantity), answer,
            components,
        )

    # The whole patient ------------------------------------------------------------------

    def run(self) -> PatientFacts:
        conditions: list[ConditionFact] = []
        medications: list[MedicationFact] = []
        allergies: list[AllergyFact] = []
        observations: list[ObservationFact] = []
        for resource in self.raw.resources:
            kind = resource.get_resource_type()
            ref = f"{kind}/{resource.id}"
            if kind == "Condition":
                conditions.append(ConditionFact(
                    ref, self.concept(resource.code),
                    self.status(resource.clinicalStatus), self.status(resource.verificationStatus),
                    to_datetime(resource.recordedDate) or to_datetime(resource.onsetDateTime),
                ))
            elif kind in ("MedicationStatement", "MedicationRequest"):
                medications.append(self.medication_fact(resource, ref))
            elif kind == "AllergyIntolerance":
                substances = [r.substance for r in resource.reaction or () if r.substance]
                allergies.append(AllergyFact(
                    ref, self.concept(resource.code, *substances),
                    self.status(resource.clinicalStatus), self.status(resource.verificationStatus),
                    to_datetime(resource.recordedDate) or to_datetime(resource.onsetDateTime),
                ))
            elif kind == "Observation":
                observations.append(self.observation_fact(resource, ref))
        patient = self.raw.patient
        return PatientFacts(
            patient=f"Patient/{self.raw.patient_id}",
            birth_date=_to_date(patient.birthDate) if patient is not None else None,
            conditions=tuple(conditions),
            medications=tuple(medications),
            allergies=tuple(allergies),
            observations=tuple(observations),
            problems=tuple(_unique(self.problems)),
        )


def _unique(problems: Iterable[ReadProblem]) -> list[ReadProblem]:
    return list(dict.fromkeys(problems))


# The same few codings (LOINC vitals, common drugs) recur in every record and every patient, so
# concepts are shared; the bound keeps a long-running process from growing with free text.
_MEMO_LIMIT = 20_000
_MEMO: dict[Any, Concept] = {}


def normalise(raw: RawPatientData, terminology: Terminology) -> PatientFacts:
    """Map one patient's parsed resources to plain facts (same input, same output)."""
    return _Normaliser(raw, terminology, _MEMO).run()
