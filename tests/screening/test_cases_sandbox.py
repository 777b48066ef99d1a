"""The synthetic-patient table through a real FHIR server (the HAPI sandbox) over HTTP.

Every case is loaded with one transaction, read back with the service's FHIR client and screened;
the result must equal the Bundle path's, finding for finding and record for record.
"""

from __future__ import annotations

from typing import Any

import pytest

from service.fhir.bundle import parse_bundle
from service.fhir.client import FhirClient
from service.screening.engine import screen
from tests.builders import AS_OF
from tests.screening.cases import CASES, Case
from tests.screening.test_cases import check

pytestmark = pytest.mark.integration


def _transaction(cases: list[Case], base: str) -> dict[str, Any]:
    entries = []
    for case in cases:
        for resource in [case.patient.patient(), *case.patient.resources]:
            url = f"{resource['resourceType']}/{resource['id']}"
            entries.append({"fullUrl": f"{base}/{url}", "resource": resource,
                            "request": {"method": "PUT", "url": url}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@pytest.fixture(scope="module")
async def loaded(fhir_base_url: str) -> str:
    # Several transactions of a few cases each: one of ~1,300 resources outlasts the client's
    # timeout on a loaded machine.
    async with FhirClient(fhir_base_url) as client:
        for start in range(0, len(CASES), 25):
            await client.transaction(_transaction(CASES[start:start + 25], fhir_base_url),
                                     retry=True)
    return fhir_base_url


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_case_through_the_sandbox(case: Case, loaded: str) -> None:
    async with FhirClient(loaded) as client:
        raw = await client.read_patient_data(case.patient.pid, as_of=AS_OF, bp_window_days=30)
    from_server = screen(raw, AS_OF)
    check(case, from_server)
    from_bundle = screen(parse_bundle(case.patient.bundle(), "bundle"), AS_OF)
    assert from_server.as_contract() == from_bundle.as_contract()
