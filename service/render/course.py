"""View models of the treatment course pages: the REMS forms due, the timeline, one session's
printable form. Built from :mod:`service.render.course_read` records; nothing here does I/O.

The REMS window is ``fhir_maps/treatment-course.yaml``'s; the integration window (how many days
after a dosing session an integration session is expected) is the deployment's setting, passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from service.fhir.codesystems import CS_SESSION, display
from service.render.course_read import CourseRecords, RemsTask, SessionRecord
from service.render.fhir_time import parse_when
from service.render.phq9 import phq9_outcome
from service.render.session_items import (
    CONCOMITANT,
    INTEGRATION_MODALITIES,
    MOAAS_LEVELS,
    PRODUCTS,
    ROUTES,
    VITALS_STEPS,
)

__all__ = [
    "DueRow",
    "PrintSection",
    "TimelineEvent",
    "due_rows",
    "first_dose",
    "print_sections",
    "timeline",
]


def _day(value: datetime | None) -> str:
    return value.date().isoformat() if value else "date not recorded"


def _clock(value: datetime | None) -> str:
    return value.strftime("%H:%M") if value else ""


@dataclass(frozen=True, slots=True)
class DueRow:
    session_id: str
    session_day: str
    due: date | None
    state: str
    """``overdue``, ``due`` or ``submitted``."""
    submitted: str
    task: RemsTask


def due_rows(records: CourseRecords, today: date) -> list[DueRow]:
    """Every REMS form Task of the patient: open ones first (oldest due first), then submitted."""
    rows: list[DueRow] = []
    for task in records.tasks:
        record = records.session(task.session_id or "")
        day = _day(record.dose_at if record else None)
        if task.status == "completed":
            state = "submitted"
            done = f"{task.submitted_on or '?'} by {task.submitted_by or 'not recorded'}"
        else:
            state = "overdue" if task.due is not None and today > task.due else "due"
            done = ""
        rows.append(DueRow(task.session_id or "", day, task.due, state, done, task))
    order = {"overdue": 0, "due": 1, "submitted": 2}
    return sorted(rows, key=lambda r: (order[r.state], r.due or date.max))


@dataclass(slots=True)
class TimelineEvent:
    when: datetime
    kind: str
    """``screening``, ``dosing``, ``integration`` or ``phq9``."""
    title: str
    detail: str = ""
    flag: str = ""
    """For a dosing session: no integration session within the window (a gap)."""
    links: list[tuple[str, str]] = field(default_factory=list)


def first_dose(records: CourseRecords) -> datetime | None:
    doses = [s.dose_at for s in records.sessions if s.dose_at is not None]
    return min(doses) if doses else None


def _dosing(record: SessionRecord, records: CourseRecords, now: datetime,
            window_days: int) -> TimelineEvent:
    when = record.dose_at or record.start or now
    product = PRODUCTS.get(record.product or "", record.product or "product not recorded")
    dose = record.quantity("dose-mg")
    event = TimelineEvent(when, "dosing", f"Dosing session: {product}",
                          f"{dose:g} mg" if dose is not None else "dose not recorded")
    limit = when + timedelta(days=window_days)
    after = [i for i in records.integrations
             if i.start is not None and when <= i.start <= limit]
    linked = [i for i in records.integrations if record.ref and i.follows == record.ref]
    if after:
        event.detail += f"; integration session on {_day(after[0].start)}"
    elif now > limit:
        event.flag = f"No integration session within {window_days} days"
    else:
        event.detail += f"; integration session expected by {limit.date().isoformat()}"
    if linked and not after:
        event.detail += f" (a linked integration session on {_day(linked[0].start)})"
    event.links = [("Print the REMS form", f"/app/session/{record.session_id}/print"),
                   ("Document its integration session",
                    f"/app/integration?follows={record.session_id}")]
    task = records.task_of(record.session_id)
    if task is not None:
        state = "submitted" if task.status == "completed" else f"due {task.due}"
        event.detail += f"; REMS form {state}"
    return event


def timeline(records: CourseRecords, now: datetime, window_days: int) -> list[TimelineEvent]:
    """Screenings, dosing sessions (gaps flagged), integration sessions and PHQ-9 totals, oldest
    first."""
    events = [TimelineEvent(s.when, "screening", f"Screening: {s.verdict}")
              for s in records.screenings if s.when is not None]
    events += [_dosing(s, records, now, window_days) for s in records.sessions]
    modality = dict(INTEGRATION_MODALITIES)
    for i in records.integrations:
        if i.start is None:
            continue
        minutes = f"{i.minutes} minutes" if i.minutes is not None else "duration not recorded"
        events.append(TimelineEvent(i.start, "integration",
                                    f"Integration session: {modality.get(i.modality or '', '')}"
                                    .rstrip(": "),
                                    f"{minutes} with {i.clinician or 'clinician not recorded'}"))
    outcome = phq9_outcome(records.phq9, first_dose(records))
    for when, score in records.phq9:
        label = ""
        if outcome is not None and (when, score) == outcome.baseline:
            label = " (baseline)"
        events.append(TimelineEvent(when, "phq9", f"PHQ-9 total {score:g}{label}"))
    return sorted(events, key=lambda e: e.when)


@dataclass(frozen=True, slots=True)
class PrintSection:
    heading: str
    rows: tuple[tuple[str, str], ...]


def _yes(value: object) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return "Not recorded"


def _vitals(record: SessionRecord, key: str) -> list[tuple[str, str]]:
    panel = record.items.get(f"{key}/bp", {})
    parts = {c.get("code", {}).get("coding", [{}])[0].get("code"):
             (c.get("valueQuantity") or {}).get("value") for c in panel.get("component") or []}
    bp = (f"{parts.get('8480-6', '?'):g}/{parts.get('8462-4', '?'):g} mmHg"
          if isinstance(parts.get("8480-6"), int | float) else "Not recorded")
    rate, spo2 = record.quantity(f"{key}/heart-rate"), record.quantity(f"{key}/spo2")
    when = parse_when(panel.get("effectiveDateTime"))
    return [("Time", _clock(when) or "Not recorded"), ("Blood pressure", bp),
            ("Heart rate", f"{rate:g} beats/min" if rate is not None else "Not recorded"),
            ("SpO2", f"{spo2:g}%" if spo2 is not None else "Not recorded")]


def print_sections(record: SessionRecord) -> list[PrintSection]:
    """The session's REMS form items, in the order of the session form."""
    route = ROUTES.get(record.code("route") or "")
    moaas = record.code("moaas")
    dose, per_kg = record.quantity("dose-mg"), record.quantity("dose-mg-per-kg")
    answers = record.answers("concomitant-medications")
    events = [record.items[k] for k in sorted(record.items) if k.startswith("adverse-event/")]
    adverse = "; ".join(
        (e.get("valueCodeableConcept") or {}).get("text")
        or display(CS_SESSION, (e.get("valueCodeableConcept") or {}).get("coding", [{}])[0]
                   .get("code", "other")) for e in events) or "None recorded"
    minutes, lowest = record.quantity("monitoring-minutes"), record.quantity("lowest-spo2")
    steps = {s.key: s.heading for s in VITALS_STEPS}
    sections = [
        PrintSection("Session", (
            ("Date", _day(record.start)), ("Healthcare setting",
                                          str(record.value("healthcare-setting") or
                                              "Not recorded")),
            ("Monitoring clinician", ", ".join(record.performers("monitoring-minutes"))
             or "Not recorded"))),
        PrintSection("Concomitant medications", tuple(
            (q.label, _yes(answers.get(q.code))) for q in CONCOMITANT)),
        PrintSection(steps["pre-dose"], (*_vitals(record, "pre-dose"), (
            "Vital signs acceptable before dosing", _yes(record.value(
                "vitals-acceptable-pre-dose"))))),
        PrintSection("Dose", (
            ("Product", PRODUCTS.get(record.product or "", "Not recorded")),
            ("Route", route.label if route else "Not recorded"),
            ("Time of the dose", _clock(record.dose_at) or "Not recorded"),
            ("Dose", f"{dose:g} mg" if dose is not None else "Not recorded"),
            *((("Dose per kg", f"{per_kg:g} mg/kg"),) if per_kg is not None else ()),
            ("Lot number", str(record.value("lot-number") or "Not recorded")))),
        PrintSection(steps["40-min"], tuple(_vitals(record, "40-min"))),
        PrintSection("Sedation, dissociation, respiratory depression and adverse events", (
            ("Deepest sedation (MOAA/S)", f"{moaas}: {dict(MOAAS_LEVELS).get(int(moaas), '')}"
             if moaas is not None and moaas.isdigit() else "Not recorded"),
            ("Dissociation (CADSS total)", str(record.value("cadss-total") or "Not recorded")),
            ("Respiratory depression observed",
             _yes(record.value("respiratory-depression-observed"))),
            ("Lowest SpO2", f"{lowest:g}%" if lowest is not None else "Not recorded"),
            ("Adverse events", adverse))),
        PrintSection(steps["discharge"], (*_vitals(record, "discharge"), (
            "Vital signs acceptable at the end", _yes(record.value("vitals-acceptable-end"))))),
        PrintSection("Discharge", (
            ("Total monitoring time", f"{minutes:g} minutes" if minutes is not None
             else "Not recorded"),
            ("Clinically ready to leave", _yes(record.value("ready-to-leave"))),
            ("Would have been ready to leave at", _clock(parse_when(
                record.value("ready-to-leave-at"))) or "Not recorded"))),
    ]
    return sections
