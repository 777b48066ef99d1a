"""PHQ-9 entered in the app, and what the totals say about the treatment's outcome.

Written as one transaction: a QuestionnaireResponse (https://hl7.org/fhir/R4/questionnaireresponse
.html) answering LOINC's PHQ-9 Questionnaire (canonical ``http://loinc.org/q/44249-1``; each
item's ``linkId`` is its LOINC code, each answer a LOINC answer code LA6568-5 ... LA6571-9, the
total item 44261-6), a total-score Observation (LOINC 44261-6, ``valueInteger``, ``derivedFrom``
the response: what the charts and the screen's baseline rule read), and a Provenance. Both carry
identifiers derived from the patient and the response id: sending it twice adds nothing.

Outcome (:func:`phq9_outcome`): the baseline is the last total on or before the first dosing
session (the first total when there is none); *response* is a total at least the configured
fraction below baseline, *remission* a total below the configured cut-off; both are data with
their source (``fhir_maps/treatment-course.yaml``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from service.fhir.codesystems import IDENTIFIER_BASE, canonical
from service.fhir.references import FHIR_ID_PATTERN
from service.fhir.transaction import TxEntry
from service.render.course_map import course_map
from service.render.session import LOINC
from service.render.writeback import (
    OBSERVATION_CATEGORY,
    app_agent,
    encounter_reference,
    provenance_entry,
)

__all__ = ["PHQ9_SYSTEM", "Outcome", "Phq9Input", "build_phq9_write", "phq9_outcome"]

PHQ9_SYSTEM = f"{IDENTIFIER_BASE}/phq9"

class Phq9Input(BaseModel):
    """The nine answers (0-3 each, in the questionnaire's order) and when they were given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    response_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    patient_id: Annotated[str, Field(pattern=FHIR_ID_PATTERN)]
    practitioner_id: Annotated[str | None, Field(pattern=FHIR_ID_PATTERN)] = None
    answered_at: AwareDatetime
    answers: Annotated[list[Annotated[int, Field(ge=0, le=3)]],
                       Field(min_length=9, max_length=9)]

    @property
    def total(self) -> int:
        return sum(self.answers)


def build_phq9_write(phq9: Phq9Input, *, now: datetime,
                     encounter: str | None = None) -> list[TxEntry]:
    """QuestionnaireResponse, total Observation and Provenance for one PHQ-9; both carry the
    launch's ``encounter`` when there is one."""
    in_encounter = encounter_reference(encounter)
    spec = course_map().phq9
    by_score = {a.score: a for a in spec.answers}
    key = f"Patient/{phq9.patient_id}/phq9/{phq9.response_id}"
    system = canonical(PHQ9_SYSTEM)
    subject = {"reference": f"Patient/{phq9.patient_id}"}
    author = ({"reference": f"Practitioner/{phq9.practitioner_id}"}
              if phq9.practitioner_id else None)
    response = QuestionnaireResponse.model_validate({
        "identifier": {"system": system, "value": key},
        "questionnaire": spec.questionnaire, "status": "completed", "subject": subject,
        "encounter": in_encounter, "authored": phq9.answered_at, "author": author,
        "item": [*({"linkId": item.code, "text": item.text, "answer": [{"valueCoding": {
            "system": LOINC, "code": by_score[score].code, "display": by_score[score].display}}]}
            for item, score in zip(spec.items, phq9.answers, strict=True)),
            {"linkId": spec.total, "text": "Patient Health Questionnaire 9 item total score",
             "answer": [{"valueInteger": phq9.total}]}],
    })
    response_entry = TxEntry(response, system, key)
    total = Observation.model_validate({
        "identifier": [{"system": system, "value": f"{key}/total"}],
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey",
                                  "display": "Survey"}]}],
        "code": {"coding": [{"system": LOINC, "code": spec.total,
                             "display": "Patient Health Questionnaire 9 item (PHQ-9) total "
                                        "score [Reported]"}], "text": "PHQ-9 total score"},
        "subject": subject, "encounter": in_encounter, "effectiveDateTime": phq9.answered_at,
        "issued": now,
        "performer": [author] if author else None, "valueInteger": phq9.total,
        "derivedFrom": [response_entry.reference()],
    })
    total_entry = TxEntry(total, system, f"{key}/total")
    provenance = provenance_entry(
        f"{key}/provenance", [response_entry, total_entry], app=app_agent(),
        app_role="assembler" if phq9.practitioner_id else "author",
        practitioner=phq9.practitioner_id, practitioner_role="author", recorded=now)
    return [response_entry, total_entry, provenance]


@dataclass(frozen=True, slots=True)
class Outcome:
    baseline: tuple[datetime, float]
    latest: tuple[datetime, float]
    response_line: float
    """Totals at or below this are a response."""
    remission_below: float
    response: bool
    remission: bool

    @property
    def change_percent(self) -> float:
        base = self.baseline[1]
        return 0.0 if base == 0 else (base - self.latest[1]) / base * 100

    def words(self) -> str:
        """The outcome in a sentence or two, thresholds quoted."""
        when, base = self.baseline
        latest_when, latest = self.latest
        fraction = course_map().phq9.outcomes.response_fraction
        text = (f"Baseline PHQ-9 {base:g} on {when.date().isoformat()}; latest {latest:g} on "
                f"{latest_when.date().isoformat()}")
        if self.latest == self.baseline:
            return text + ": no later score yet to compare."
        change = self.change_percent
        moved = f"{abs(change):.0f}% {'below' if change >= 0 else 'above'} baseline"
        verdict = ("response" if self.response else
                   f"no response yet (needs {fraction:.0%} below baseline: "
                   f"{self.response_line:g} or less)")
        remission = ("remission" if self.remission
                     else f"not in remission (PHQ-9 below {self.remission_below:g})")
        return f"{text} ({moved}): {verdict}; {remission}."


def phq9_outcome(points: Sequence[tuple[datetime, float]],
                 first_dose: datetime | None) -> Outcome | None:
    """Baseline, latest, response and remission from PHQ-9 totals (None without a score)."""
    ordered = sorted(points, key=lambda p: p[0])
    if not ordered:
        return None
    before = [p for p in ordered if first_dose is None or p[0] <= first_dose]
    baseline = before[-1] if before and first_dose is not None else ordered[0]
    latest = ordered[-1]
    rules = course_map().phq9.outcomes
    line = baseline[1] * (1 - rules.response_fraction)
    later = latest[0] > baseline[0]
    return Outcome(baseline, latest, line, float(rules.remission_below),
                   later and latest[1] <= line, later and latest[1] < rules.remission_below)
