"""Treatment-session input validation, resource shapes, and the sandbox round trip."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from service.fhir.client import FhirClient
from service.fhir.codesystems import CS_MOAAS, CS_SESSION
from service.render.session import build_session_write
from service.render.session_input import SessionInput
from service.workflow import write_session

DOSE = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)


REMS_ITEMS: dict[str, Any] = {
    "lot_number": "LOT-24A117",
    "concomitant": {"benzodiazepines": True, "sedative-hypnotics": False,
                    "psychostimulants": False, "maois": False},
    "vitals_ok_pre_dose": True,
    "vitals_ok_end": True,
    "ready_at": (DOSE + timedelta(minutes=120)).isoformat(),
    "respiratory_depression": False,
    "lowest_spo2": 94,
    "monitoring_clinician": "Sam Rivera, RN",
    "setting": "Lakeside Clinic",
}
"""The rest of the Spravato REMS Patient Monitoring Form (required for esketamine)."""


def session_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "session_id": "S-0001",
        "patient_id": "p1",
        "practitioner_id": "dr1",
        "product": "esketamine",
        "route": "intranasal",
        "dose_at": DOSE.isoformat(),
        "dose_mg": 56,
        "pre_dose": {"at": (DOSE - timedelta(minutes=10)).isoformat(), "systolic": 128,
                     "diastolic": 80, "heart_rate": 72, "spo2": 98},
        "at_40_min": {"at": (DOSE + timedelta(minutes=40)).isoformat(), "systolic": 146,
                      "diastolic": 88, "heart_rate": 80, "spo2": 97},
        "discharge": {"at": (DOSE + timedelta(minutes=125)).isoformat(), "systolic": 130,
                      "diastolic": 82, "heart_rate": 74},
        "moaas": 4,
        "cadss_total": 12,
        "adverse_events": [{"code": "dissociation"},
                           {"code": "other", "text": "transient metallic taste"}],
        "monitoring_minutes": 125,
        "ready_to_leave": True,
        **REMS_ITEMS,
    }
    body.update(changes)
    return body


def resources(session: SessionInput) -> list[dict[str, Any]]:
    bundle = build_session_write(session).bundle().model_dump(mode="json", exclude_none=True)
    return [e["resource"] for e in bundle["entry"]]


def by_code(items: list[dict[str, Any]], code: str) -> list[dict[str, Any]]:
    return [r for r in items if r["resourceType"] == "Observation"
            and any(c["code"] == code for c in r["code"]["coding"])]


def test_valid_session_has_no_warnings() -> None:
    assert build_session_write(SessionInput.model_validate(session_body())).warnings == []


@pytest.mark.parametrize(("changes", "message"), [
    ({"dose_mg": 600}, "less than or equal to 500"),
    ({"dose_mg_per_kg": 7}, "less than or equal to 5"),
    ({"route": "rectal"}, "'IV', 'IM', 'intranasal', 'oral' or 'subcutaneous'"),
    ({"product": "ketamin"}, "'ketamine' or 'esketamine'"),
    ({"moaas": 6}, "less than or equal to 5"),
    ({"cadss_total": 93}, "less than or equal to 92"),
    ({"monitoring_minutes": -1}, "greater than or equal to 0"),
    ({"session_id": "a,b"}, "should match pattern"),
    ({"surprise": 1}, "Extra inputs are not permitted"),
    ({"dose_at": "2026-06-15T09:00:00"}, "timezone"),
    ({"route": "IV", "product": "ketamine"}, "IV dose needs dose_mg_per_kg"),
    ({"adverse_events": [{"code": "other"}]}, "needs a text"),
    ({"dose_at": (DOSE + timedelta(hours=3)).isoformat()}, "times must run"),
])
def test_invalid_sessions_are_refused_clearly(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SessionInput.model_validate(session_body(**changes))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("systolic", 300, "less than or equal to 260"),
    ("diastolic", 20, "greater than or equal to 30"),
    ("heart_rate", 10, "greater than or equal to 20"),
    ("spo2", 101, "less than or equal to 100"),
    ("diastolic", 140, "lower than systolic"),
])
def test_vital_sign_ranges(field: str, value: float, message: str) -> None:
    body = session_body()
    body["pre_dose"] = {**body["pre_dose"], field: value}
    with pytest.raises(ValidationError, match=message):
        SessionInput.model_validate(body)


def test_short_esketamine_monitoring_is_a_warning_not_a_rejection() -> None:
    session = SessionInput.model_validate(session_body(monitoring_minutes=90))
    write = build_session_write(session)
    assert any("at least 120 minutes" in w and "90 recorded" in w for w in write.warnings)
    assert by_code(resources(session), "monitoring-minutes")[0]["valueQuantity"]["value"] == 90
    ketamine = SessionInput.model_validate(session_body(
        product="ketamine", route="IV", dose_mg_per_kg=0.5, monitoring_minutes=60))
    assert not any("120" in w for w in build_session_write(ketamine).warnings)


def test_resource_shapes() -> None:
    items = resources(SessionInput.model_validate(session_body()))
    bps = by_code(items, "85354-9")
    assert len(bps) == 3
    assert [c["valueQuantity"] for c in bps[1]["component"]] == [
        {"value": 146.0, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
        {"value": 88.0, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}]
    assert bps[0]["category"][0]["coding"][0]["code"] == "vital-signs"
    assert by_code(items, "8867-4")[0]["valueQuantity"]["code"] == "/min"
    spo2 = [r for r in by_code(items, "59408-5") if r["identifier"][0]["value"].endswith("/spo2")]
    assert len(spo2) == 2  # discharge had no SpO2
    assert {c["code"] for c in spo2[0]["code"]["coding"]} == {"59408-5", "2708-6"}
    assert spo2[0]["valueQuantity"]["code"] == "%"
    moaas = by_code(items, "moaas")[0]["valueCodeableConcept"]["coding"][0]
    assert moaas["system"] == CS_MOAAS and moaas["code"] == "4"
    assert by_code(items, "cadss-total")[0]["valueInteger"] == 12
    assert by_code(items, "ready-to-leave")[0]["valueBoolean"] is True
    events = by_code(items, "adverse-event")
    assert [e["valueCodeableConcept"]["coding"][0]["code"] for e in events] == [
        "dissociation", "other"]
    assert events[1]["valueCodeableConcept"]["text"] == "transient metallic taste"
    session = by_code(items, "treatment-session")[0]
    observations = [r for r in items if r["resourceType"] == "Observation"]
    assert len(session["hasMember"]) == len(observations) - 1
    assert session["component"][0]["valueCodeableConcept"]["coding"][0] == {
        "system": CS_SESSION, "code": "esketamine", "display": "Esketamine"}
    values = {i["value"] for r in observations for i in r["identifier"]}
    assert all(v.startswith("Patient/p1/session/S-0001/") for v in values)
    assert len(values) == len(observations)
    provenance = items[-1]
    assert provenance["resourceType"] == "Provenance"
    assert len(provenance["target"]) == len(items) - 1


@pytest.mark.integration
async def test_session_accepted_and_idempotent(fhir_base_url: str) -> None:
    tag = uuid.uuid4().hex[:10]
    pid, dr = f"sess-{tag}", f"dr-{tag}"
    async with FhirClient(fhir_base_url) as fhir:
        await fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": f"{fhir_base_url}/Patient/{pid}",
             "resource": {"resourceType": "Patient", "id": pid},
             "request": {"method": "PUT", "url": f"Patient/{pid}"}},
            {"fullUrl": f"{fhir_base_url}/Practitioner/{dr}",
             "resource": {"resourceType": "Practitioner", "id": dr},
             "request": {"method": "PUT", "url": f"Practitioner/{dr}"}}]}, retry=False)
        session = SessionInput.model_validate(session_body(
            patient_id=pid, practitioner_id=dr, session_id=f"S-{tag}", monitoring_minutes=100))
        first = await write_session(fhir, session)
        second = await write_session(fhir, session)
        assert any("120 minutes" in w for w in first.warnings)
        assert first.result.locations == second.result.locations
        assert second.result.created == 0
        entries = build_session_write(session).entries
        assert first.result.created == len(entries)
        observations = await fhir.count("Observation", [("subject", f"Patient/{pid}")])
        assert observations == sum(e.resource_type == "Observation" for e in entries)
        session_obs = await fhir.read(*first.result.locations[0].split("/"))
        assert session_obs["code"]["coding"][0]["code"] == "treatment-session"
        members = {m["reference"] for m in session_obs["hasMember"]}
        assert members == {loc for loc, e in zip(first.result.locations, entries, strict=True)
                           if e.resource_type == "Observation"} - {first.result.locations[0]}
