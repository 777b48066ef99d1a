"""What a deployment configures: thresholds and windows, and the products asked about.

The defaults are the ruleset's (``fhir_maps/ruleset-*.yaml``); a deployment overrides them in its
settings. Every text that quotes a threshold is filled in from the policy in force
(:meth:`Policy.fill`), and the result names the thresholds it used (:meth:`Policy.thresholds`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from service.screening.ruleset import ChoiceError, Ruleset
from service.screening.schema import PRODUCTS, Product

__all__ = [
    "PRODUCT_CHOICES",
    "BloodPressurePolicy",
    "Policy",
    "fill",
    "num",
    "products_asked",
    "thresholds",
]

PRODUCT_CHOICES = ("ketamine", "esketamine", "both")


def products_asked(asked: str | Iterable[str] | None) -> tuple[Product, ...]:
    """``ketamine``, ``esketamine``, ``both`` (the default) or a list of products, in order."""
    if asked is None or asked == "both":
        return PRODUCTS
    wanted = [asked] if isinstance(asked, str) else list(asked)
    for p in wanted:
        if p not in PRODUCT_CHOICES:
            raise ChoiceError(f"unknown product {p!r}; allowed: {', '.join(PRODUCT_CHOICES)}")
    if "both" in wanted:
        return PRODUCTS
    if not wanted:
        raise ChoiceError(f"no product asked; allowed: {', '.join(PRODUCT_CHOICES)}")
    return tuple(p for p in PRODUCTS if p in wanted)


@dataclass(frozen=True, slots=True)
class BloodPressurePolicy:
    """Windows and thresholds; the reference makes them configurable (defaults from the map)."""

    window_days: int
    systolic_uncontrolled: float
    diastolic_uncontrolled: float
    systolic_elevated: float
    diastolic_elevated: float
    systolic_guide_65: float = 150
    diastolic_guide_65: float = 90
    eligibility_lookback_days: int | None = None
    """Look-back for trials when the depression diagnosis has no date (default: the ruleset's)."""

    @classmethod
    def of(cls, ruleset: Ruleset) -> BloodPressurePolicy:
        bp = ruleset.blood_pressure
        return cls(bp.window_days, bp.uncontrolled.systolic_above,
                   bp.uncontrolled.diastolic_above, bp.elevated.systolic_above,
                   bp.elevated.diastolic_above, bp.guide_65_systolic_above,
                   bp.guide_65_diastolic_above)


Policy = BloodPressurePolicy


def num(value: float | None) -> str:
    if value is None:
        return "?"
    return str(int(value)) if value == int(value) else f"{value:g}"


class _Slots(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(text: str, policy: BloodPressurePolicy, ruleset: Ruleset) -> str:
    """``text`` with {elevated}, {uncontrolled}, {guide_65}, {window_days}, ... filled in."""
    if "{" not in text:
        return text
    p = policy
    slots = _Slots(
        elevated=f"{num(p.systolic_elevated)}/{num(p.diastolic_elevated)}",
        uncontrolled=f"{num(p.systolic_uncontrolled)}/{num(p.diastolic_uncontrolled)}",
        guide_65=f"{num(p.systolic_guide_65)}/{num(p.diastolic_guide_65)}",
        window_days=str(p.window_days),
    )
    for rule in ruleset.observation_required:
        if rule.window_days is not None:
            slots["phq9_window_days" if "44261-6" in rule.codes else f"{rule.id}_days"] = str(
                rule.window_days)
    return text.format_map(slots)


def thresholds(policy: BloodPressurePolicy, ruleset: Ruleset) -> dict[str, float]:
    """The thresholds and windows a result was computed with (written with it)."""
    p = policy
    out: dict[str, float] = {
        "bp_window_days": p.window_days,
        "bp_systolic_uncontrolled": p.systolic_uncontrolled,
        "bp_diastolic_uncontrolled": p.diastolic_uncontrolled,
        "bp_systolic_elevated": p.systolic_elevated,
        "bp_diastolic_elevated": p.diastolic_elevated,
        "bp_systolic_guide_65": p.systolic_guide_65,
        "bp_diastolic_guide_65": p.diastolic_guide_65,
    }
    e = ruleset.eligibility
    if e is not None:
        out["trial_min_days"] = e.trial_min_days
        out["eligibility_lookback_days"] = p.eligibility_lookback_days or e.lookback_days
    return out
