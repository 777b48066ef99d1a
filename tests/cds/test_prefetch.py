"""The fetch stage on its own (service.fhir.prefetch), the draft-order check
(service.screening.orders) and the override-reason CodeSystem: no app; respx only to prove no call
is made and to inject a 503."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from service.clients import FhirClients
from service.config import Settings
from service.errors import PrefetchIncomplete
from service.fhir.client import FhirClient
from service.fhir.codesystems import CS_CDS_OVERRIDE_REASON, display, load_codesystems
from service.fhir.prefetch import PREFETCH, draft_orders, gather_records
from service.render.cds import OVERRIDE_REASONS
from service.screening.orders import holds_ketamine
from tests.cds.conftest import ESKETAMINE, SERTRALINE, draft_order, prefetch_for, recent_patient

EHR = "https://ehr.example.org/fhir"


@pytest.fixture
def ehr_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(allowed_issuers=[EHR], fhir_max_retries=0)


def connect(settings: Settings, fhir_server: str | None,
            access_token: str | None) -> Callable[[], FhirClient]:
    return lambda: FhirClients(settings).cds(fhir_server, access_token)


def _empty_search() -> httpx.Response:
    return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "total": 0})


async def test_full_prefetch_needs_no_server(ehr_settings: Settings) -> None:
    patient = recent_patient("pf-full")
    patient.condition("I71.4", "Abdominal aortic aneurysm")
    with respx.mock(assert_all_called=False) as mock:
        found = await gather_records(prefetch_for(patient), PREFETCH, patient.pid,
                                     connect=connect(ehr_settings, None, None))
    assert not mock.calls
    assert {"Patient", "Condition", "Observation"} <= {
        r.get_resource_type() for r in found.resources}


async def test_missing_key_without_a_server_is_incomplete(ehr_settings: Settings) -> None:
    partial = prefetch_for(recent_patient("pf-missing"))
    del partial["conditions"]
    with pytest.raises(PrefetchIncomplete, match="no fhirServer"):
        await gather_records(partial, PREFETCH, "pf-missing",
                             connect=connect(ehr_settings, None, None))
    with pytest.raises(PrefetchIncomplete, match="not one of the FHIR servers"):
        await gather_records(partial, PREFETCH, "pf-missing", connect=connect(
            ehr_settings, "https://elsewhere.example/fhir", "t"))


async def test_server_failure_is_incomplete(ehr_settings: Settings) -> None:
    with respx.mock(base_url=EHR, assert_all_called=False) as mock:
        mock.get(url__regex=r".*").mock(return_value=httpx.Response(503))
        with pytest.raises(PrefetchIncomplete, match="the FHIR server failed"):
            await gather_records({}, PREFETCH, "pf-down", connect=connect(ehr_settings, EHR, "t"))


def _orders(*orders: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": o} for o in orders]}


def test_holds_ketamine_honours_selections() -> None:
    orders = _orders(draft_order("p", ESKETAMINE, "a"), draft_order("p", SERTRALINE, "b"))
    assert holds_ketamine(draft_orders(orders, None, "p"))
    assert holds_ketamine(draft_orders(orders, ["MedicationRequest/a"], "p"))
    assert not holds_ketamine(draft_orders(orders, ["MedicationRequest/b"], "p"))
    assert not holds_ketamine(draft_orders(_orders(draft_order("p", SERTRALINE)), None, "p"))


def test_override_reasons_are_the_codesystem() -> None:
    system = next(cs for cs in load_codesystems() if cs["url"] == CS_CDS_OVERRIDE_REASON)
    assert [c["code"] for c in system["concept"]] == [code for code, _ in OVERRIDE_REASONS]
    for code, text in OVERRIDE_REASONS:
        assert display(CS_CDS_OVERRIDE_REASON, code) == text
