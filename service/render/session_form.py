"""The treatment-session form of the clinician's pages: its fields, parsing and messages.

The form is checked with :class:`~service.render.session_input.SessionInput` itself; each error is
put at its field by its location and type (never by its wording), with a message for people.
What the form offers (routes, products, dose presets, adverse events, MOAA/S levels, the three
sets of vitals, the REMS form's concomitant-medication questions) is
:mod:`service.render.session_items`. A new form starts from :func:`session_defaults`: product,
dose and route (and the setting) of the last session, and the concomitant-medication answers the
latest screen's interaction findings imply, each editable. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ValidationError

from service.render.course_read import SessionRecord
from service.render.session_input import REMS_REQUIRED, SessionInput, VitalsInput
from service.render.session_items import (
    CONCOMITANT,
    DOSE_PRESETS,
    ESKETAMINE_MIN_MONITORING_MINUTES,
    FORM_ADVERSE_EVENTS,
    MOAAS_LEVELS,
    PRODUCTS,
    ROUTES,
    VITALS_STEPS,
)
from service.screening.model import Finding

__all__ = [
    "DRAFT_FIELDS",
    "FIELD_ORDER",
    "NUMBER_FIELDS",
    "NumberField",
    "SessionForm",
    "form_choices",
    "parse_session_form",
    "session_defaults",
]

YES_NO = [("yes", "Yes"), ("no", "No")]


def form_choices() -> dict[str, Any]:
    """What the form's menus, radios and checkboxes offer, for the template."""
    return {
        "vitals": [(step.field, step.heading) for step in VITALS_STEPS],
        "routes": [(r.code, r.label) for r in sorted(ROUTES.values(), key=lambda r: r.menu)],
        "products": list(PRODUCTS.items()),
        "moaas_options": [(str(n), f"{n}: {text}") for n, text in MOAAS_LEVELS],
        "adverse_events": FORM_ADVERSE_EVENTS,
        "numbers": NUMBER_FIELDS,
        "concomitant": [(f"concomitant.{q.code}", q.label) for q in CONCOMITANT],
        "dose_presets": [*((str(mg), f"{mg} mg ({mg // 28} devices)") for mg in DOSE_PRESETS),
                         ("other", "Another dose (type it below)")],
        "yes_no": YES_NO,
        "rems_minutes": ESKETAMINE_MIN_MONITORING_MINUTES,
    }


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


def _lower(label: str) -> str:
    """A label inside a sentence: "Dose" -> "dose", but "SpO2" stays "SpO2"."""
    return label[:1].lower() + label[1:] if label[1:2].islower() else label


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
    *(f for step in VITALS_STEPS for f in _vital_fields(step.field)),
    NumberField("dose_mg", "Dose", "mg", *_bounds(SessionInput, "dose_mg")),
    NumberField("dose_mg_per_kg", "Dose per kg", "mg/kg", *_bounds(SessionInput, "dose_mg_per_kg"),
                required=False),
    NumberField("cadss_total", "CADSS total", "", *_bounds(SessionInput, "cadss_total"),
                whole=True, required=False),
    NumberField("lowest_spo2", "Lowest SpO2 during monitoring", "%",
                *_bounds(SessionInput, "lowest_spo2")),
    NumberField("monitoring_minutes", "Monitoring time", "minutes",
                *_bounds(SessionInput, "monitoring_minutes"), whole=True),
]}
TIME_FIELDS = {"pre_dose.time": "time of the vitals before dosing", "dose_time": "dose time",
               "at_40_min.time": "time of the ~40 minute vitals",
               "discharge.time": "time of the discharge vitals",
               "ready_time": "time the patient would have been ready to leave"}
TEXT_FIELDS = {"setting": "healthcare setting", "monitoring_clinician": "monitoring clinician",
               "lot_number": "lot number"}
YES_NO_FIELDS = ("vitals_ok_pre_dose", "vitals_ok_end", "respiratory_depression",
                 *(f"concomitant.{q.code}" for q in CONCOMITANT))
CHOICES = {"product": "Choose the product given.", "route": "Choose the route.",
           "dose_preset": "Choose a dose.",
           "moaas": "Choose the deepest sedation seen (MOAA/S).",
           "ready_to_leave": "Say whether the patient was ready to leave.",
           "vitals_ok_pre_dose": "Say whether the vital signs were acceptable before dosing.",
           "vitals_ok_end": "Say whether the vital signs were acceptable at the end.",
           "respiratory_depression": "Say whether respiratory depression was seen.",
           **{f"concomitant.{q.code}": f"Say whether the patient takes {q.label[:1].lower()}"
              f"{q.label[1:]}." for q in CONCOMITANT}}
