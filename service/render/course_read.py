"""One patient's treatment course as read back from the chart: FHIR JSON -> plain records.

What the app wrote (service.render.session, rems_form, integration, phq9, writeback) is read back
by its identifiers and codes: each dosing session's Observations (identifier
``.../session|Patient/<id>/session/<session>/<item>``), the REMS form Tasks, the integration
Procedures, PHQ-9 totals (LOINC 44261-6, whoever wrote them) and the screening results. The
searches themselves are service.workflow's (:func:`course_searches`); nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from service.fhir.codesystems import CS_SCREENING, CS_SESSION, canonical
from service.render.course_map import course_map
from service.render.fhir_time import parse_when
from service.render.session import LOINC, SESSION_SYSTEM
from service.render.session_items import REMS_TASK_CODE

__all__ = [
    "CourseRecords",
    "IntegrationRecord",
    "RemsTask",
    "ScreeningRecord",
    "SessionRecord",
    "course_searches",
    "read_course_records",
    "split_resources",
]


def course_searches() -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """What to search (resource type, parameters besides ``patient``) for each part of the
    course, on the configured canonical base."""
    proc = course_map().integration.procedure
    return {
        "sessions": ("Observation", [("identifier", f"{canonical(SESSION_SYSTEM)}|")]),
        "tasks": ("Task", [("code", f"{canonical(CS_SESSION)}|{REMS_TASK_CODE}")]),
        "integrations": ("Procedure", [("code", f"{proc.system}|{proc.code}")]),
        "phq9": ("Observation", [("code", f"{LOINC}|{course_map().phq9.total}")]),
        "screenings": ("Observation", [("code", f"{canonical(CS_SCREENING)}|screening-result")]),
    }


def _effective(obs: Mapping[str, Any]) -> datetime | None:
    period = obs.get("effectivePeriod") or {}
    return parse_when(obs.get("effectiveDateTime") or period.get("start"))


def _ref(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


@dataclass(slots=True)
class SessionRecord:
    """One dosing session's Observations, by item (``pre-dose/bp``, ``dose-mg``, ...)."""

    session_id: str
    items: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, Any]:
        return self.items.get("session", {})

    @property
    def ref(self) -> str | None:
        """``Observation/<id>`` of the session Observation (what other records point at)."""
        return _ref(self.summary) if self.summary.get("id") else None

    @property
    def start(self) -> datetime | None:
        """The session's start; for a session known only by some items, the earliest of them."""
        found = _effective(self.summary) or self.dose_at
        if found is None:
            times = [t for t in map(_effective, self.items.values()) if t is not None]
            found = min(times, default=None)
        return found

    @property
    def dose_at(self) -> datetime | None:
        return _effective(self.items.get("dose-mg", {}))

    @property
    def end(self) -> datetime | None:
        period = self.summary.get("effectivePeriod") or {}
        return parse_when(period.get("end"))

    def code(self, item: str) -> str | None:
        """The code of a coded item's value (``route`` gives its text: the form's code)."""
        value = self.items.get(item, {}).get("valueCodeableConcept") or {}
        if value.get("text") and item == "route":
            return str(value["text"])
        codings = value.get("coding") or []
        return str(codings[0].get("code")) if codings else None

    def quantity(self, item: str) -> float | None:
        value = (self.items.get(item, {}).get("valueQuantity") or {}).get("value")
        return float(value) if isinstance(value, int | float) else None

    def value(self, item: str) -> Any:
        """The item's value[x] as JSON (string, boolean, dateTime, integer), else None."""
        obs = self.items.get(item, {})
        for key in ("valueString", "valueBoolean", "valueDateTime", "valueInteger"):
            if key in obs:
                return obs[key]
        return None

    @property
    def product(self) -> str | None:
        for comp in self.summary.get("component") or []:
            codings = (comp.get("code") or {}).get("coding") or []
            if any(c.get("code") == "product" for c in codings):
                inner = (comp.get("valueCodeableConcept") or {}).get("coding") or []
                return str(inner[0].get("code")) if inner else None
        return None

    def answers(self, item: str) -> dict[str, bool]:
        """Yes/no components of ``item`` by code (the concomitant medications)."""
        found: dict[str, bool] = {}
        for comp in self.items.get(item, {}).get("component") or []:
            codings = (comp.get("code") or {}).get("coding") or []
            if codings and isinstance(comp.get("valueBoolean"), bool):
                found[str(codings[0].get("code"))] = comp["valueBoolean"]
        return found

    def performers(self, item: str) -> list[str]:
        """Display-only performers of ``item`` (the monitoring clinician's name)."""
        return [str(p["display"]) for p in self.items.get(item, {}).get("performer") or []
                if p.get("display") and not p.get("reference")]


@dataclass(frozen=True, slots=True)
class RemsTask:
    ref: str
    session_id: str | None
    status: str
    due: date | None
    submitted_on: str | None
    submitted_by: str | None
    resource: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IntegrationRecord:
    ref: str
    start: datetime | None
    end: datetime | None
    modality: str | None
    clinician: str | None
    follows: str | None
    """``Observation/<id>`` of the dosing session it follows (``reasonReference``)."""
    has_note: bool

    @property
    def minutes(self) -> int | None:
        if self.start is None or self.end is None:
            return None
        return round((self.end - self.start).total_seconds() / 60)


