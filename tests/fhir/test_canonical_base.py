"""KETAMINE_CANONICAL_BASE: everything the app writes, searches for and publishes is named on the
configured base; production refuses example and test domains, development takes the default."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from service.config import Settings
from service.config_report import production_problems
from service.errors import ConfigError
from service.fhir import codesystems
from service.fhir.client import FhirClient
from service.fhir.codesystems import (
    BASE,
    CS_SESSION,
    canonical,
    canonical_base,
    display,
    publish_codesystems,
    use_canonical_base,
)
from service.fhir.transaction import TxEntry, build_transaction
from service.main import create_app
from service.render.cds import cards_for
from service.render.course_read import read_course_records, split_resources
from service.render.integration import IntegrationInput, build_integration_write
from service.render.phq9 import Phq9Input, build_phq9_write
from service.render.rems_form import SubmissionInput, build_submission_write
from service.render.session import build_session_write
from service.render.session_input import SessionInput
from service.render.writeback import build_screening_write
from service.screening.ruleset import load_ruleset
from service.workflow import read_course, write_session
from tests.render.test_session import session_body
from tests.render.test_writeback import REFS, result

CLINIC = "https://screening.clinic-zurich.ch/fhir"
NOW = datetime(2026, 6, 16, 12, 0, tzinfo=UTC)
T = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
DEFAULT_HOST = "ketamine-screen.example.org"


@pytest.fixture
def clinic_base() -> Iterator[str]:
    use_canonical_base(CLINIC)
    yield CLINIC
    use_canonical_base(None)


def _production(**changes: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "production", "base_url": "https://ketamine.clinic.example",
        "redirect_uri": "https://ketamine.clinic.example/callback",
        "allowed_issuers": ["https://ehr.clinic.example/fhir"],
        "client_secret": "a-real-secret-of-some-length",
        "log_pseudonym_key": "3b9f0c1e6a7d4e2f8a5b0c9d1e2f3a4b",
        "session_keys": ["zzkV2AswDA352tDrgR_W1ww04ZXGhj2Fv9HG8LcDiJ4="],
        "canonical_base": CLINIC, **changes}
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def _every_write() -> list[list[TxEntry]]:
    """Each transaction the app sends: a session, its REMS form submitted, an integration
    session, a PHQ-9 and a screening result."""
    session = SessionInput.model_validate(session_body(product="esketamine"))
    written = build_session_write(session, now=NOW).entries
    task = next(e for e in written if e.resource_type == "Task")
    task_json = task.resource.model_dump(mode="json", exclude_none=True)
    submission = SubmissionInput(submitted_on=date(2026, 6, 5), submitted_by="Sam")
    return [written, build_submission_write(task_json, submission, now=NOW),
            build_integration_write(IntegrationInput(
                integration_id="i1", patient_id="p1", start=T, minutes=50,
                modality="individual", clinician="Dr Chen", follows="Observation/42"), now=NOW),
            build_phq9_write(Phq9Input(response_id="r1", patient_id="p1", answered_at=T,
                                       answers=[1] * 9), now=NOW),
            build_screening_write(result("p1", REFS), practitioner="dr1", now=NOW).entries]


def _bundles() -> list[dict[str, Any]]:
    return [build_transaction(entries).model_dump(mode="json", exclude_none=True)
            for entries in _every_write()]


def _ours(value: Any) -> list[str]:
    """Every system, url and conditional URL of the project's, in a bundle's JSON."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in ("system", "url", "ifNoneExist") and isinstance(inner, str) \
                    and ("ketamine-screen" in inner or "clinic-zurich" in inner):
                found.append(inner)
            found.extend(_ours(inner))
    elif isinstance(value, list):
        for inner in value:
            found.extend(_ours(inner))
    return found


def test_every_written_identifier_and_code_follows_the_configured_base(
        clinic_base: str) -> None:
    bundle = _bundles()
    text = json.dumps(bundle)
    assert DEFAULT_HOST not in text
    ours = _ours(bundle)
    systems = {s.split("|")[0].split("=")[-1] for s in ours}
    assert systems >= {f"{CLINIC}/identifier/{what}" for what in (
        "session", "phq9", "integration", "screening", "detected-issue", "provenance", "app")}
    assert systems >= {f"{CLINIC}/CodeSystem/{name}" for name in ("session", "screening",
                                                                 "moaas")}
    assert all(s.startswith(CLINIC + "/") for s in systems)


