"""The scopes the app asks for: user launches and backend services, v2 and v1."""

from __future__ import annotations

import re
from pathlib import Path

from service.auth.scopes import FEATURES, backend_scopes, feature_scopes, user_scopes
from tests.auth.smart_scopes import granted_permissions


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


# -- The README's table ("Scopes a clinic must grant") is service.auth.scopes, row for row. ----

README = Path(__file__).resolve().parents[2] / "README.md"
LAUNCH_ROW = "Every launch"


def _readme_rows() -> dict[str, tuple[list[str], list[str]]]:
    """Feature -> (v2 scopes, v1 scopes), from the table under "## Scopes a clinic must grant"."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Scopes a clinic must grant\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[list[str], list[str]]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("Feature", "---"):
            continue
        rows[cells[0]] = (re.findall(r"`([^`]+)`", cells[1]), re.findall(r"`([^`]+)`", cells[2]))
    return rows


def test_the_readme_lists_every_feature_with_the_scopes_it_is_asked_for() -> None:
    rows = _readme_rows()
    assert list(rows) == [LAUNCH_ROW, *(f.name for f in FEATURES)]
    for feature in FEATURES:
        assert rows[feature.name] == (feature_scopes(feature), feature_scopes(feature, v2=False)), \
            feature.name


def test_the_readme_launch_row_is_what_every_launch_asks_for() -> None:
    asked = {s for standalone in (False, True) for offline in (False, True) for v2 in (False, True)
             for s in user_scopes(standalone=standalone, offline=offline, v2=v2).split()
             if "/" not in s or s == "launch/patient"}
    v2, v1 = _readme_rows()[LAUNCH_ROW]
    assert set(v2) == set(v1) == asked == {"launch", "launch/patient", "openid", "fhirUser",
                                           "online_access", "offline_access"}


def test_the_readme_rows_add_up_to_what_the_app_asks_for() -> None:
    rows = _readme_rows()
    for v2, column in ((True, 0), (False, 1)):
        user = {s for f in FEATURES if f.level == "patient" for s in rows[f.name][column]}
        resources = {s for s in user_scopes(standalone=False, v2=v2).split()
                     if s.startswith("patient/")}
        # One v2 scope per type in the request; the rows list each feature's letters apart.
        assert asked_pairs(user) == asked_pairs(resources)
        system = {s for f in FEATURES if f.level == "system" for s in rows[f.name][column]}
        assert asked_pairs(system) == asked_pairs(set(backend_scopes(v2=v2, write=True).split()))


def asked_pairs(scopes: set[str]) -> set[tuple[str, str]]:
    return {(rtype, letter) for rtype, letters in granted_permissions(scopes).items()
            for letter in letters}
