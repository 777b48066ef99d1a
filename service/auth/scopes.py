"""Scopes this app asks the EHR for, and the scopes of its own REST API.

SMART v2 scopes: https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
"""

from __future__ import annotations

from service.fhir.references import SCREENED_TYPES

__all__ = [
    "API_SCOPES",
    "SCOPE_SCREEN",
    "SCOPE_WRITE",
    "backend_scopes",
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

# (resource type, SMART v2 permissions): the Patient (age and sex), what screening reads, and what
# a clinician's write-back creates; the treatment course reads and writes its REMS form Tasks
# (created with a session, completed by a conditional update), integration Procedures and PHQ-9
# QuestionnaireResponses.
_RESOURCES: tuple[tuple[str, str], ...] = (
    ("Patient", "rs"),
    *((rtype, "rs") for rtype in SCREENED_TYPES),
    ("Observation", "c"),
    ("DetectedIssue", "c"),
    ("Provenance", "c"),
    ("Task", "rs"),
    ("Task", "cu"),
    ("Procedure", "rs"),
    ("Procedure", "c"),
    ("QuestionnaireResponse", "c"),
)
_V1 = {"rs": "read", "c": "write", "cu": "write"}


def _resource_scopes(level: str, v2: bool) -> list[str]:
    scopes = [f"{level}/{rtype}.{perm if v2 else _V1[perm]}" for rtype, perm in _RESOURCES]
    return list(dict.fromkeys(scopes))


def user_scopes(*, standalone: bool, v2: bool = True, offline: bool = False) -> str:
    """Scopes of an EHR launch (``launch``) or a standalone one (``launch/patient``).

    ``online_access`` asks for a refresh token that lives as long as the user's EHR session, so
    a session form opened at dosing can still be saved after the REMS monitoring (two hours and
    more); ``offline`` asks for ``offline_access`` instead, where a clinic allows it
    (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#scopes-for-requesting-a-refresh-token).
    """
    context = "launch/patient" if standalone else "launch"
    refresh = "offline_access" if offline else "online_access"
    return " ".join([context, "openid", "fhirUser", refresh, *_resource_scopes("patient", v2)])


# What a write-back creates without a user: the screening Observation, DetectedIssues, the
# Provenance, and an esketamine session's REMS form Task. The app is named in Provenance by a
# logical reference, so no Device is written and none needs a scope.
_BACKEND_WRITES = ("Observation", "DetectedIssue", "Provenance", "Task")


def backend_scopes(*, v2: bool = True, write: bool = False) -> str:
    """SMART Backend Services scopes: reads, plus creates when a service asks to write back."""
    scopes = [f"system/{rtype}.{'rs' if v2 else 'read'}" for rtype in ("Patient", *SCREENED_TYPES)]
    if write:
        scopes += [f"system/{rtype}.{'c' if v2 else 'write'}" for rtype in _BACKEND_WRITES]
    return " ".join(scopes)
