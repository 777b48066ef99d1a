"""View models for the clinician's pages: the screening result grouped for reading, the patient
banner, and the treatment-session form (its fields, parsing and messages). Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ValidationError

from service.render.session import SessionInput, VitalsInput
from service.screening.model import Finding, ScreeningResult

__all__ = [
    "ADVERSE_EVENTS",
    "KIND_HEADINGS",
    "MOAAS_LEVELS",
    "NUMBER_FIELDS",
    "ROUTES",
    "VERDICTS",
    "VITALS",
    "Banner",
    "FindingGroup",
    "FindingView",
    "NumberField",
    "SessionForm",
    "VerdictView",
    "banner",
    "group_findings",
    "parse_session_form",
    "smart_style_css",
]

@dataclass(frozen=True, slots=True)
class VerdictView:
    code: str
    title: str
    advice: str
    symbol: str
    """A shape that repeats the colour's meaning for people who cannot tell colours apart."""


VERDICTS: dict[str, VerdictView] = {
    "contraindicated": VerdictView("contraindicated", "Contraindicated",
                                   "Do not give ketamine or esketamine.", "\u2716"),
    "needs-review": VerdictView("needs-review", "Needs review",
                                "A clinician must weigh the findings below before dosing.", "!"),
    "insufficient-data": VerdictView("insufficient-data", "Insufficient data",
                                     "Collect what is missing, then screen again.", "?"),
    "suitable": VerdictView("suitable", "Suitable",
                            "No contraindication, precaution or missing data found.", "\u2714"),
}

KIND_HEADINGS: tuple[tuple[str, str, str], ...] = (
    ("contraindication", "Contraindications", "What to do"),
    ("precaution", "Precautions", "What to do"),
    ("interaction", "Drug interactions", "Management"),
    ("missing-data", "Missing data", "What to collect"),
    ("info", "Information", "Note"),
)
"""(kind, heading, label of the finding's ``detail``), in the order the page shows them."""


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


def _finding(finding: Finding) -> FindingView:
    records = tuple(
        RecordView(ref, label, when.date().isoformat() if when else "date not recorded")
        for ref, label, when in finding.records)
    if not records:
        records = tuple(RecordView(ref, "", "") for ref in finding.evidence)
    return FindingView(finding.summary, finding.rule, finding.severity, finding.source,
                       finding.detail, records)


def group_findings(result: ScreeningResult) -> list[FindingGroup]:
    """Findings grouped by kind (the text report's order); empty groups are left out."""
    groups: list[FindingGroup] = []
    for kind, heading, detail_label in KIND_HEADINGS:
        found = [_finding(f) for f in result.findings if f.kind == kind]
        if found:
            groups.append(FindingGroup(kind, heading, detail_label, found))
    return groups


def banner(patient: Mapping[str, Any] | None, patient_id: str) -> Banner:
    """Name, birth date and gender from a Patient resource (JSON), for the patient banner."""
    patient = patient or {}
    names = patient.get("name") or []
    name: Mapping[str, Any] = names[0] if isinstance(names, list) and names else {}
    official = [n for n in names if isinstance(n, dict) and n.get("use") == "official"]
    name = official[0] if official else name
    given = " ".join(str(g) for g in name.get("given") or [])
    text = str(name.get("text") or f"{given} {name.get('family', '')}".strip() or "(no name)")
    return Banner(text, str(patient.get("birthDate") or "not recorded"),
                  str(patient.get("gender") or "not recorded"), patient_id)


# -- The treatment-session form ------------------------------------------------------------------

MOAAS_LEVELS: tuple[tuple[int, str], ...] = (
    (5, "Responds readily to name spoken in normal tone"),
    (4, "Lethargic response to name spoken in normal tone"),
    (3, "Responds only after name is called loudly and/or repeatedly"),
    (2, "Responds only after mild prodding or shaking"),
    (1, "Responds only after painful trapezius squeeze"),
    (0, "No response after painful trapezius squeeze"),
)
"""MOAA/S levels, as in fhir_maps/codesystems/moaas.json."""

