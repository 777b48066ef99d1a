"""Loads and validates the rule maps in ``fhir_maps/`` (YAML), once, at start-up.

The schema below is the contract for the data files: a file that does not fit it stops start-up
with a :class:`~service.errors.MapError` naming the file and the field. Rules cite their sources by
the short names declared in the same file; an unknown short name is an error too, so a rule with
no source cannot ship.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from service.errors import MapError

__all__ = [
    "AllergyRule",
    "BloodPressureRules",
    "ConditionRule",
    "InteractionClass",
    "Ruleset",
    "Terminology",
    "load_ruleset",
]

RULESET_FILE = "ruleset-v1.yaml"
TERMINOLOGY_FILE = "terminology.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeEntry(_Strict):
    code: str
    display: str
    verify: bool = False


class SimpleRule(_Strict):
    id: str
    kind: Literal["contraindication", "precaution", "interaction", "missing-data", "info"]
    title: str
    source: str
    detail: str


class ConditionRule(SimpleRule):
    scope: Literal["history", "state"]
    icd10cm: list[str] = Field(default_factory=list)
    icd10cm_verify: list[str] = Field(default_factory=list)
    snomed: list[CodeEntry] = Field(default_factory=list)
    names: list[str] = Field(default_factory=list)
    exclude_phrases: list[str] = Field(default_factory=list)

    @field_validator("icd10cm")
    @classmethod
    def _icd_shape(cls, codes: list[str]) -> list[str]:
        for code in codes:
            parts = code.split("-")
            if len(parts) > 2 or any(len(p.replace(".", "")) < 3 for p in parts):
                raise ValueError(f"ICD-10-CM entry {code!r} is neither a prefix nor a range")
            if len(parts) == 2 and (len(parts[0]) != 3 or len(parts[1]) != 3):
                raise ValueError(f"ICD-10-CM range {code!r} must join two 3-character categories")
        return codes


class AllergyRule(SimpleRule):
    rxnorm: list[CodeEntry]
    atc: list[str]
    names: list[str]


class Threshold(SimpleRule):
    systolic_above: float
    diastolic_above: float


class BloodPressureRules(_Strict):
    window_days: int = Field(gt=0)
    window_source: str
    uncontrolled: Threshold
    elevated: Threshold
    missing: SimpleRule
    unusable: SimpleRule
    accepted_units: list[str]


class ObservationCodes(_Strict):
    source: str
    bp_panel: list[str]
    systolic: list[str]
    diastolic: list[str]
    heart_rate: list[str]
    spo2: list[str]
    body_weight: list[str]
    pregnancy_status: list[str]
    hcg: list[str]
    phq9: list[str]


class Answer(_Strict):
    system: str
    code: str
    display: str


class PregnancyStatus(_Strict):
    rule: str
    source: str
    pregnant_answers: list[Answer]


class AgeRule(SimpleRule):
    under_years: int
    unknown: SimpleRule


class Member(_Strict):
    name: str
    rxnorm: str | None = None
    rxnorm_verify: bool = False
    brands: list[str] = Field(default_factory=list)


class InteractionClass(_Strict):
    id: str
    name: str
    severity: Literal["major", "moderate", "minor"]
    effect: str
    management: str
    source: str
    atc: list[str]
    members: list[Member]


class Ruleset(_Strict):
    version: str
    sources: dict[str, str]
    conditions: list[ConditionRule]
    allergy: AllergyRule
    blood_pressure: BloodPressureRules
    observations: ObservationCodes
    pregnancy_status: PregnancyStatus
    age: AgeRule
    weight: SimpleRule
    unreadable: SimpleRule
    interactions: list[InteractionClass]

    def cited(self) -> list[tuple[str, str]]:
        """Every (rule id, source) pair, for the source check and ``GET /api/v1/ruleset``."""
        bp = self.blood_pressure
        pairs = [(r.id, r.source) for r in self.conditions]
        pairs += [(r.id, r.source) for r in (self.allergy, bp.uncontrolled, bp.elevated,
                                             bp.missing, bp.unusable, self.age, self.age.unknown,
                                             self.weight, self.unreadable)]
        pairs += [(c.id, c.source) for c in self.interactions]
        return pairs


class FamilyHistory(_Strict):
    source: str
    icd10cm_ranges: list[str]
    snomed: list[CodeEntry]
    cues: list[str]


class Negation(_Strict):
    source: str
    cues: list[str]
    local_cues: list[str]


class Statuses(_Strict):
    source: str
    condition_verification_excluded: list[str]
    condition_state_clinical: list[str]
    medication_statement: list[str]
    medication_request: list[str]
    allergy_verification_excluded: list[str]
    allergy_clinical_excluded: list[str]
    observation: list[str]


class Systems(_Strict):
    source: str
    map: dict[str, str]


class Terminology(_Strict):
    version: str
    sources: dict[str, str]
    systems: Systems
    statuses: Statuses
    family_history: FamilyHistory
    negation: Negation


def _read(name: str) -> dict[str, Any]:
    try:
        text = resources.files("fhir_maps").joinpath(name).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise MapError(f"fhir_maps/{name}: cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise MapError(f"fhir_maps/{name}: expected a mapping at the top level")
    return data


_M = TypeVar("_M", bound=BaseModel)


def _validate(model: type[_M], name: str, data: dict[str, Any]) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise MapError(
            f"fhir_maps/{name}: {where}: {first['msg']} ({exc.error_count()} problem(s))"
        ) from exc


def _check_sources(ruleset: Ruleset) -> None:
    known = set(ruleset.sources) | {"REFERENCE"}
    for rule_id, source in ruleset.cited():
        if not source.strip():
            raise MapError(f"fhir_maps/{RULESET_FILE}: rule {rule_id} has no source")
        if not any(name in source for name in known):
            raise MapError(
                f"fhir_maps/{RULESET_FILE}: rule {rule_id} cites {source!r}, "
                "which names none of the declared sources"
            )
    ids = [rule_id for rule_id, _ in ruleset.cited()]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise MapError(f"fhir_maps/{RULESET_FILE}: duplicate rule ids {duplicates}")


@lru_cache(maxsize=1)
def load_ruleset() -> tuple[Ruleset, Terminology]:
    """Both maps, validated; cached so that every caller shares one copy."""
    ruleset = _validate(Ruleset, RULESET_FILE, _read(RULESET_FILE))
    terminology = _validate(Terminology, TERMINOLOGY_FILE, _read(TERMINOLOGY_FILE))
    _check_sources(ruleset)
    return ruleset, terminology