@dataclass(frozen=True, slots=True)
class ScreeningRecord:
    ref: str
    when: datetime | None
    verdict: str


@dataclass(slots=True)
class CourseRecords:
    sessions: list[SessionRecord] = field(default_factory=list)
    """Oldest first."""
    tasks: list[RemsTask] = field(default_factory=list)
    integrations: list[IntegrationRecord] = field(default_factory=list)
    phq9: list[tuple[datetime, float]] = field(default_factory=list)
    screenings: list[ScreeningRecord] = field(default_factory=list)

    def session(self, session_id: str) -> SessionRecord | None:
        return next((s for s in self.sessions if s.session_id == session_id), None)

    def last_documented(self) -> SessionRecord | None:
        """The latest session whose product was recorded (what a new session form repeats)."""
        return next((s for s in reversed(self.sessions) if s.product), None)

    def task_of(self, session_id: str) -> RemsTask | None:
        return next((t for t in self.tasks if t.session_id == session_id), None)


def _sessions(observations: Iterable[Mapping[str, Any]]) -> list[SessionRecord]:
    found: dict[str, SessionRecord] = {}
    system = canonical(SESSION_SYSTEM)
    for obs in observations:
        if obs.get("status") == "entered-in-error":
            continue
        for ident in obs.get("identifier") or []:
            parts = str(ident.get("value", "")).split("/", 4)
            if ident.get("system") == system and len(parts) == 5 and \
                    parts[2] == "session":
                record = found.setdefault(parts[3], SessionRecord(parts[3]))
                record.items[parts[4]] = dict(obs)
    return sorted(found.values(), key=lambda s: (s.start is None, s.start or datetime.min))


def _task(task: Mapping[str, Any]) -> RemsTask:
    session_id = None
    for ident in task.get("identifier") or []:
        parts = str(ident.get("value", "")).split("/")
        if ident.get("system") == canonical(SESSION_SYSTEM) and len(parts) == 5:
            session_id = parts[3]
    end = parse_when(((task.get("restriction") or {}).get("period") or {}).get("end"))
    return RemsTask(_ref(task), session_id, str(task.get("status", "")),
                    end.date() if end else None,
                    (task.get("executionPeriod") or {}).get("end"),
                    (task.get("owner") or {}).get("display"), dict(task))


def _integration(proc: Mapping[str, Any]) -> IntegrationRecord:
    period = proc.get("performedPeriod") or {}
    category = ((proc.get("category") or {}).get("coding") or [{}])[0]
    performer = ((proc.get("performer") or [{}])[0].get("actor") or {}).get("display")
    reasons = [r.get("reference") for r in proc.get("reasonReference") or []
               if str(r.get("reference", "")).startswith("Observation/")]
    return IntegrationRecord(_ref(proc), parse_when(period.get("start")),
                             parse_when(period.get("end")),
                             category.get("code") if category.get("system") == canonical(CS_SESSION)
                             else None, performer, reasons[0] if reasons else None,
                             bool(proc.get("note")))


def _screening(obs: Mapping[str, Any]) -> ScreeningRecord:
    value = obs.get("valueCodeableConcept") or {}
    codings = value.get("coding") or [{}]
    return ScreeningRecord(_ref(obs), parse_when(obs.get("effectiveDateTime")),
                           str(codings[0].get("display") or value.get("text") or "unknown"))


def read_course_records(found: Mapping[str, list[dict[str, Any]]],
                        phq9: list[tuple[datetime, float]]) -> CourseRecords:
    """The records from the JSON each of :func:`course_searches` matched (and PHQ-9 points)."""
    tasks = [_task(t) for t in found.get("tasks", []) if t.get("status") != "cancelled"]
    procs = [_integration(p) for p in found.get("integrations", [])
             if p.get("status") not in ("entered-in-error", "not-done")]
    screens = [_screening(o) for o in found.get("screenings", [])
               if o.get("status") != "entered-in-error"]
    return CourseRecords(
        _sessions(found.get("sessions", [])), tasks,
        sorted(procs, key=lambda p: (p.start is None, p.start or datetime.min)), phq9,
        sorted(screens, key=lambda s: (s.when is None, s.when or datetime.min)))


def split_resources(resources: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Resources already at hand (a demo Bundle) sorted as :func:`course_searches` would find
    them on a server."""
    searches = course_searches()
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in searches}
    for resource in resources:
        kind = resource.get("resourceType")
        for name, (rtype, params) in searches.items():
            if kind == rtype and all(_matches(resource, key, value) for key, value in params):
                found[name].append(dict(resource))
    return found


def _matches(resource: Mapping[str, Any], key: str, value: str) -> bool:
    system, _, code = value.partition("|")
    if key == "identifier":
        return any(i.get("system") == system and (not code or i.get("value") == code)
                   for i in resource.get("identifier") or [])
    codings = (resource.get("code") or {}).get("coding") or []
    return any(c.get("system") == system and c.get("code") == code for c in codings)
