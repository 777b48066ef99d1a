"""The scopes the app asks for: user launches and backend services, v2 and v1."""

from __future__ import annotations

from service.auth.scopes import backend_scopes, user_scopes


def test_backend_reads_only_unless_writing() -> None:
    read = backend_scopes().split()
    assert {"system/Condition.rs", "system/Medication.rs", "system/Patient.rs"} <= set(read)
    assert not any("c" in s.split(".")[1] for s in read)
    write = backend_scopes(write=True).split()
    assert {"system/Observation.crs", "system/DetectedIssue.c", "system/Provenance.c",
            "system/Task.c"} <= set(write)
    assert not any("Device" in s for s in write)  # the app is named, not written


def test_v1_equivalents() -> None:
    assert "system/Observation.write" in backend_scopes(v2=False, write=True).split()
    assert "patient/Condition.read" in user_scopes(standalone=False, v2=False).split()


def test_launch_context_scope() -> None:
    assert user_scopes(standalone=False).split()[0] == "launch"
    assert user_scopes(standalone=True).split()[0] == "launch/patient"
    assert {"openid", "fhirUser", "patient/DetectedIssue.c"} <= set(
        user_scopes(standalone=False).split())


def test_a_refresh_token_is_asked_for() -> None:
    """Issue 14: without online_access most EHRs issue no refresh token, and a session form
    opened at dosing could not be saved after the two hours of REMS monitoring."""
    assert "online_access" in user_scopes(standalone=False).split()
    offline = user_scopes(standalone=True, offline=True).split()
    assert "offline_access" in offline and "online_access" not in offline


def test_the_treatment_course_writes_are_covered() -> None:
    """REMS form Tasks (created, searched, then completed by a conditional update), integration
    Procedures and PHQ-9 QuestionnaireResponses; the backend writes a session's Task with it.
    One v2 scope per type, its letters in cruds order."""
    user = user_scopes(standalone=False).split()
    assert {"patient/Task.cus", "patient/Procedure.cs", "patient/QuestionnaireResponse.c",
            "patient/Observation.cs", "patient/Patient.r", "patient/Medication.rs"} <= set(user)
    types = [s.split(".")[0] for s in user if "/" in s and s.startswith("patient/")]
    assert len(types) == len(set(types))
    v1 = user_scopes(standalone=False, v2=False).split()
    assert {"patient/Task.read", "patient/Task.write", "patient/Procedure.write"} <= set(v1)
    assert len(v1) == len(set(v1))
    assert "system/Task.c" in backend_scopes(write=True).split()
    assert not any(s.startswith("system/Task") for s in backend_scopes().split())