ADVERSE_EVENTS: tuple[tuple[str, str], ...] = (
    ("nausea", "Nausea"),
    ("vomiting", "Vomiting"),
    ("dizziness", "Dizziness"),
    ("blood-pressure-increased", "Hypertension (blood pressure increased)"),
    ("dissociation", "Dissociation beyond what was expected"),
    ("sedation", "Sedation"),
    ("headache", "Headache"),
    ("anxiety", "Anxiety"),
    ("other", "Other (describe below)"),
)
"""Common adverse events offered as checkboxes; codes of the session CodeSystem."""

ROUTES: tuple[tuple[str, str], ...] = (
    ("intranasal", "Intranasal"), ("IV", "Intravenous (IV)"), ("IM", "Intramuscular (IM)"),
    ("subcutaneous", "Subcutaneous"), ("oral", "Oral"),
)
VITALS: tuple[tuple[str, str], ...] = (
    ("pre_dose", "Vitals before dosing"), ("at_40_min", "Vitals at about 40 minutes"),
    ("discharge", "Vitals at discharge"))


@dataclass(frozen=True, slots=True)
class NumberField:
    name: str
    label: str
    unit: str
    low: float
    high: float
    whole: bool = False
    required: bool = True

    @property
    def hint(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{_n(self.low)}-{_n(self.high)}{unit}" + ("" if self.required else ", optional")


def _n(value: float) -> str:
    return f"{value:g}"


def _bounds(model: type[BaseModel], name: str) -> tuple[float, float]:
    low = high = None
    for item in model.model_fields[name].metadata:
        low = getattr(item, "ge", low)
        high = getattr(item, "le", high)
    if low is None or high is None:
        raise TypeError(f"{model.__name__}.{name} has no ge/le bounds")
    return float(low), float(high)


def _vital_fields(prefix: str) -> list[NumberField]:
    spec = (("systolic", "Systolic", "mmHg", True), ("diastolic", "Diastolic", "mmHg", True),
            ("heart_rate", "Heart rate", "beats/min", True), ("spo2", "SpO2", "%", False))
    return [NumberField(f"{prefix}.{key}", label, unit, *_bounds(VitalsInput, key),
                        required=required) for key, label, unit, required in spec]


NUMBER_FIELDS: dict[str, NumberField] = {f.name: f for f in [
    *(f for prefix, _ in VITALS for f in _vital_fields(prefix)),
    NumberField("dose_mg", "Dose", "mg", *_bounds(SessionInput, "dose_mg")),
    NumberField("dose_mg_per_kg", "Dose per kg", "mg/kg", *_bounds(SessionInput, "dose_mg_per_kg"),
                required=False),
    NumberField("cadss_total", "CADSS total", "", *_bounds(SessionInput, "cadss_total"),
                whole=True, required=False),
    NumberField("monitoring_minutes", "Monitoring time", "minutes",
                *_bounds(SessionInput, "monitoring_minutes"), whole=True),
]}
TIME_FIELDS = {"pre_dose.time": "time of the vitals before dosing", "dose_time": "dose time",
               "at_40_min.time": "time of the ~40 minute vitals",
               "discharge.time": "time of the discharge vitals"}
CHOICES = {"product": "Choose the product given.", "route": "Choose the route.",
           "moaas": "Choose the deepest sedation seen (MOAA/S).",
           "ready_to_leave": "Say whether the patient was ready to leave."}
FIELD_ORDER = (
    "session_date", "tz",
    *(f"pre_dose.{k}" for k in ("time", "systolic", "diastolic", "heart_rate", "spo2")),
    "product", "route", "dose_time", "dose_mg", "dose_mg_per_kg",
    *(f"at_40_min.{k}" for k in ("time", "systolic", "diastolic", "heart_rate", "spo2")),
    "moaas", "cadss_total", "ae", "ae_other_text",
    *(f"discharge.{k}" for k in ("time", "systolic", "diastolic", "heart_rate", "spo2")),
    "monitoring_minutes", "ready_to_leave", "form")
"""Every field in the order the form shows it (the error summary follows it)."""
_RENAMED = {"pre_dose.at": "pre_dose.time", "at_40_min.at": "at_40_min.time",
            "discharge.at": "discharge.time", "dose_at": "dose_time"}


@dataclass(slots=True)
class SessionForm:
    """What the clinician typed (kept verbatim), the errors by field, and the parsed session."""

    values: dict[str, str]
    adverse: list[str]
    errors: dict[str, str] = field(default_factory=dict)
    session: SessionInput | None = None

    def error_list(self) -> list[tuple[str, str]]:
        order = {name: i for i, name in enumerate(FIELD_ORDER)}
        return sorted(self.errors.items(), key=lambda kv: order.get(kv[0], len(order)))


def _number(text: str) -> str:
    text = text.strip()
    return text.replace(",", ".") if text.count(",") == 1 and "." not in text else text


def _message(loc: tuple[str | int, ...], kind: str, msg: str) -> tuple[str, str]:
    """(form field, message for people) for one pydantic error."""
    name = ".".join(str(p) for p in loc)
    if loc and loc[0] == "adverse_events":
        return "ae_other_text", "Describe the other adverse event."
    if len(loc) == 1 and loc[0] in dict(VITALS):
        return f"{loc[0]}.diastolic", "Diastolic must be lower than systolic."
    if not loc:
        if "dose_mg_per_kg" in msg:
            return "dose_mg_per_kg", "An IV dose needs the dose in mg/kg."
        if "times must run" in msg:
            return "dose_time", ("Times must run in order: vitals before dosing, dose, ~40 "
                                 "minute vitals, discharge vitals.")
        return "form", msg.removeprefix("Value error, ")
    name = _RENAMED.get(name, name)
    spec = NUMBER_FIELDS.get(name)
    if spec is not None:
        number = "a whole number" if spec.whole else "a number"
        unit = f" {spec.unit}" if spec.unit else ""
        if kind == "missing":
            return name, f"Enter the {spec.label.lower()} ({spec.hint})."
        return name, (f"{spec.label} must be {number} from {_n(spec.low)} to "
                      f"{_n(spec.high)}{unit}.")
    if name in TIME_FIELDS:
        return name, f"Enter the {TIME_FIELDS[name]} (HH:MM)."
    if name in CHOICES:
        return name, CHOICES[name]
    return "form", f"{name}: {msg}"


def _aware(day: date | None, text: str, zone: tzinfo | None) -> datetime | str | None:
    if day is None or zone is None or not text.strip():
        return None
    try:
        return datetime.combine(day, time.fromisoformat(text.strip()), zone)
    except ValueError:
        return text


def parse_session_form(form: Mapping[str, str], adverse: list[str], *, patient_id: str
                       ) -> SessionForm:
    """Check the posted form with :class:`SessionInput`; map every error to its field."""
    values = {k: str(v) for k, v in form.items() if k != "ae"}
    result = SessionForm(values, [a for a in adverse if a in dict(ADVERSE_EVENTS)])
    day: date | None = None
    zone: tzinfo | None = None
    try:
        day = date.fromisoformat(values.get("session_date", "").strip())
    except ValueError:
        result.errors["session_date"] = "Enter the date of the session (YYYY-MM-DD)."
    try:
        zone = ZoneInfo(values.get("tz", "").strip() or "UTC")
    except (ValueError, ZoneInfoNotFoundError):
        result.errors["tz"] = "Enter a time zone such as Europe/Zurich or UTC."
    data: dict[str, Any] = {"session_id": values.get("session_id", ""), "patient_id": patient_id}
    for key in ("product", "route", "moaas"):
        if values.get(key):
            data[key] = values[key]
    if values.get("ready_to_leave") in ("yes", "no"):
        data["ready_to_leave"] = values["ready_to_leave"] == "yes"
    for name in NUMBER_FIELDS:
        text = _number(values.get(name, ""))
        if text:
            head, _, tail = name.partition(".")
            target = data.setdefault(head, {}) if tail else data
            target[tail or head] = text
    for prefix, _ in VITALS:
        at = _aware(day, values.get(f"{prefix}.time", ""), zone)
        if at is not None:
            data.setdefault(prefix, {})["at"] = at
    dose_at = _aware(day, values.get("dose_time", ""), zone)
    if dose_at is not None:
        data["dose_at"] = dose_at
    data["adverse_events"] = [
        {"code": code, "text": values.get("ae_other_text") if code == "other" else None}
        for code in result.adverse]
    try:
        result.session = SessionInput.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            where, text = _message(tuple(error["loc"]), error["type"], error["msg"])
            if where in TIME_FIELDS and ("session_date" in result.errors or "tz" in result.errors):
                continue  # the time is fine; the date or zone it needs is not
            result.errors.setdefault(where, text)
    if result.errors:
        result.session = None
    return result


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