FIELD_ORDER = (
    "session_date", "tz", "setting", "monitoring_clinician",
    *(f"concomitant.{q.code}" for q in CONCOMITANT),
    *(f"pre_dose.{k}" for k in ("time", "systolic", "diastolic", "heart_rate", "spo2")),
    "vitals_ok_pre_dose",
    "product", "route", "dose_preset", "dose_time", "dose_mg", "dose_mg_per_kg", "lot_number",
    *(f"at_40_min.{k}" for k in ("time", "systolic", "diastolic", "heart_rate", "spo2")),
    "moaas", "cadss_total", "respiratory_depression", "lowest_spo2", "ae", "ae_other_text",
    *(f"discharge.{k}" for k in ("time", "systolic", "diastolic", "heart_rate", "spo2")),
    "vitals_ok_end", "monitoring_minutes", "ready_to_leave", "ready_time", "form")
"""Every field in the order the form shows it (the error summary and the printed form follow
it)."""
DRAFT_FIELDS = frozenset({*FIELD_ORDER, "session_id"}) - {"ae", "form"}
"""What a draft of the form keeps (the adverse-event boxes travel apart, as a list)."""
_RENAMED = {"pre_dose.at": "pre_dose.time", "at_40_min.at": "at_40_min.time",
            "discharge.at": "discharge.time", "dose_at": "dose_time", "ready_at": "ready_time"}


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


_CHECKS = {
    "pre_dose.diastolic": "Diastolic must be lower than systolic.",
    "at_40_min.diastolic": "Diastolic must be lower than systolic.",
    "discharge.diastolic": "Diastolic must be lower than systolic.",
    "dose_mg_per_kg": "An IV dose needs the dose in mg/kg.",
    "dose_time": ("Times must run in order: vitals before dosing, dose, ~40 minute vitals, "
                  "discharge vitals."),
    "ready_time": "The patient cannot have been ready to leave before the dose.",
    "lowest_spo2": "The lowest SpO2 cannot be above an SpO2 reading of this session.",
    "dose_mg": "The dose typed differs from the preset chosen: choose another dose, or clear it.",
    "dose_preset": "The presets are esketamine doses: choose another dose for ketamine.",
}
"""The messages of SessionInput's checks that involve two fields, by the field they are put at."""


def _message(loc: tuple[str | int, ...], kind: str, msg: str) -> tuple[str, str]:
    """(form field, message for people) for one pydantic error, by its location and type."""
    if loc and loc[0] == "adverse_events":
        return "ae_other_text", "Describe the other adverse event."
    name = ".".join(str(p) for p in loc)
    name = _RENAMED.get(name, name)
    if kind == "value_error" and name in _CHECKS:
        return name, _CHECKS[name]
    if kind == REMS_REQUIRED:
        return name, _rems_message(name)
    if not loc:
        return "form", msg.removeprefix("Value error, ")
    spec = NUMBER_FIELDS.get(name)
    if spec is not None:
        number = "a whole number" if spec.whole else "a number"
        unit = f" {spec.unit}" if spec.unit else ""
        if kind == "missing":
            return name, f"Enter the {_lower(spec.label)} ({spec.hint})."
        return name, (f"{spec.label} must be {number} from {_n(spec.low)} to "
                      f"{_n(spec.high)}{unit}.")
    if name in TIME_FIELDS:
        return name, f"Enter the {TIME_FIELDS[name]} (HH:MM)."
    if name in CHOICES:
        return name, CHOICES[name]
    if name in TEXT_FIELDS:
        return name, f"Check the {TEXT_FIELDS[name]}: letters, digits, spaces, '.', '/' or '-'."
    return "form", f"{name}: {msg}"


def _rems_message(name: str) -> str:
    """An item the REMS form asks for, left out of an esketamine session."""
    if name in CHOICES:
        return f"{CHOICES[name]} The Spravato REMS form asks for it."
    if name in TEXT_FIELDS:
        return f"Enter the {TEXT_FIELDS[name]}: the Spravato REMS form asks for it."
    if name in TIME_FIELDS:
        return f"Enter the {TIME_FIELDS[name]} (HH:MM): the Spravato REMS form asks for it."
    spec = NUMBER_FIELDS[name]
    return f"Enter the {_lower(spec.label)} ({spec.hint}): the Spravato REMS form asks for it."


