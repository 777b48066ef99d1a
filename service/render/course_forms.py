"""The course pages' small forms: an integration session, a PHQ-9, a REMS form marked submitted.

Like the session form (service.render.session_form), each is checked by its input model and each
error is put at its field by location and type, with a message for people; what was typed is kept
verbatim. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ValidationError

from service.render.course_map import course_map
from service.render.course_read import SessionRecord
from service.render.integration import IntegrationInput
from service.render.phq9 import Phq9Input
from service.render.rems_form import SubmissionInput
from service.render.session_items import INTEGRATION_MODALITIES, PRODUCTS

__all__ = [
    "INTEGRATION_ORDER",
    "PHQ9_ORDER",
    "SUBMISSION_ORDER",
    "ParsedForm",
    "modality_choices",
    "parse_integration_form",
    "parse_phq9_form",
    "parse_submission_form",
    "phq9_choices",
    "session_options",
]

M = TypeVar("M", bound=BaseModel)


@dataclass(slots=True)
class ParsedForm(Generic[M]):
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    parsed: M | None = None

    def error_list(self, order: Sequence[str]) -> list[tuple[str, str]]:
        rank = {name: i for i, name in enumerate(order)}
        return sorted(self.errors.items(), key=lambda kv: rank.get(kv[0], len(rank)))


def _when(values: Mapping[str, str], errors: dict[str, str], *, clock: bool) -> datetime | None:
    """The date (and time) fields in the form's time zone; errors at the field that is wrong."""
    try:
        day = date.fromisoformat(values.get("date", "").strip())
    except ValueError:
        errors["date"] = "Enter the date (YYYY-MM-DD)."
        day = None
    try:
        zone = ZoneInfo(values.get("tz", "").strip() or "UTC")
    except (ValueError, ZoneInfoNotFoundError):
        errors["tz"] = "Enter a time zone such as Europe/Zurich or UTC."
        return None
    at = time(12, 0)
    if clock:
        try:
            at = time.fromisoformat(values.get("time", "").strip())
        except ValueError:
            errors["time"] = "Enter the start time (HH:MM)."
            return None
    return datetime.combine(day, at, zone) if day is not None else None


def _check(model: type[M], data: dict[str, Any], result: ParsedForm[M],
           messages: Mapping[str, str]) -> ParsedForm[M]:
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "form"
            result.errors.setdefault(where, messages.get(where, str(error["msg"])))
        return result
    if not result.errors:
        result.parsed = parsed
    return result


def session_options(sessions: Sequence[SessionRecord]) -> list[tuple[str, str]]:
    """(session id, label) of the dosing sessions an integration session may follow, newest
    first; only sessions the server has given an id can be pointed at."""
    return [(s.session_id, f"{s.dose_at.date().isoformat() if s.dose_at else '?'}: "
             f"{PRODUCTS.get(s.product or '', 'product not recorded')}")
            for s in reversed(sessions) if s.ref]


INTEGRATION_ORDER = ("follows", "date", "time", "tz", "minutes", "modality", "clinician", "note")
_INTEGRATION_MESSAGES = {
    "follows": "Choose the dosing session this integration session follows.",
    "minutes": "Enter the duration in whole minutes, from 5 to 480.",
    "modality": "Choose how the session was held.",
    "clinician": "Enter the clinician who held the session.",
    "note": "Keep the note under 2,000 characters.",
}


def parse_integration_form(values: Mapping[str, str], *, patient_id: str,
                           sessions: Sequence[SessionRecord]) -> ParsedForm[IntegrationInput]:
    result: ParsedForm[IntegrationInput] = ParsedForm(dict(values))
    start = _when(values, result.errors, clock=True)
    follows = next((s.ref for s in sessions if s.session_id == values.get("follows") and s.ref),
                   None)
    data: dict[str, Any] = {
        "integration_id": values.get("integration_id", ""), "patient_id": patient_id,
        "start": start, "minutes": values.get("minutes", "").strip() or None,
        "modality": values.get("modality") or None, "clinician": values.get("clinician") or None,
        "note": values.get("note") or None, "follows": follows}
    if start is None:
        data.pop("start")
        result.errors.setdefault("date", "Enter the date (YYYY-MM-DD).")
    return _check(IntegrationInput, data, result, _INTEGRATION_MESSAGES)


def modality_choices() -> list[tuple[str, str]]:
    return list(INTEGRATION_MODALITIES)


def phq9_choices() -> dict[str, Any]:
    spec = course_map().phq9
    return {"items": [(f"item_{n}", item.text) for n, item in enumerate(spec.items, start=1)],
            "answers": [(str(a.score), a.display) for a in spec.answers]}


PHQ9_ORDER = ("date", "tz", *(f"item_{n}" for n in range(1, 10)))


def parse_phq9_form(values: Mapping[str, str], *, patient_id: str) -> ParsedForm[Phq9Input]:
    result: ParsedForm[Phq9Input] = ParsedForm(dict(values))
    answered = _when(values, result.errors, clock=False)
    answers: list[int] = []
    for n in range(1, 10):
        text = values.get(f"item_{n}", "")
        if text in ("0", "1", "2", "3"):
            answers.append(int(text))
        else:
            result.errors[f"item_{n}"] = f"Choose an answer to question {n}."
    if result.errors or answered is None:
        return result
    return _check(Phq9Input, {"response_id": values.get("response_id", ""),
                              "patient_id": patient_id, "answered_at": answered,
                              "answers": answers}, result, {})


SUBMISSION_ORDER = ("submitted_on", "submitted_by")


def parse_submission_form(values: Mapping[str, str]) -> ParsedForm[SubmissionInput]:
    result: ParsedForm[SubmissionInput] = ParsedForm(dict(values))
    return _check(SubmissionInput, {"submitted_on": values.get("submitted_on", "").strip(),
                                    "submitted_by": values.get("submitted_by") or None}, result,
                  {"submitted_on": "Enter the date the form was submitted (YYYY-MM-DD).",
                   "submitted_by": "Enter who submitted the form."})
