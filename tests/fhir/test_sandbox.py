"""The client against the HAPI FHIR sandbox: paging, includes, errors, CodeSystem publishing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from service.errors import FhirNotFound
from service.fhir import capabilities
from service.fhir.client import FhirClient
from service.fhir.codesystems import load_codesystems, publish_codesystems
from tests.fhir.seed import AS_OF, as_bundle, big_patient, expected_server_ids, load

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def big(fhir_base_url: str) -> tuple[str, list[dict[str, object]]]:
    pid = f"big-{uuid.uuid4().hex[:10]}"
    resources = big_patient(pid)
    await load(fhir_base_url, resources)
    return pid, resources


def ids(data: object) -> set[str]:
    return {f"{r.get_resource_type()}/{r.id}" for r in data.resources}  # type: ignore[attr-defined]


async def test_every_page_is_followed(
    fhir_base_url: str, big: tuple[str, list[dict[str, object]]], tmp_path: Path
) -> None:
    pid, resources = big
    capabilities.clear_cache()  # so that this read asks for /metadata itself: a known count
    async with FhirClient(fhir_base_url, page_size=200) as fhir:
        data = await fhir.read_patient_data(pid, as_of=AS_OF, bp_window_days=30)
        sent = fhir.requests_sent
    got = ids(data)
    assert sum(i.startswith(f"Observation/{pid}-bp") for i in got) == 1200
    assert got == expected_server_ids(resources)
    assert data.problems == []
    assert set(data.medications) == {f"Medication/{pid}-med1"}  # via _include
    assert data.patient is not None and data.patient.id == pid
    assert data.versions[f"Observation/{pid}-bp0"] == "1"
    assert sent >= 1 + 6  # at least one page per search, 6 pages of BP
    # exactly: /metadata, the Patient, 6 pages of BP and one page for each of the 6 other
    # searches (MedicationDispense too: HAPI lists it); how long it takes is measured by
    # tests/fhir/measure_gather.py, not asserted
    assert sent == 1 + 1 + 6 + 6

    # The same records as a Bundle file give the same set, less what the server narrowed away.
    path = tmp_path / "big.json"
    path.write_text(json.dumps(as_bundle(fhir_base_url, resources)))
    from service.fhir.bundle import load_bundle

    from_file = load_bundle(path, pid)
    file_ids = {f"{r.get_resource_type()}/{r.id}" for r in from_file.resources}
    assert {i for i in file_ids if "-old" not in i and not i.endswith("-chol")} == got


async def test_unknown_patient(fhir_base_url: str) -> None:
    async with FhirClient(fhir_base_url) as fhir:
        with pytest.raises(FhirNotFound, match="patient not found: Patient/no-such-patient"):
            await fhir.read_patient_data("no-such-patient", as_of=AS_OF, bp_window_days=30)


async def test_codesystems_publish_idempotently(fhir_base_url: str) -> None:
    async with FhirClient(fhir_base_url) as fhir:
        first = await publish_codesystems(fhir)
        second = await publish_codesystems(fhir)
        assert first == second
        assert len(first) == len(load_codesystems()) == 4
        for data in load_codesystems():
            assert await fhir.count("CodeSystem", [("url", data["url"])]) == 1
