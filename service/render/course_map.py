"""The treatment course's constants as data: ``fhir_maps/treatment-course.yaml``, validated once.

The REMS minimum monitoring time and submission window, the esketamine dose presets, the form's
concomitant-medication questions and the screen's interaction classes that pre-fill them, the
PHQ-9 items, answers and outcome thresholds, and the integration session's codes. Each block names
its source (REFERENCE v2, "Session observations (write)"; SPRAVATO-REMS). Nothing else in the code
spells these numbers.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from service.errors import MapError

__all__ = [
    "COURSE_MAP_PATH",
    "Coding",
    "ConcomitantQuestion",
    "CourseMap",
    "Phq9Answer",
    "Phq9Item",
    "course_map",
]

COURSE_MAP_PATH = Path(__file__).resolve().parents[2] / "fhir_maps" / "treatment-course.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Coding(_Strict):
    system: str
    code: str
    display: str
    verify: bool = False


class DosePresets(_Strict):
    source: str
    product: str
    mg: tuple[Annotated[int, Field(gt=0, le=500)], ...]


class ConcomitantQuestion(_Strict):
    code: str
    label: str
    rules: tuple[str, ...]
    names: tuple[str, ...] = ()
    """Lower-case words: a finding's record counts only when its text names one of them."""


class Rems(_Strict):
    source: str
    min_monitoring_minutes: Annotated[int, Field(gt=0, le=600)]
    submission_window_days: Annotated[int, Field(gt=0, le=90)]
    dose_presets: DosePresets
    concomitant: tuple[ConcomitantQuestion, ...]


class Phq9Answer(_Strict):
    code: str
    display: str
    score: Annotated[int, Field(ge=0, le=3)]


class Phq9Item(_Strict):
    code: str
    text: str


class Outcomes(_Strict):
    source: str
    response_fraction: Annotated[float, Field(gt=0, lt=1)]
    """Response: the latest total at most ``(1 - fraction)`` of the baseline."""
    remission_below: Annotated[int, Field(gt=0, le=27)]


class Phq9(_Strict):
    source: str
    questionnaire: str
    panel: str
    total: str
    answers: tuple[Phq9Answer, ...]
    items: tuple[Phq9Item, ...]
    outcomes: Outcomes

    @model_validator(mode="after")
    def _nine_items(self) -> Phq9:
        if len(self.items) != 9 or sorted(a.score for a in self.answers) != [0, 1, 2, 3]:
            raise ValueError("the PHQ-9 has nine items, each scored 0 to 3")
        return self


class Integration(_Strict):
    source: str
    procedure: Coding
    category: Coding


class CourseMap(_Strict):
    version: str
    sources: dict[str, str]
    rems: Rems
    phq9: Phq9
    integration: Integration

    @model_validator(mode="after")
    def _sources_declared(self) -> CourseMap:
        cited = [self.rems.source, self.rems.dose_presets.source, self.phq9.source,
                 self.phq9.outcomes.source, self.integration.source]
        unknown = sorted(set(cited) - set(self.sources))
        if unknown:
            raise ValueError(f"sources cited but not declared: {unknown}")
        return self


@cache
def course_map(path: Path = COURSE_MAP_PATH) -> CourseMap:
    """The course map, checked; MapError naming the file and the field when it does not fit."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return CourseMap.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise MapError(f"{path.name}: cannot be read: {exc}") from exc
    except ValidationError as exc:
        raise MapError(f"{path.name}: {exc}") from exc