def test_the_default_base_is_written_when_none_is_configured() -> None:
    bundle = _bundles()
    assert canonical_base() == BASE
    assert all(s.startswith(BASE + "/") or s.split("=", 1)[-1].startswith(BASE + "/")
               for s in _ours(bundle))
    assert "clinic-zurich" not in json.dumps(bundle)


def test_what_was_written_on_the_configured_base_reads_back(clinic_base: str) -> None:
    session, _, integration, phq9, _ = _every_write()
    entries = [*session, *integration, *phq9]
    resources = []
    for n, entry in enumerate(entries):
        body = entry.resource.model_dump(mode="json", exclude_none=True)
        resources.append({**body, "id": f"r{n}"})
    course = read_course_records(split_resources(resources), [])
    assert [s.session_id for s in course.sessions] == ["S-0001"]
    assert [t.session_id for t in course.tasks] == ["S-0001"]
    assert [i.modality for i in course.integrations] == ["individual"]
    assert display(canonical(CS_SESSION), "individual") == display(CS_SESSION, "individual")


def test_cds_cards_name_the_configured_base(clinic_base: str) -> None:
    ruleset, _ = load_ruleset("v1")
    cards = cards_for(result("p1", REFS), hook_instance="h1", base_url="https://app.test",
                      ruleset=ruleset)
    text = json.dumps(cards)
    assert cards and DEFAULT_HOST not in text and f"{CLINIC}/CodeSystem/" in text


async def test_codesystems_are_published_under_the_configured_base(clinic_base: str) -> None:
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((request.url.params["url"], body["url"]))
        return httpx.Response(200, json={**body, "id": body["url"].rsplit("/", 1)[1]})

    async with FhirClient("https://fhir.test/fhir", transport=httpx.MockTransport(handler),
                          settings=Settings(_env_file=None)) as fhir:  # type: ignore[call-arg]
        published = await publish_codesystems(fhir)
    assert len(published) == len(codesystems.load_codesystems()) == len(seen)
    assert all(query == url and url.startswith(f"{CLINIC}/CodeSystem/") for query, url in seen)


@pytest.mark.parametrize("base", [
    "http://ketamine-screen.example.org/fhir", "https://example.com", "https://fhir.example.net",
    "https://screening.example.ch/fhir", "https://screening.clinic.test/fhir",
    "https://localhost/fhir", "https://fhir.invalid", "https://app.example",
])
def test_production_refuses_example_and_test_domains(base: str) -> None:
    settings = _production(canonical_base=base)
    problems = production_problems(settings)
    assert len(problems) == 1 and problems[0].startswith("KETAMINE_CANONICAL_BASE is on ")
    with pytest.raises(ConfigError, match="KETAMINE_CANONICAL_BASE is on"):
        create_app(settings)


def test_production_takes_the_clinics_own_domain_and_applies_it() -> None:
    assert production_problems(_production()) == []
    create_app(_production(canonical_base=CLINIC + "/"))
    assert canonical_base() == CLINIC  # the trailing slash is not part of the base


def test_development_takes_the_default() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.canonical_base == BASE
    create_app(settings)
    assert canonical_base() == BASE


@pytest.mark.parametrize("base", ["ftp://screening.clinic.ch", "screening.clinic.ch/fhir",
                                  "https://screening.clinic.ch/fhir?x=1",
                                  "https://user:pw@screening.clinic.ch", "https:///fhir"])
def test_a_base_that_is_not_a_plain_http_url_is_refused_everywhere(base: str) -> None:
    with pytest.raises(ValueError, match="KETAMINE_CANONICAL_BASE must be an http"):
        Settings(_env_file=None, canonical_base=base)  # type: ignore[call-arg]


@pytest.mark.integration
async def test_hapi_finds_a_session_written_on_the_configured_base(
        fhir_base_url: str, clinic_base: str) -> None:
    pid = f"base-{uuid.uuid4().hex[:10]}"
    async with FhirClient(fhir_base_url) as fhir:
        await fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": f"{fhir_base_url}/Patient/{pid}",
             "resource": {"resourceType": "Patient", "id": pid},
             "request": {"method": "PUT", "url": f"Patient/{pid}"}}]}, retry=False)
        session = SessionInput.model_validate(session_body(patient_id=pid, practitioner_id=None))
        first = await write_session(fhir, session)
        again = await write_session(fhir, session)
        assert again.result.created == 0 and first.result.locations == again.result.locations
        course = await read_course(fhir, pid)
        assert [s.session_id for s in course.sessions] == ["S-0001"]
        stored = await fhir.read("Observation", first.result.locations[0].split("/")[1])
        assert stored["identifier"][0]["system"] == f"{CLINIC}/identifier/session"
