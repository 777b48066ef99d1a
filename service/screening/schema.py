"""The schema of the rule maps in ``fhir_maps/`` (pydantic models, validated at start-up).

One schema reads every ruleset version: fields that ruleset v2 added (products, value sets,
``except`` lists, recency and staleness, age bands, eligibility) have defaults that leave a v1
file meaning what it meant. Field names follow the clinical reference's vocabulary.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "PRODUCTS",
    "AgeBand",
    "AgeRule",
    "AllergyRule",
    "Antidepressant",
    "BloodPressureRules",
    "CodeEntry",
    "CodedDefinition",
    "ConditionRule",
    "EligibilityRules",
    "InteractionClass",
    "Member",
    "Negation",
    "NotOffered",
    "Product",
    "RequiredObservation",
    "RescueDevices",
    "Ruleset",
    "SimpleRule",
    "Terminology",
    "ValueSetRef",
    "ValueSetUse",
]

Product = Literal["ketamine", "esketamine"]
PRODUCTS: tuple[Product, ...] = ("ketamine", "esketamine")
Kind = Literal["contraindication", "precaution", "interaction", "missing-data", "info"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeEntry(_Strict):
    code: str
    display: str
    verify: bool = False


def _icd_entries(codes: list[str]) -> list[str]:
    """ICD-10-CM entries: a prefix (``I71``), a category range (``I20-I25``), or a pattern in
    which a lower-case ``x`` stands for any one character (``E05.x1``)."""
    for code in codes:
        parts = code.split("-")
        if len(parts) > 2 or any(len(p.replace(".", "")) < 3 for p in parts):
            raise ValueError(f"ICD-10-CM entry {code!r} is neither a prefix nor a range")
        if len(parts) == 2 and (len(parts[0]) != 3 or len(parts[1]) != 3):
            raise ValueError(f"ICD-10-CM range {code!r} must join two 3-character categories")
    return codes


class SimpleRule(_Strict):
    id: str
    kind: Kind
    title: str
    source: str
    detail: str
    products: list[Product] = Field(default_factory=lambda: list(PRODUCTS))


class NotOffered(_Strict):
    """Record types the FHIR server does not offer (its CapabilityStatement leaves them out)."""

    missing: SimpleRule
    """A type whose data nothing else carries: the rules that read it cannot be applied."""
    partial: SimpleRule
    """A type whose data another offered type also carries (``covered_by``): read from that."""
    covered_by: dict[str, list[str]] = Field(default_factory=dict)
    """Type -> the types that carry the same data (MedicationStatement -> MedicationRequest)."""


class CodedDefinition(_Strict):
    """Codes and names that define a condition (shared by rules and eligibility)."""

    icd10cm: list[str] = Field(default_factory=list)
    icd10cm_verify: list[str] = Field(default_factory=list)
    except_icd10cm: list[str] = Field(default_factory=list)
    """Codes that never match, by code or by name (an ``except``, or another rule's code)."""
    except_snomed: list[str] = Field(default_factory=list)
    snomed: list[CodeEntry] = Field(default_factory=list)
    valuesets: list[str] = Field(default_factory=list)
    """Ids of ``Ruleset.valuesets`` whose members count as codes of this definition."""
    names: list[str] = Field(default_factory=list)
    exclude_phrases: list[str] = Field(default_factory=list)
    """Phrases that contain a name but mean something else (removed before matching)."""
    veto_phrases: list[str] = Field(default_factory=list)
    """A text holding one of these matches none of the names."""

    @field_validator("icd10cm", "except_icd10cm")
    @classmethod
    def _icd_shape(cls, codes: list[str]) -> list[str]:
        return _icd_entries(codes)


class Recency(CodedDefinition):
    days: int = Field(gt=0)
    source: str

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.days)


class Staleness(SimpleRule):
    after_days: int = Field(gt=0)

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.after_days)


