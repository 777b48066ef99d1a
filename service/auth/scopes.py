"""Scopes this app asks the EHR for, per feature, and the scopes of its own REST API.

SMART v2 scopes: https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html. A v2
permission string is a subset of ``cruds`` in that order; v1 has ``read`` (r and s) and ``write``
(c, u and d). :data:`FEATURES` is the one list: the launch, the backend client and the README's
table ("Scopes a clinic must grant", checked by a test) all follow it. Each row was measured
against a scope-enforcing test EHR (tests/ui/test_scope_enforcement.py logs every interaction a
feature makes): nothing is asked for that no feature uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from service.fhir.references import SCREENED_TYPES

__all__ = [
    "API_SCOPES",
    "FEATURES",
    "SCOPE_SCREEN",
    "SCOPE_WRITE",
    "Feature",
    "backend_scopes",
    "feature_scopes",
    "user_scopes",
]

SCOPE_SCREEN = "ketamine.screen"
"""Our REST API: run a screening (read-only on the EHR)."""
SCOPE_WRITE = "ketamine.write"
"""Our REST API: write results back to the EHR and document treatment sessions."""
API_SCOPES = {
    SCOPE_SCREEN: "Run a ketamine / esketamine screening for a patient",
    SCOPE_WRITE: "Write screening results back and document treatment sessions",
}

_ORDER = "cruds"


@dataclass(frozen=True, slots=True)
class Feature:
    """What one feature does on the EHR: (resource type, v2 permission letters) pairs."""

    name: str
    level: Literal["patient", "system"]
    needs: tuple[tuple[str, str], ...]


# The screening read: the Patient by id (age and sex), each screened type by search, and the
# Medications their medicationReference points at (brought by _include or read by id: r; searched
# by _id where a server lists no _include: s).
_SCREEN_READS: tuple[tuple[str, str], ...] = (
    ("Patient", "r"),
    *((rtype, "s") for rtype in SCREENED_TYPES),
    ("Medication", "rs"),
)

FEATURES: tuple[Feature, ...] = (
    Feature("EHR launch screening", "patient", _SCREEN_READS),
    # One transaction of conditional creates: the screening Observation, a DetectedIssue per
    # finding that needs one, and the Provenance (the app named by identifier: no Device).
    Feature("Save to chart", "patient",
            (("Observation", "c"), ("DetectedIssue", "c"), ("Provenance", "c"))),
    # The session's Observations and its REMS form Task (created with the session, completed by
    # a conditional update, PUT Task?identifier=); the course (due list, timeline) is searched.
    Feature("Dosing session and REMS form", "patient",
            (("Observation", "cs"), ("Task", "cus"), ("Procedure", "s"), ("Provenance", "c"))),
    # The form offers the course's dosing sessions (Observations, their Tasks) to link to.
    Feature("Integration session", "patient",
            (("Observation", "s"), ("Task", "s"), ("Procedure", "cs"), ("Provenance", "c"))),
    # The QuestionnaireResponse and its total score Observation; the timeline reads the course
    # (PHQ-9 totals are read as Observations).
    Feature("PHQ-9 and timeline", "patient",
            (("QuestionnaireResponse", "c"), ("Observation", "cs"), ("Task", "s"),
             ("Procedure", "s"), ("Provenance", "c"))),
    # Without a user the reads are wider: a population run pages Patient?_count= (Patient s) and
    # Bulk $export needs read on each exported type (https://hl7.org/fhir/uv/bulkdata/), so
    # every type read is asked for with both r and s.
    Feature("Backend services: screening", "system",
            tuple((rtype, "rs") for rtype, _ in _SCREEN_READS)),
    # REST API write-back and sessions: the screening's resources and a session's, with its Task.
    Feature("Backend services: write-back", "system",
            (("Observation", "c"), ("DetectedIssue", "c"), ("Provenance", "c"), ("Task", "c"))),
)
_USER = tuple(f for f in FEATURES if f.level == "patient")
_BACKEND_READ = FEATURES[5]
_BACKEND_WRITE = FEATURES[6]


def _scopes(level: str, features: tuple[Feature, ...], v2: bool) -> list[str]:
    """One scope per type (v2), or a ``read`` and / or ``write`` scope per type (v1)."""
    letters: dict[str, set[str]] = {}
    for feature in features:
        for rtype, perms in feature.needs:
            letters.setdefault(rtype, set()).update(perms)
    scopes: list[str] = []
    for rtype, have in letters.items():
        if v2:
            scopes.append(f"{level}/{rtype}.{''.join(c for c in _ORDER if c in have)}")
            continue
        if have & set("rs"):
            scopes.append(f"{level}/{rtype}.read")
        if have & set("cud"):
            scopes.append(f"{level}/{rtype}.write")
    return scopes


def feature_scopes(feature: Feature, *, v2: bool = True) -> list[str]:
    """The scopes one feature needs on its own (the README's table lists these)."""
    return _scopes(feature.level, (feature,), v2)


def user_scopes(*, standalone: bool, v2: bool = True, offline: bool = False) -> str:
    """Scopes of an EHR launch (``launch``) or a standalone one (``launch/patient``).

    ``online_access`` asks for a refresh token that lives as long as the user's EHR session, so
    a session form opened at dosing can still be saved after the REMS monitoring (two hours and
    more); ``offline`` asks for ``offline_access`` instead, where a clinic allows it
    (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#scopes-for-requesting-a-refresh-token).
    """
    context = "launch/patient" if standalone else "launch"
    refresh = "offline_access" if offline else "online_access"
    return " ".join([context, "openid", "fhirUser", refresh, *_scopes("patient", _USER, v2)])


def backend_scopes(*, v2: bool = True, write: bool = False) -> str:
    """SMART Backend Services scopes: the screening reads, plus creates when a service writes."""
    features = (_BACKEND_READ, _BACKEND_WRITE) if write else (_BACKEND_READ,)
    return " ".join(_scopes("system", features, v2))
