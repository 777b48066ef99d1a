"""Example payloads for the OpenAPI contract: what a caller sends and gets back, in the shapes
the routes produce (``tests/test_openapi.py`` checks each against its schema)."""

from __future__ import annotations

from typing import Any

__all__ = ["CDS_REQUEST", "CDS_RESPONSE", "FEEDBACK", "SCREENING", "SCREENING_REQUEST",
           "SESSION_REQUEST", "SESSION_WRITTEN", "json_example"]


def json_example(example: Any, description: str | None = None,
                 media_type: str = "application/json") -> dict[str, Any]:
    """A ``responses`` entry whose content carries ``example``."""
    answer: dict[str, Any] = {"content": {media_type: {"example": example}}}
    if description:
        answer["description"] = description
    return answer


SCREENING_REQUEST = {"patient": "123", "as_of": "2026-11-27T09:00:00Z", "write_back": False}

SCREENING: dict[str, Any] = {
    "patient": "Patient/123", "as_of": "2026-11-27T09:00:00Z", "ruleset": "v2",
    "products": ["ketamine", "esketamine"], "verdict": "needs-review",
    "verdicts": {"ketamine": "needs-review", "esketamine": "needs-review"},
    "thresholds": {"bp_window_days": 30, "bp_systolic_uncontrolled": 180.0,
                   "bp_diastolic_uncontrolled": 100.0, "bp_systolic_elevated": 140.0,
                   "bp_diastolic_elevated": 90.0, "bp_systolic_guide_65": 150.0,
                   "bp_diastolic_guide_65": 90.0, "trial_min_days": 42,
                   "eligibility_lookback_days": 730},
    "findings": [{
        "kind": "interaction", "rule": "ix-benzodiazepines", "severity": "major",
        "summary": "Benzodiazepines (major): lorazepam 1 MG Oral Tablet. Sedation and "
                   "respiratory depression.",
        "evidence": ["MedicationStatement/m1"],
        "source": "SPRAVATO-PI Drug Interactions (CNS depressants); ANDRADE-2017; CDC-VS",
        "products": ["ketamine", "esketamine"]}],
    "eligibility": {"status": "not-documented", "diagnosis": ["Condition/c1"], "trials": [],
                    "classes": 0,
                    "missing": ["no antidepressant trial of at least 42 days in this episode"],
                    "summary": "Treatment-resistant depression not documented: no antidepressant "
                               "trial of at least 42 days in this episode.",
                    "episode_start": "2026-03-02", "other_exposures": [], "suicidality": [],
                    "source": "SPRAVATO-PI Indications; PAYER-TRD; APA-2017"},
}

_VITALS = {"systolic": 128, "diastolic": 80, "heart_rate": 72, "spo2": 98}
SESSION_REQUEST: dict[str, Any] = {
    "session_id": "S-0001", "patient_id": "123", "practitioner_id": "dr1",
    "product": "esketamine", "route": "intranasal", "dose_at": "2026-11-27T09:10:00+01:00",
    "dose_mg": 56,
    "pre_dose": {"at": "2026-11-27T09:00:00+01:00", **_VITALS},
    "at_40_min": {"at": "2026-11-27T09:50:00+01:00", **_VITALS, "systolic": 146},
    "discharge": {"at": "2026-11-27T11:15:00+01:00", **_VITALS},
    "moaas": 4, "cadss_total": 12, "adverse_events": [{"code": "dissociation"}],
    "monitoring_minutes": 125, "ready_to_leave": True,
    # The rest of the Spravato REMS Patient Monitoring Form (required for esketamine).
    "lot_number": "LOT-25B204", "vitals_ok_pre_dose": True, "vitals_ok_end": True,
    "ready_at": "2026-11-27T11:10:00+01:00", "respiratory_depression": False, "lowest_spo2": 96,
    "monitoring_clinician": "R. Nurse, RN", "setting": "Example Clinic, REMS-certified",
    "concomitant": {"benzodiazepines": False, "sedative-hypnotics": False,
                    "psychostimulants": False, "maois": False},
}

SESSION_WRITTEN = {"written": ["Observation/901", "Observation/902", "Provenance/903"],
                   "created": 3, "warnings": []}

CDS_REQUEST: dict[str, Any] = {
    "hook": "order-sign", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    "fhirServer": "https://ehr.example.org/fhir",
    "fhirAuthorization": {"access_token": "eyJhbGciOi...", "token_type": "Bearer",
                          "expires_in": 300, "scope": "patient/*.rs",
                          "subject": "ketamine-screen"},
    "context": {"userId": "Practitioner/dr1", "patientId": "123", "draftOrders": {
        "resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
            "resourceType": "MedicationRequest", "id": "draft-1", "status": "draft",
            "intent": "order", "subject": {"reference": "Patient/123"},
            "medicationCodeableConcept": {"coding": [{
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "2201623",
                "display": "esketamine 28 MG nasal spray"}]}}}]}},
}

CDS_RESPONSE = {"cards": [{
    "uuid": "9368d37b-283f-44a0-93ea-547cebab93ed",
    "summary": "Interaction: Benzodiazepines (major): lorazepam 1 MG Oral Tablet",
    "indicator": "warning", "source": {"label": "Ketamine screening"},
    "detail": "Sedation and respiratory depression. Source: SPRAVATO-PI Drug Interactions."}]}

FEEDBACK = {"feedback": [{"card": "9368d37b-283f-44a0-93ea-547cebab93ed",
                          "outcome": "overridden", "outcomeTimestamp": "2026-11-27T09:12:00Z"}]}