class ConditionRule(SimpleRule, CodedDefinition):
    scope: Literal["history", "state"]
    recent: Recency | None = None
    """Matching records whose onset lies inside ``days`` raise the severity to high."""
    stale: Staleness | None = None
    """State records whose onset is older than ``after_days``, with no abatement, raise this
    information rule instead of the rule itself."""


class AllergyRule(SimpleRule):
    rxnorm: list[CodeEntry]
    atc: list[str]
    names: list[str]
    order_products: dict[str, Product] = Field(default_factory=dict)
    """One of this rule's RxNorm codes, ATC codes or names -> the product it names: which
    product a CDS Hooks order is for (REFERENCE, Two products, one screen). An identifier not
    listed names no product, and an order it alone identifies is screened for both."""

    @model_validator(mode="after")
    def _products_of_known_identifiers(self) -> AllergyRule:
        known = {e.code for e in self.rxnorm} | set(self.atc) | {n.lower() for n in self.names}
        unknown = [k for k in self.order_products if k not in known and k.lower() not in known]
        if unknown:
            raise ValueError(f"order_products names identifiers the rule does not list: "
                             f"{', '.join(unknown)}")
        return self


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
    guide_65_systolic_above: float = 150
    guide_65_diastolic_above: float = 90


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

    def blood_pressure(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.bp_panel, *self.systolic, *self.diastolic]))

    def others(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.heart_rate, *self.spo2, *self.body_weight,
                                    *self.pregnancy_status, *self.hcg, *self.phq9]))


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


class AgeBand(SimpleRule):
    min_years: int
    max_years: int | None = None


class RequiredObservation(SimpleRule):
    codes: list[str]
    window_days: int | None = None


class Member(_Strict):
    name: str
    rxnorm: str | None = None
    rxnorm_verify: bool = False
    brands: list[str] = Field(default_factory=list)
    not_with: list[str] = Field(default_factory=list)
    """A record whose text holds one of these phrases is not this member."""


class ValueSetUse(_Strict):
    id: str
    only: list[str] = Field(default_factory=list)
    """Keep only members whose display names one of these ingredients."""
    without: list[str] = Field(default_factory=list)
    """Drop members whose display names one of these ingredients."""


class InteractionClass(_Strict):
    id: str
    name: str
    severity: Literal["major", "moderate", "minor"]
    effect: str
    management: str
    source: str
    atc: list[str]
    members: list[Member]
    atc_except: list[str] = Field(default_factory=list)
    valuesets: list[ValueSetUse] = Field(default_factory=list)
    products: list[Product] = Field(default_factory=lambda: list(PRODUCTS))
    mentions: str | None = None
    """A condition rule whose finding, when present, the interaction's text names."""


class ValueSetRef(_Strict):
    id: str
    file: str
    url: str


class RescueDevices(_Strict):
    source: str
    ingredients: list[str]
    atc: list[str]
    rxnorm: list[str]
    phrases: list[str]


class Antidepressant(_Strict):
    name: str
    rxnorm: str | None = None
    rxnorm_verify: bool = False
    atc: list[str] = Field(default_factory=list)
    brands: list[str] = Field(default_factory=list)
    combination_of: list[str] = Field(default_factory=list)
    """A product of these ingredients together (e.g. dextromethorphan-bupropion)."""
    not_with: list[str] = Field(default_factory=list)
    only_with: list[str] = Field(default_factory=list)
    not_with_doses_mg: list[float] = Field(default_factory=list)


class CodedSection(CodedDefinition):
    source: str