def _aware(day: date | None, text: str, zone: tzinfo | None) -> datetime | str | None:
    if day is None or zone is None or not text.strip():
        return None
    try:
        return datetime.combine(day, time.fromisoformat(text.strip()), zone)
    except ValueError:
        return text


def _dose_preset(values: Mapping[str, str], data: dict[str, Any],
                 errors: dict[str, str]) -> None:
    """A preset (56 or 84 mg) is the dose; "other" (or none) leaves the typed dose."""
    preset = values.get("dose_preset", "")
    if not preset.isdigit():
        return
    if data.get("product") != "esketamine":
        errors["dose_preset"] = _CHECKS["dose_preset"]
        return
    typed = data.get("dose_mg")
    if typed is not None and _same_number(str(typed), preset) is False:
        errors["dose_mg"] = _CHECKS["dose_mg"]
    data["dose_mg"] = preset


def _same_number(text: str, other: str) -> bool | None:
    try:
        return float(text) == float(other)
    except ValueError:
        return None


def session_defaults(last: SessionRecord | None,
                     findings: Sequence[Finding]) -> tuple[dict[str, str], dict[str, str]]:
    """Values a new form starts with, and a note per pre-filled field saying where it came from.

    From the last session: product, route, dose (as its preset when it is one) and setting. From
    the latest screen: each concomitant-medication question is "yes" when an interaction finding
    of its class names a record of that kind (REMS ``concomitant`` in the course map), else "no".
    """
    values: dict[str, str] = {}
    notes: dict[str, str] = {}
    if last is not None:
        day = last.dose_at.date().isoformat() if last.dose_at else "the last session"
        for key, value in (("product", last.product), ("route", last.code("route")),
                           ("setting", last.value("healthcare-setting"))):
            if isinstance(value, str) and value:
                values[key] = value
                notes[key] = f"As in the last session ({day})."
        dose = last.quantity("dose-mg")
        if dose is not None:
            whole = f"{dose:g}"
            if last.product == "esketamine" and whole in {str(mg) for mg in DOSE_PRESETS}:
                values["dose_preset"] = whole
            else:
                values["dose_preset"] = "other"
                values["dose_mg"] = whole
            notes["dose_preset"] = f"As in the last session ({day})."
    by_rule = {f.rule: f for f in findings if f.kind == "interaction"}
    for question in CONCOMITANT:
        name = f"concomitant.{question.code}"
        hits = [label for rule in question.rules if rule in by_rule
                for _, label, _ in by_rule[rule].records
                if not question.names or any(n in label.lower() for n in question.names)]
        values[name] = "yes" if hits else "no"
        notes[name] = (f"Pre-filled from the screen: {'; '.join(sorted(set(hits)))}." if hits
                       else "Pre-filled from the screen: none on record.")
    return values, notes


def parse_session_form(form: Mapping[str, str], adverse: list[str], *, patient_id: str
                       ) -> SessionForm:
    """Check the posted form with :class:`SessionInput`; map every error to its field."""
    values = {k: str(v) for k, v in form.items() if k != "ae"}
    result = SessionForm(values, [a for a in adverse if a in dict(FORM_ADVERSE_EVENTS)])
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
    for key in (*TEXT_FIELDS, ):
        if values.get(key, "").strip():
            data[key] = values[key]
    for key in ("ready_to_leave", *YES_NO_FIELDS):
        if values.get(key) in ("yes", "no"):
            head, _, tail = key.partition(".")
            target = data.setdefault(head, {}) if tail else data
            target[tail or head] = values[key] == "yes"
    for name in NUMBER_FIELDS:
        text = _number(values.get(name, ""))
        if text:
            head, _, tail = name.partition(".")
            target = data.setdefault(head, {}) if tail else data
            target[tail or head] = text
    for step in VITALS_STEPS:
        at = _aware(day, values.get(f"{step.field}.time", ""), zone)
        if at is not None:
            data.setdefault(step.field, {})["at"] = at
    for key, target in (("dose_time", "dose_at"), ("ready_time", "ready_at")):
        at = _aware(day, values.get(key, ""), zone)
        if at is not None:
            data[target] = at
    _dose_preset(values, data, result.errors)
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


