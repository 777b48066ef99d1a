"""View models for the clinician's pages: the verdict per product, eligibility with its trials
(service.render.timeline), the findings grouped for reading and marked with their products, the
patient banner and the EHR's SMART style. Nothing here does I/O. (The session form is
service.render.session_form.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from service.render.texts import (
    ELIGIBILITY,
    KINDS,
    PRODUCT_NAMES,
    VERDICTS,
    EligibilityText,
    VerdictText,
)
from service.render.timeline import Timeline, TrialRow, trial_rows, trials_timeline
from service.screening.model import Finding, ScreeningResult

__all__ = [
    "Banner",
    "EligibilityView",
    "FindingGroup",
    "FindingView",
    "ProductVerdict",
    "banner",
    "eligibility_view",
    "group_findings",
    "ordered_first",
    "product_verdicts",
    "smart_style_css",
]


@dataclass(frozen=True, slots=True)
class RecordView:
    ref: str
    label: str
    when: str


@dataclass(frozen=True, slots=True)
class FindingView:
    summary: str
    rule: str
    severity: str
    source: str
    detail: str
    records: tuple[RecordView, ...]
    products: tuple[tuple[str, str], ...] = ()
    """(product, how the page names it) for each product the finding concerns."""
    only: bool = False
    """It concerns fewer products than were asked about."""


@dataclass(frozen=True, slots=True)
class ProductVerdict:
    product: str
    name: str
    verdict: VerdictText
    ordered: bool = False
    """The product of the order in the launch's context (shown first, highlighted)."""

    @property
    def advice(self) -> str:
        return self.verdict.text.format(product=self.name)


@dataclass(frozen=True, slots=True)
class EligibilityView:
    """Eligibility beside the verdicts (REFERENCE, Indication): never mixed with safety."""

    text: EligibilityText
    summary: str
    diagnosis: tuple[str, ...]
    rows: tuple[TrialRow, ...]
    classes: int
    missing: tuple[str, ...]
    source: str
    min_days: int
    episode_start: str
    timeline: Timeline | None


@dataclass(slots=True)
class FindingGroup:
    kind: str
    heading: str
    detail_label: str
    findings: list[FindingView] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Banner:
    name: str
    birth_date: str
    gender: str
    patient_id: str
    mrn: str = "not recorded"
    """Patient.identifier whose type is v2-0203 ``MR`` (medical record number)."""
    age: str = "not recorded"
    """Whole years at ``today`` (from birthDate)."""


def _finding(finding: Finding, asked: tuple[str, ...]) -> FindingView:
    records = tuple(
        RecordView(ref, label, when.date().isoformat() if when else "date not recorded")
        for ref, label, when in finding.records)
    if not records:
        records = tuple(RecordView(ref, "", "") for ref in finding.evidence)
    products = tuple((p, PRODUCT_NAMES[p]) for p in finding.products)
    return FindingView(finding.summary, finding.rule, finding.severity, finding.source,
                       finding.detail, records, products, len(products) < len(asked))


def product_verdicts(result: ScreeningResult) -> list[ProductVerdict]:
    """The verdict for each product asked, in the engine's order (the page shows them side by
    side)."""
    return [ProductVerdict(p, PRODUCT_NAMES[p], VERDICTS[result.verdicts[p].label])
            for p in result.products if p in result.verdicts]


def ordered_first(verdicts: list[ProductVerdict],
                  ordered: tuple[str, ...]) -> list[ProductVerdict]:
    """``verdicts`` with the ordered product's first and marked, when the order names exactly one
    product; unchanged otherwise (an order for both, or neither clearly, favours neither)."""
    if len(ordered) != 1:
        return verdicts
    marked = [replace(v, ordered=True) if v.product == ordered[0] else v for v in verdicts]
    return sorted(marked, key=lambda v: not v.ordered)