class EligibilityRules(_Strict):
    source: str
    trial_min_days: int = Field(gt=0)
    min_trials: int = Field(gt=0)
    lookback_days: int = Field(gt=0)
    diagnosis: CodedSection
    suicidality: CodedSection
    atc: list[str]
    atc_except: list[str] = Field(default_factory=list)
    atc_classes: dict[str, str]
    classes: dict[str, list[Antidepressant]]
    not_oral: list[str] = Field(default_factory=list)
    """Phrases of a product that is not taken by mouth (the MDSI pathway needs an oral one)."""


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
    not_offered: NotOffered | None = None
    """Without it (ruleset v1), a type not offered is an unreadable record."""
    interactions: list[InteractionClass]
    cite_by_title: bool = False
    """Sources must name label sections by title, never by number (ruleset v2)."""
    products: list[Product] = Field(default_factory=lambda: list(PRODUCTS))
    valuesets: list[ValueSetRef] = Field(default_factory=list)
    age_bands: list[AgeBand] = Field(default_factory=list)
    observation_required: list[RequiredObservation] = Field(default_factory=list)
    rescue: RescueDevices | None = None
    eligibility: EligibilityRules | None = None

    def simple_rules(self) -> list[SimpleRule]:
        """Every rule that yields a finding, except interaction classes."""
        bp = self.blood_pressure
        rules: list[SimpleRule] = []
        for rule in self.conditions:
            rules.append(rule)
            if rule.stale is not None:
                rules.append(rule.stale)
        rules += [self.allergy, bp.uncontrolled, bp.elevated, bp.missing, bp.unusable, self.age,
                  self.age.unknown, *self.age_bands, self.weight, *self.observation_required,
                  self.unreadable]
        if self.not_offered is not None:
            rules += [self.not_offered.missing, self.not_offered.partial]
        return rules

    def cited(self) -> list[tuple[str, str]]:
        """(rule id, source) of every rule that yields findings (``GET /api/v1/ruleset``)."""
        pairs = [(r.id, r.source) for r in self.simple_rules()]
        return pairs + [(c.id, c.source) for c in self.interactions]

    def sourced(self) -> list[tuple[str, str]]:
        """``cited()`` and every other entry that must cite a source (recency, eligibility)."""
        pairs = self.cited()
        if self.eligibility is not None:
            e = self.eligibility
            pairs += [("eligibility", e.source), ("eligibility.diagnosis", e.diagnosis.source),
                      ("eligibility.suicidality", e.suicidality.source)]
        pairs += [(f"{r.id}.recent", r.recent.source) for r in self.conditions
                  if r.recent is not None]
        return pairs

    def products_of(self) -> dict[str, tuple[Product, ...]]:
        """Rule id -> the products it applies to."""
        out = {r.id: tuple(r.products) for r in self.simple_rules()}
        out.update({c.id: tuple(c.products) for c in self.interactions})
        return out


# -- terminology.yaml ---------------------------------------------------------------------------


class FamilyHistory(_Strict):
    source: str
    icd10cm_ranges: list[str]
    snomed: list[CodeEntry]
    cues: list[str]


class Negation(_Strict):
    source: str
    cues: list[str]
    """Cues before a name in free text (NegEx-style pre-negation)."""
    local_cues: list[str]
    """Cues that stop a name match just after them in any text, codings' displays included."""
    post_cues: list[str] = Field(default_factory=list)
    """Cues after a name in free text ("ruled out")."""
    clause_breaks: list[str] = Field(default_factory=list)
    """Words that end a negation's scope ("but", "however")."""
    window_words: int = 6
    local_window_words: int = 4


class Statuses(_Strict):
    source: str
    condition_verification_excluded: list[str]
    condition_state_clinical: list[str]
    medication_statement: list[str]
    medication_request: list[str]
    allergy_verification_excluded: list[str]
    allergy_clinical_excluded: list[str]
    observation: list[str]
    medication_request_intent_excluded: list[str] = Field(default_factory=list)
    medication_active: list[str] = Field(default_factory=lambda: ["active", "on-hold"])
    """Statuses of a record that, with a start and no end, runs to the evaluation time."""
    eligibility_excluded: list[str] = Field(default_factory=list)
    """Medication statuses that are no exposure at all (eligibility)."""


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
