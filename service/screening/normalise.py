"""Turns parsed FHIR R4 resources into the plain facts the rules read.

This is the only place that knows FHIR's shapes on the read side: choice types
(``medicationCodeableConcept`` / ``medicationReference``, ``onset[x]``, ``abatement[x]``),
contained resources, partial dates, status codings. Code systems are mapped to the short keys of
``fhir_maps/terminology.yaml``. Resources are read by FHIR element names only (attribute access,
``get_resource_type()``), so any read-side object with the same attribute names will do.
"""

from __future__ import annotations

import calendar
import contextlib
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from operator import attrgetter
from typing import Any

from service.screening.codes import icd_key
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
from service.screening.schema import Terminology
from service.screening.text import normal

__all__ = ["normalise", "to_datetime"]


def to_datetime(value: object, *, end: bool = False) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware UTC datetime.

    Partial dates ("2024", "2024-03") and plain dates stand for a span: its start, or with
    ``end=True`` its last instant, so that a period ending "2024-03" has not ended on 2024-03-15.
    A plain date reads the same whether it comes as text (the read model keeps JSON's form) or
    as a ``date``.
    """
    if value is None:
        return None
    if isinstance(value, str):  # the read model's form, the common case: checked first
        # "YYYY-MM-DDThh:mm:ss..." goes straight to the parser without splitting: where the
        # parser takes such a text, so did _partial (its year and month are ASCII digits), and
        # where it refuses one, _partial's answer was None too. This runs for every date read.
        if len(value) > 10 and value[4] == "-" and value[7] == "-":
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                return None
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        return _date_text(value, end)
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return _whole_day(value, end)
    return None


def _whole_day(day: date, end: bool) -> datetime:
    return datetime.combine(day, time.max if end else time.min, UTC)


def _date_text(text: str, end: bool) -> datetime | None:
    if len(text) == 10 and text[4] == "-" and text[7] == "-":  # a plain date, as a date reads
        try:
            return _whole_day(date.fromisoformat(text), end)
        except ValueError:
            return None
    return _partial(text, end=end)


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


def _key(cc: Any) -> tuple[str | None, tuple[tuple[Any, Any, Any], ...]]:
    """A CodeableConcept's text and codings, as a hashable value."""
    return cc.text, tuple(map(_CODING, cc.coding or ()))

_DAYS = {"d": 1.0, "day": 1.0, "days": 1.0, "wk": 7.0, "week": 7.0, "weeks": 7.0,
         "mo": 30.0, "month": 30.0, "months": 30.0, "a": 365.0, "year": 365.0,
         "h": 1 / 24, "hour": 1 / 24, "hours": 1 / 24}
"""UCUM (and spelt-out) time units as days, for supply durations."""


def _latest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return max(known) if known else None


def _days(quantity: Any) -> float | None:
    if quantity is None or quantity.value is None:
        return None
    unit = str(quantity.code or quantity.unit or "d").strip().lower()
    factor = _DAYS.get(unit)
    return float(quantity.value) * factor if factor is not None else None


def _notes(resource: Any) -> tuple[str, ...]:
    notes = getattr(resource, "note", None)
    return tuple([n.text for n in notes if n.text]) if notes else ()


def _cc_texts(concepts: Iterable[Any]) -> list[str]:
    out: list[str] = []
    for cc in concepts:
        if cc is None:
            continue
        if cc.text:
            out.append(cc.text)
        out += [c.display for c in cc.coding or () if c.display]
    return out


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
        if len(concepts) == 1 and concepts[0] is not None:
            return self.one(concepts[0])
        given = tuple([cc for cc in concepts if cc is not None])
        if len(given) == 1:
            return self.one(given[0])
        try:
            found = self.memo.get(given)
        except TypeError:  # unhashable concepts: keyed by their elements instead
            return self._lookup(tuple(map(_key, given)), given)
        return found if found is not None else self._remember(given, given)

    def one(self, cc: Any) -> Concept:
        # The hot path: one CodeableConcept per Observation code and component. A hashable one
        # (the read model's are frozen values) is its own memo key: hashing it runs in C, where
        # building a key of its elements took most of the normaliser's time.
        try:
            found = self.memo.get(cc)
        except TypeError:
            return self._lookup((_key(cc),), (cc,))
        return found if found is not None else self._remember(cc, (cc,))

    def _lookup(self, key: Any, concepts: tuple[Any, ...]) -> Concept:
        found = self.memo.get(key)
        return found if found is not None else self._remember(key, concepts)

    def _remember(self, key: Any, concepts: tuple[Any, ...]) -> Concept:
        found = self._concept(concepts)
        if len(self.memo) >= _MEMO_LIMIT:
            self.memo.clear()
        self.memo[key] = found
        return found

    def _concept(self, concepts: tuple[Any, ...]) -> Concept:
        codes: set[tuple[str, str]] = set()
        texts: list[str] = []
        free: set[str] = set()
        for text, codings in map(_key, concepts):
            if text:
                texts.append(text)
                # code.text that merely repeats a coding's display is not free text.
                if normal(text) not in {normal(d) for _, _, d in codings if d}:
                    free.add(text)
            for system_uri, code, display in codings:
                if display:
                    texts.append(display)
                if code:
                    system = self.systems.get(system_uri or "", system_uri or "")
                    code = code.strip()
                    codes.add((system, icd_key(code) if system == "icd10cm" else code))
        loinc = frozenset(code for system, code in codes if system == "loinc")
        return Concept(frozenset(codes), tuple(dict.fromkeys(texts)), loinc, frozenset(free))

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
        kind = resource.get_resource_type()
        supply: float | None = None
        repeats: int | None = None
        intent: str | None = None
        period_end: datetime | None = None
        if kind == "MedicationStatement":
            period = resource.effectivePeriod
            period_end = to_datetime(period.end, end=True) if period is not None else None
            start = to_datetime(resource.effectiveDateTime) or (
                to_datetime(period.start) if period is not None else None)
            asserted = to_datetime(resource.dateAsserted)
            recorded = asserted or start
            known_from = _latest(asserted, start)
            dosages = resource.dosage or ()
            reasons = resource.reasonCode or ()
        elif kind == "MedicationRequest":
            start = recorded = known_from = to_datetime(resource.authoredOn)
            intent = resource.intent
            request = resource.dispenseRequest
            if request is not None:
                supply = _days(request.expectedSupplyDuration)
                repeats = request.numberOfRepeatsAllowed
            dosages = resource.dosageInstruction or ()
            reasons = resource.reasonCode or ()
        else:  # MedicationDispense
            start = to_datetime(resource.whenHandedOver) or to_datetime(resource.whenPrepared)
            recorded = known_from = start
            supply = _days(resource.daysSupply)
            dosages = resource.dosageInstruction or ()
            reasons = ()
        as_needed = False
        context: list[str] = []
        if dosages:
            as_needed = any(d.asNeededBoolean or d.asNeededCodeableConcept is not None
                            for d in dosages)
            context += [d.text for d in dosages if d.text]
            context += _cc_texts(d.route for d in dosages)
        if reasons:
            context += _cc_texts(reasons)
        return MedicationFact(
            ref, concept, resource.status, period_end, recorded, medication_ref, unresolved,
            kind=kind, intent=intent, start=start, known_from=known_from, supply_days=supply,
            repeats=repeats, as_needed=as_needed, context=tuple(context),
            notes=_notes(resource),
        )

    # Observations -----------------------------------------------------------------------

    @staticmethod
    def quantity(q: Any) -> Quantity | None:
        if q is None or q.value is None:
            return None
        value, unit = q.value, q.code or q.unit
        try:  # readings repeat (the same few pressures in mm[Hg]): share the value objects
            found = _QUANTITIES.get((value, unit))
        except TypeError:
            found = None
        if found is None or not value:  # (0.0 and -0.0 are equal keys, but print apart)
            found = Quantity(float(value), str(unit) if unit else None)
            if len(_QUANTITIES) >= _MEMO_LIMIT:
                _QUANTITIES.clear()
            with contextlib.suppress(TypeError):
                _QUANTITIES[value, unit] = found
        return found

    def observation_fact(self, obs: Any, ref: str) -> ObservationFact:
        # The hot path (most records are Observations): absent elements are not parsed at all.
        effective = to_datetime(obs.effectiveDateTime)
        if effective is None:
            effective = to_datetime(obs.effectiveInstant)
            period = obs.effectivePeriod
            if effective is None and period is not None:
                effective = to_datetime(period.end or period.start)
        one, quantity = self.one, self.quantity
        components = tuple([(one(c.code), quantity(c.valueQuantity))
                            for c in obs.component or ()])
        answer = one(obs.valueCodeableConcept) if obs.valueCodeableConcept else None
        known_from = effective
        if obs.issued is not None:  # (Synthea writes it on every Observation)
            issued = to_datetime(obs.issued)
            if issued is not None and (known_from is None or issued > known_from):
                known_from = issued
        return ObservationFact(
            ref, one(obs.code), obs.status, effective, quantity(obs.valueQuantity), answer,
            components, known_from,
        )

    # Conditions -------------------------------------------------------------------------

    def condition_fact(self, resource: Any, ref: str) -> ConditionFact:
        recorded = to_datetime(resource.recordedDate)
        onset = to_datetime(resource.onsetDateTime) or (
            to_datetime(resource.onsetPeriod.start) if resource.onsetPeriod is not None else None)
        abated_at = to_datetime(resource.abatementDateTime) or (
            to_datetime(resource.abatementPeriod.start or resource.abatementPeriod.end)
            if resource.abatementPeriod is not None else None)
        abated = (abated_at is not None
                  or getattr(resource, "abatementAge", None) is not None
                  or getattr(resource, "abatementRange", None) is not None
                  or getattr(resource, "abatementString", None) is not None)
        return ConditionFact(
            ref, self.concept(resource.code),
            self.status(resource.clinicalStatus), self.status(resource.verificationStatus),
            recorded or onset, onset, _latest(onset, recorded), abated_at, abated,
            _notes(resource),
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
            if kind == "Observation":  # most records: tested first
                observations.append(self.observation_fact(resource, ref))
            elif kind == "Condition":
                conditions.append(self.condition_fact(resource, ref))
            elif kind in ("MedicationStatement", "MedicationRequest", "MedicationDispense"):
                medications.append(self.medication_fact(resource, ref))
            elif kind == "AllergyIntolerance":
                substances = [r.substance for r in resource.reaction or () if r.substance]
                recorded = to_datetime(resource.recordedDate)
                onset = to_datetime(resource.onsetDateTime) or (
                    to_datetime(resource.onsetPeriod.start)
                    if resource.onsetPeriod is not None else None)
                allergies.append(AllergyFact(
                    ref, self.concept(resource.code, *substances),
                    self.status(resource.clinicalStatus), self.status(resource.verificationStatus),
                    recorded or onset, _latest(recorded, onset), _notes(resource),
                ))
        patient = self.raw.patient
        return PatientFacts(
            patient=f"Patient/{self.raw.patient_id}",
            birth_date=_to_date(patient.birthDate) if patient is not None else None,
            conditions=tuple(conditions),
            medications=tuple(medications),
            allergies=tuple(allergies),
            observations=tuple(observations),
            problems=tuple(_unique(self.problems)),
            not_offered=tuple(dict.fromkeys(self.raw.not_offered)),
        )


def _unique(problems: Iterable[ReadProblem]) -> list[ReadProblem]:
    return list(dict.fromkeys(problems))


# The same few codings (LOINC vitals, common drugs) recur in every record and every patient, so
# concepts are shared; the bound keeps a long-running process from growing with free text.
_MEMO_LIMIT = 20_000
_MEMO: dict[Any, Concept] = {}
_QUANTITIES: dict[tuple[Any, Any], Quantity] = {}


def normalise(raw: RawPatientData, terminology: Terminology) -> PatientFacts:
    """Map one patient's parsed resources to plain facts (same input, same output)."""
    return _Normaliser(raw, terminology, _MEMO).run()
