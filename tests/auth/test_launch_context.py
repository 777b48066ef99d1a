"""``fhirContext`` and ``appContext`` of a token response: what is kept, what is dropped (and
only counted in the log), and what the session makes of it (the order, the encounter)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from service.auth.launch_context import (
    MAX_APP_CONTEXT_CHARS,
    MAX_FHIR_CONTEXT,
    ContextItem,
    parse_app_context,
    parse_fhir_context,
    parse_launch_context,
)
from service.auth.session import SmartSession


def _session(**token: Any) -> SmartSession:
    return SmartSession.from_token("https://ehr.test/fhir", "https://ehr.test/token",
                                   {"access_token": "t", "patient": "p1", **token},
                                   fhir_user=None, sub=None)


def test_smart_2_1_objects_and_2_0_strings_are_kept_in_order() -> None:
    items, dropped = parse_fhir_context([
        {"reference": "MedicationRequest/mr-1"},
        "Encounter/e.1",
        {"reference": "DiagnosticReport/d1", "type": "DiagnosticReport",
         "role": "https://example.org/role/source"},
    ])
    assert items == (ContextItem("MedicationRequest/mr-1"), ContextItem("Encounter/e.1"),
                     ContextItem("DiagnosticReport/d1", "https://example.org/role/source"))
    assert dropped == 0


@pytest.mark.parametrize("entry", [
    {"reference": "https://other.example/fhir/MedicationRequest/1"},  # absolute: another server
    {"reference": "MedicationRequest/1/_history/2"},  # versioned
    {"reference": "MedicationRequest/.."},  # a path step, not an id
    {"reference": "MedicationRequest/a b"},
    {"reference": "MedicationRequest/" + "x" * 65},
    {"reference": "#contained"},
    {"reference": "urn:uuid:8f7c4a9e-0d1b-4c3a-9d5e-2b6f1a0c7e31"},
    {"reference": "medicationRequest/1"},  # not a type
    {"reference": "Encounter/1", "type": "MedicationRequest"},  # type disagrees
    {"reference": "Encounter/1", "role": "launch role with spaces"},
    {"canonical": "http://example.org/Questionnaire/q|1"},  # no reference to follow
    {"identifier": {"system": "urn:x", "value": "1"}, "type": "Encounter"},
    {"reference": 42},
    42,
    None,
    ["Encounter/1"],
])
def test_malformed_and_foreign_entries_are_dropped_and_counted(entry: object) -> None:
    assert parse_fhir_context([entry, "Encounter/ok"]) == ((ContextItem("Encounter/ok"),), 1)


def test_a_repeated_entry_is_kept_once() -> None:
    assert parse_fhir_context(["Encounter/1", {"reference": "Encounter/1"}]) == (
        (ContextItem("Encounter/1"),), 0)


@pytest.mark.parametrize(("value", "expected"), [
    (None, ((), 0)), ([], ((), 0)), ("Encounter/1", ((), 1)), ({"reference": "Encounter/1"},
                                                               ((), 1)),
])
def test_a_context_that_is_not_an_array(value: object, expected: object) -> None:
    assert parse_fhir_context(value) == expected


def test_at_most_twenty_entries_are_read() -> None:
    items, dropped = parse_fhir_context([f"Observation/o{n}" for n in range(25)])
    assert MAX_FHIR_CONTEXT == 20
    assert [i.id for i in items] == [f"o{n}" for n in range(20)] and dropped == 5


def test_app_context_is_an_opaque_bounded_string() -> None:
    assert parse_app_context('{"view": "orders"}') == ('{"view": "orders"}', 0)
    assert parse_app_context(None) == (None, 0)
    assert parse_app_context({"view": "orders"}) == (None, 1)
    assert parse_app_context("x" * (MAX_APP_CONTEXT_CHARS + 1)) == (None, 1)


def test_the_log_counts_and_never_names_what_was_dropped(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="service.auth.launch_context")
    context = parse_launch_context({
        "fhirContext": ["MedicationRequest/secret-order",
                        "https://other.example/fhir/Patient/secret-patient"],
        "appContext": "secret-app-context" * 1000})
    assert context is not None and context.app_context is None
    assert [r.getMessage() for r in caplog.records] == [
        "launch context: dropped 1 fhirContext entries and 1 appContext (kept 1 entries)"]
    assert "secret" not in caplog.text


def test_the_session_keeps_the_order_and_the_app_context() -> None:
    session = _session(fhirContext=[{"reference": "MedicationRequest/123"}],
                       appContext="opaque")
    assert (session.order, session.app_context, session.encounter) == ("123", "opaque", None)
    again = SmartSession.from_json(session.to_json())
    assert (again.order, again.fhir_context) == ("123", [{"reference": "MedicationRequest/123"}])


def test_an_encounter_in_fhir_context_stands_in_for_the_parameter() -> None:
    assert _session(fhirContext=["Encounter/from-context"]).encounter == "from-context"
    assert _session(encounter="param", fhirContext=["Encounter/ctx"]).encounter == "param"


def test_a_refresh_without_context_keeps_the_launch_context() -> None:
    session = _session(encounter="e1", fhirContext=["MedicationRequest/m1"], appContext="a")
    session.apply_token({"access_token": "t2"})
    assert (session.encounter, session.order, session.app_context) == ("e1", "m1", "a")


def test_a_session_stored_before_fhir_context_existed_still_loads() -> None:
    data = _session().to_json()
    del data["fhir_context"], data["app_context"]
    assert SmartSession.from_json(data).order is None
