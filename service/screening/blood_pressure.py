"""Blood pressure readings from panels or from paired systolic / diastolic Observations.

REFERENCE, Observations: panel 85354-9 (also 55284-4) with components 8480-6 and 8462-4 in mm[Hg];
systolic and diastolic alone are paired when taken at the same time; the latest reading in the
window decides. Readings with an unknown unit or no time are not used, and are reported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from service.screening.model import BloodPressureReading, Concept, ObservationFact, Quantity
from service.screening.ruleset import Ruleset

__all__ = ["BloodPressureScan", "scan_blood_pressure"]


@dataclass(slots=True)
class BloodPressureScan:
    readings: list[BloodPressureReading] = field(default_factory=list)
    unusable: dict[str, str] = field(default_factory=dict)
    """``Observation/id`` -> why it was not used."""

    def latest(self) -> BloodPressureReading | None:
        """The latest reading in the window; readings at the same instant merge to the worst."""
        inside = self.readings
        if not inside:
            return None
        at = max(r.at for r in inside)
        tied = [r for r in inside if r.at == at]
        systolic = [r.systolic for r in tied if r.systolic is not None]
        diastolic = [r.diastolic for r in tied if r.diastolic is not None]
        evidence = tuple(dict.fromkeys(ref for r in tied for ref in r.evidence))
        return BloodPressureReading(
            at, max(systolic) if systolic else None, max(diastolic) if diastolic else None, evidence
        )


def _has(concept: Concept, codes: frozenset[str]) -> bool:
    return not concept.loinc.isdisjoint(codes)


def scan_blood_pressure(
    observations: Iterable[ObservationFact], ruleset: Ruleset, counted: frozenset[str],
    start: datetime, end: datetime,
) -> BloodPressureScan:
    """Readings taken in [start, end], and the in-window or undated ones that cannot be used."""
    codes = ruleset.observations
    systolic_codes = frozenset(codes.systolic)
    diastolic_codes = frozenset(codes.diastolic)
    panel_codes = frozenset(codes.bp_panel)
    units = frozenset(u.lower() for u in ruleset.blood_pressure.accepted_units)
    scan = BloodPressureScan()
    # (time) -> [systolic values with refs], [diastolic values with refs] for lone readings
    lone: dict[datetime, tuple[list[tuple[float, str]], list[tuple[float, str]]]] = defaultdict(
        lambda: ([], [])
    )

    def usable(q: Quantity | None, ref: str) -> float | None:
        if q is None:
            return None
        if q.unit is None or q.unit.lower() not in units:
            scan.unusable[ref] = f"unit {q.unit or 'missing'} is not mm[Hg]"
            return None
        return q.value

    for obs in observations:
        # The time test is the cheapest, and most of a long record lies outside the window.
        if obs.effective is not None and not start <= obs.effective <= end:
            continue
        if obs.status not in counted:
            continue
        is_panel = _has(obs.concept, panel_codes)
        parts = [
            (concept, q) for concept, q in obs.components
            if _has(concept, systolic_codes) or _has(concept, diastolic_codes)
        ]
        alone_sys = _has(obs.concept, systolic_codes)
        alone_dia = _has(obs.concept, diastolic_codes)
        if not (is_panel or parts or alone_sys or alone_dia):
            continue
        if obs.effective is None:
            scan.unusable[obs.ref] = "no effective time"
            continue
        if parts:
            sys_values = [usable(q, obs.ref) for c, q in parts if _has(c, systolic_codes)]
            dia_values = [usable(q, obs.ref) for c, q in parts if _has(c, diastolic_codes)]
            systolic = next((v for v in sys_values if v is not None), None)
            diastolic = next((v for v in dia_values if v is not None), None)
            if systolic is not None or diastolic is not None:
                scan.readings.append(
                    BloodPressureReading(obs.effective, systolic, diastolic, (obs.ref,))
                )
        elif alone_sys or alone_dia:
            value = usable(obs.quantity, obs.ref)
            if value is not None:
                lone[obs.effective][0 if alone_sys else 1].append((value, obs.ref))
    for at, (systolic_list, diastolic_list) in lone.items():
        refs = tuple(ref for _, ref in (*systolic_list, *diastolic_list))
        scan.readings.append(BloodPressureReading(
            at,
            max((v for v, _ in systolic_list), default=None),
            max((v for v, _ in diastolic_list), default=None),
            refs,
        ))
    return scan
