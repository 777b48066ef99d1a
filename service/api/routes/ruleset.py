"""``GET /api/v1/ruleset``: the rules in force, each with its source and its codes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.api.deps import AppSettings, RequireScreen
from service.api.examples import json_example
from service.config import Settings
from service.screening.ruleset import InteractionClass, Ruleset, SimpleRule, load_ruleset
from service.screening.schema import PRODUCTS

__all__ = ["RulesetOut", "describe_ruleset", "router"]

router = APIRouter(prefix="/api/v1", tags=["api"])

RuleKind = Literal["contraindication", "precaution", "interaction", "missing-data", "info"]


class CodeOut(BaseModel):
    code: str
    display: str | None = None
    verify: bool = Field(False, description="not confirmed against a release file")


class CodesOut(BaseModel):
    icd10cm: list[str] = Field(default_factory=list, description="prefixes or category ranges")
    icd10cm_verify: list[str] = Field(default_factory=list)
    snomed: list[CodeOut] = Field(default_factory=list)
    rxnorm: list[CodeOut] = Field(default_factory=list)
    atc: list[str] = Field(default_factory=list, description="prefixes")
    names: list[str] = Field(default_factory=list, description="whole words, any case")


class RuleOut(BaseModel):
    id: str
    kind: RuleKind
    title: str
    source: str
    detail: str
    products: list[Literal["ketamine", "esketamine"]] = Field(
        default_factory=lambda: list(PRODUCTS))
    scope: Literal["history", "state"] | None = None
    codes: CodesOut = Field(default_factory=CodesOut)
    thresholds: dict[str, float] | None = None


class BloodPressureOut(BaseModel):
    window_days: int
    systolic_uncontrolled: float
    diastolic_uncontrolled: float
    systolic_elevated: float
    diastolic_elevated: float
    accepted_units: list[str]


class RulesetOut(BaseModel):
    version: str
    sources: dict[str, str]
    rules: list[RuleOut]
    interactions: list[InteractionClass] = Field(description="as in fhir_maps, unchanged")
    blood_pressure: BloodPressureOut = Field(description="as configured for this deployment")


def _simple(rule: SimpleRule, **extra: object) -> RuleOut:
    return RuleOut.model_validate({"id": rule.id, "kind": rule.kind, "title": rule.title,
                                   "source": rule.source, "detail": rule.detail,
                                   "products": rule.products, **extra})


def describe_ruleset(ruleset: Ruleset, settings: Settings) -> RulesetOut:
    rules = []
    for r in ruleset.conditions:
        rules.append(_simple(r, scope=r.scope, codes=CodesOut(
            icd10cm=r.icd10cm, icd10cm_verify=r.icd10cm_verify,
            snomed=[CodeOut.model_validate(e.model_dump()) for e in r.snomed], names=r.names)))
        if r.stale is not None:
            rules.append(_simple(r.stale, scope=r.scope,
                                 thresholds={"after_days": r.stale.after_days}))
    allergy = ruleset.allergy
    rules.append(_simple(allergy, codes=CodesOut(
        rxnorm=[CodeOut.model_validate(e.model_dump()) for e in allergy.rxnorm],
        atc=allergy.atc, names=allergy.names)))
    bp = ruleset.blood_pressure
    rules.append(_simple(bp.uncontrolled, thresholds={
        "systolic_above": settings.bp_systolic_uncontrolled,
        "diastolic_above": settings.bp_diastolic_uncontrolled}))
    rules.append(_simple(bp.elevated, thresholds={
        "systolic_above": settings.bp_systolic_elevated,
        "diastolic_above": settings.bp_diastolic_elevated}))
    rules += [_simple(bp.missing), _simple(bp.unusable)]
    rules.append(_simple(ruleset.age, thresholds={"under_years": ruleset.age.under_years}))
    rules += [_simple(b, thresholds={"min_years": b.min_years,
                                     **({"max_years": b.max_years} if b.max_years else {})})
              for b in ruleset.age_bands]
    rules += [_simple(ruleset.age.unknown), _simple(ruleset.weight)]
    rules += [_simple(r, thresholds={"window_days": r.window_days} if r.window_days else None)
              for r in ruleset.observation_required]
    rules.append(_simple(ruleset.unreadable))
    if ruleset.not_offered is not None:
        rules += [_simple(ruleset.not_offered.missing), _simple(ruleset.not_offered.partial)]
    return RulesetOut(
        version=ruleset.version,
        sources=dict(ruleset.sources),
        rules=rules,
        interactions=list(ruleset.interactions),
        blood_pressure=BloodPressureOut(
            window_days=settings.bp_window_days,
            systolic_uncontrolled=settings.bp_systolic_uncontrolled,
            diastolic_uncontrolled=settings.bp_diastolic_uncontrolled,
            systolic_elevated=settings.bp_systolic_elevated,
            diastolic_elevated=settings.bp_diastolic_elevated,
            accepted_units=bp.accepted_units,
        ),
    )


_EXAMPLE = {"version": "v2", "sources": {"SPRAVATO-PI": "SPRAVATO prescribing information"},
            "rules": [{"id": "ci-aneurysm", "kind": "contraindication",
                       "title": "Aneurysmal vascular disease", "source": "SPRAVATO-PI 4",
                       "detail": "Aneurysmal vascular disease or arteriovenous malformation",
                       "products": ["ketamine", "esketamine"], "scope": "history",
                       "codes": {"icd10cm": ["I71", "I72"]}}],
            "interactions": [], "blood_pressure": {
                "window_days": 30, "systolic_uncontrolled": 180, "diastolic_uncontrolled": 100,
                "systolic_elevated": 140, "diastolic_elevated": 90, "accepted_units": ["mm[Hg]"]}}


@router.get("/ruleset", summary="The rules in force, with sources and codes",
            response_model=RulesetOut, response_model_exclude_none=True,
            operation_id="getRuleset", responses={200: json_example(_EXAMPLE)})
async def get_ruleset(caller: RequireScreen, settings: AppSettings) -> RulesetOut:
    """Every rule of the ruleset in force (KETAMINE_RULESET) with its kind, its source in the
    product labels, the codes that make it fire, and the blood-pressure thresholds this
    deployment uses: what a clinical reviewer checks the screen against."""
    ruleset, _ = load_ruleset(settings.ruleset)
    return describe_ruleset(ruleset, settings)