def eligibility_view(result: ScreeningResult) -> EligibilityView | None:
    e = result.eligibility
    if e is None:
        return None
    min_days = int(result.thresholds.get("trial_min_days", 0))
    return EligibilityView(
        ELIGIBILITY[e.status], e.summary, e.diagnosis, tuple(trial_rows(e)), e.classes,
        e.missing, e.source, min_days, e.episode_start.isoformat() if e.episode_start else "",
        trials_timeline(e, result.as_of.date(), min_days))


def group_findings(result: ScreeningResult) -> list[FindingGroup]:
    """Findings grouped by kind (the text report's order), each marked with the product(s) it
    concerns; empty groups are left out."""
    groups: list[FindingGroup] = []
    asked = tuple(result.products)
    for kind in KINDS:
        found = [_finding(f, asked) for f in result.findings if f.kind == kind.kind]
        if found:
            groups.append(FindingGroup(kind.kind, kind.heading, kind.detail_label, found))
    return groups


V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _mrn(patient: Mapping[str, Any]) -> str | None:
    """The medical record number: the identifier typed v2-0203 MR (the ``usual`` one first)."""
    found = [i for i in patient.get("identifier") or [] if isinstance(i, dict) and i.get("value")
             and any(c.get("system") == V2_0203 and c.get("code") == "MR"
                     for c in (i.get("type") or {}).get("coding") or [])]
    found.sort(key=lambda i: i.get("use") != "usual")
    return str(found[0]["value"]) if found else None


def _age(birth: object, today: date) -> str | None:
    if not isinstance(birth, str):
        return None
    try:
        born = date.fromisoformat(birth[:10]) if len(birth) >= 10 else None
    except ValueError:
        return None
    if born is None or born > today:
        return None
    return str(today.year - born.year - ((today.month, today.day) < (born.month, born.day)))


def banner(patient: Mapping[str, Any] | None, patient_id: str,
           today: date | None = None) -> Banner:
    """Name, birth date, age, gender and MRN from a Patient resource (JSON), for the patient
    banner (https://hl7.org/fhir/R4/patient.html; identifier type from v2-0203)."""
    patient = patient or {}
    names = patient.get("name") or []
    name: Mapping[str, Any] = names[0] if isinstance(names, list) and names else {}
    official = [n for n in names if isinstance(n, dict) and n.get("use") == "official"]
    name = official[0] if official else name
    given = " ".join(str(g) for g in name.get("given") or [])
    text = str(name.get("text") or f"{given} {name.get('family', '')}".strip() or "(no name)")
    return Banner(text, str(patient.get("birthDate") or "not recorded"),
                  str(patient.get("gender") or "not recorded"), patient_id,
                  _mrn(patient) or "not recorded",
                  _age(patient.get("birthDate"), today or datetime.now(UTC).date())
                  or "not recorded")


# -- The EHR's SMART style ------------------------------------------------------------------------

_COLOUR = re.compile(r"^(#[0-9A-Fa-f]{3,8}|rgba?\([0-9.,%\s]{5,40}\))$")
_FONT = re.compile(r"^[A-Za-z0-9 ,'\"-]{1,120}$")
_DIM = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,2})?(px|em|rem)$")
_STYLE_KEYS = {
    "color_background": ("--smart-background", _COLOUR),
    "color_text": ("--smart-text", _COLOUR),
    "color_highlight": ("--smart-highlight", _COLOUR),
    "font_family_body": ("--smart-font", _FONT),
    "font_family_heading": ("--smart-font-heading", _FONT),
    "dim_border_radius": ("--smart-radius", _DIM),
}


def smart_style_css(style: object) -> str:
    """The SMART style JSON's known keys as CSS custom properties; anything odd is dropped.

    https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#styling
    """
    if not isinstance(style, dict):
        return ""
    lines = [f"  {prop}: {style[key]};" for key, (prop, pattern) in _STYLE_KEYS.items()
             if isinstance(style.get(key), str) and pattern.match(style[key])]
    return ":root {\n" + "\n".join(lines) + "\n}\n" if lines else ""
