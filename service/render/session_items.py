"""What a treatment session records, item by item: the one table the model, the resources, the
form and the charts read.

Following the reference (Session observations), from the FDA Spravato REMS Patient Monitoring
Form and APA-2017. Codes and displays of the project's own concepts (adverse events, MOAA/S
levels, concomitant medications, integration modalities) are those of
``fhir_maps/codesystems/session.json`` and ``moaas.json``; the REMS constants (minimum monitoring
time, submission window, dose presets, which screen findings pre-fill the concomitant questions)
are ``fhir_maps/treatment-course.yaml``; this table adds what the form says about them and the
standard codes the resources carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from service.errors import MapError
from service.fhir.codesystems import CS_MOAAS, CS_SESSION, load_codesystems
from service.render.course_map import ConcomitantQuestion, course_map

__all__ = [
    "ADVERSE_EVENT_CODES",
    "CONCOMITANT",
    "DOSE_PRESETS",
    "ESKETAMINE_MIN_MONITORING_MINUTES",
    "FORM_ADVERSE_EVENTS",
    "INTEGRATION_MODALITIES",
    "MOAAS_LEVELS",
    "PRODUCTS",
    "REMS_SUBMISSION_DAYS",
    "REMS_TASK_CODE",
    "ROUTES",
    "VITALS_STEPS",
    "AdverseEventCode",
    "ModalityCode",
    "ProductCode",
    "Route",
    "RouteCode",
    "VitalsStep",
]

_REMS = course_map().rems
ESKETAMINE_MIN_MONITORING_MINUTES = _REMS.min_monitoring_minutes
"""SPRAVATO-REMS: monitor for at least 2 hours after each dose."""
REMS_SUBMISSION_DAYS = _REMS.submission_window_days
"""SPRAVATO-REMS: the Patient Monitoring Form is submitted within this many days of the session."""
REMS_TASK_CODE = "rems-monitoring-form"
"""The session CodeSystem's code of the Task that tracks a session's REMS form."""
DOSE_PRESETS: tuple[int, ...] = _REMS.dose_presets.mg
"""Esketamine doses the form offers as presets (mg; 28 mg per nasal spray device)."""
CONCOMITANT: tuple[ConcomitantQuestion, ...] = _REMS.concomitant
"""The REMS form's concomitant-medication questions, in the form's order."""


@dataclass(frozen=True, slots=True)
class Route:
    code: str
    snomed: str
    """SNOMED CT route of administration (a descendant of 284009009)."""
    snomed_display: str
    label: str
    """What the form's menu says."""
    menu: int
    """Position in the form's menu (most used first)."""


ROUTES: dict[str, Route] = {r.code: r for r in (
    Route("IV", "47625008", "Intravenous route", "Intravenous (IV)", 1),
    Route("IM", "78421000", "Intramuscular route", "Intramuscular (IM)", 2),
    Route("intranasal", "46713006", "Nasal route", "Intranasal", 0),
    Route("oral", "26643006", "Oral route", "Oral", 4),
    Route("subcutaneous", "34206005", "Subcutaneous route", "Subcutaneous", 3),
)}

PRODUCTS: dict[str, str] = {"ketamine": "Ketamine", "esketamine": "Esketamine (Spravato)"}
"""Codes of the session CodeSystem's ``product`` concept, and what the form says."""


@dataclass(frozen=True, slots=True)
class VitalsStep:
    field: str
    """The SessionInput field (and form prefix)."""
    key: str
    """The identifier part of its Observations (``.../<key>/bp``)."""
    heading: str
    chart_label: str


VITALS_STEPS: tuple[VitalsStep, ...] = (
    VitalsStep("pre_dose", "pre-dose", "Vitals before dosing", "Before dose"),
    VitalsStep("at_40_min", "40-min", "Vitals at about 40 minutes", "~40 min"),
    VitalsStep("discharge", "discharge", "Vitals at discharge", "Discharge"),
)


def _children(system: str, parent: str | None) -> list[tuple[str, str]]:
    data = next(cs for cs in load_codesystems() if cs["url"] == system)
    concepts = data.get("concept") or []
    if parent is not None:
        concepts = next(c for c in concepts if c["code"] == parent).get("concept") or []
    return [(str(c["code"]), str(c.get("display") or c["code"])) for c in concepts]


ADVERSE_EVENT_CODES: tuple[str, ...] = tuple(code for code, _ in
                                             _children(CS_SESSION, "adverse-event"))
"""Every adverse event the session CodeSystem defines."""
INTEGRATION_MODALITIES: tuple[tuple[str, str], ...] = tuple(
    _children(CS_SESSION, "integration-modality"))
"""How an integration session was held (code, display), as the session CodeSystem defines."""
MOAAS_LEVELS: tuple[tuple[int, str], ...] = tuple((int(code), text)
                                                  for code, text in _children(CS_MOAAS, None))
"""MOAA/S levels, 5 (awake) to 0, as fhir_maps/codesystems/moaas.json defines them."""

FORM_ADVERSE_EVENTS: tuple[tuple[str, str], ...] = (
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
"""The common adverse events the form offers as checkboxes, as the form words them."""
if not set(dict(FORM_ADVERSE_EVENTS)) <= set(ADVERSE_EVENT_CODES):  # pragma: no cover
    raise MapError("the session form offers an adverse event the session CodeSystem lacks")

if {q.code for q in CONCOMITANT} != {c for c, _ in _children(CS_SESSION,
                                                             "concomitant-medications")}:
    raise MapError("treatment-course.yaml's concomitant questions and the session CodeSystem's "
                   "concomitant-medications concepts differ")  # pragma: no cover

if TYPE_CHECKING:
    RouteCode = str
    ProductCode = str
    AdverseEventCode = str
    ModalityCode = str
else:
    # Literal types made from the tables, so that pydantic validates (and the OpenAPI document
    # lists) exactly the table's codes.
    RouteCode = Literal[tuple(ROUTES)]
    ProductCode = Literal[tuple(PRODUCTS)]
    AdverseEventCode = Literal[ADVERSE_EVENT_CODES]
    ModalityCode = Literal[tuple(code for code, _ in INTEGRATION_MODALITIES)]
