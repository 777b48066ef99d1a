"""A 403 from a scope-enforcing EHR (issue 14): FhirForbidden names the missing scope when the
server's OperationOutcome names one, says whether anything was written, and whom to ask.

Only the scope-looking token is taken from the server's text; the class, not the text, decides
the answer's status. respx stands in for the EHR; tests/ui/test_scope_enforcement.py does the
same against the HAPI sandbox behind the enforcing test EHR.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from service.config import Settings
from service.errors import FhirAuthError, FhirForbidden
from service.fhir.client import FhirClient

BASE = "https://fhir.test/fhir"
TRANSACTION = {"resourceType": "Bundle", "type": "transaction", "entry": [
    {"request": {"method": "POST", "url": "Provenance", "ifNoneExist": "_tag=s|v"},
     "resource": {"resourceType": "Provenance"}}]}
ASK = "ask the EHR administrator to grant"


def forbidden(text: str | None) -> httpx.Response:
    if text is None:
        return httpx.Response(403, text="Forbidden")
    return httpx.Response(403, json={"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "forbidden", "diagnostics": text}]})


async def _raised(answer: httpx.Response, call: str, **kwargs: Any) -> FhirForbidden:
    with respx.mock(base_url=BASE) as mock:
        mock.route().return_value = answer
        async with FhirClient(BASE, settings=Settings(fhir_max_retries=0)) as fhir:
            with pytest.raises(FhirForbidden) as info:
                await getattr(fhir, call)(**kwargs)
        assert mock.calls.call_count == 1  # a refusal is not retried
    return info.value


async def test_a_refused_transaction_names_the_scope_and_says_nothing_was_written() -> None:
    err = await _raised(forbidden("scope patient/Provenance.c is required for POST Provenance"),
                        "transaction", bundle=TRANSACTION, retry=True)
    assert err.scope == "patient/Provenance.c"
    assert err.status == 403 and err.http_status == 502 and err.problem_type == "fhir-forbidden"
    assert isinstance(err, FhirAuthError)
    assert str(err) == (
        "The EHR refused transaction (403): scope patient/Provenance.c is required for POST "
        "Provenance. Nothing was written: a FHIR transaction is all or nothing. The app lacks "
        f"the scope patient/Provenance.c: {ASK} patient/Provenance.c to this app, then launch "
        "it again.")


async def test_a_refused_read_names_the_scope_and_no_write() -> None:
    err = await _raised(forbidden("Insufficient scope: need user/Condition.rs for this"),
                        "search", resource_type="Condition", params=[("patient", "p1")])
    assert err.scope == "user/Condition.rs"
    assert "Nothing was written" not in str(err)
    assert str(err).startswith("The EHR refused Condition (403): Insufficient scope")
    assert f"{ASK} user/Condition.rs to this app" in str(err)


@pytest.mark.parametrize("text", [None, "Access denied by policy"],
                         ids=["no OperationOutcome", "no scope named"])
async def test_a_refusal_naming_no_scope_still_says_what_to_do(text: str | None) -> None:
    err = await _raised(forbidden(text), "transaction", bundle=TRANSACTION, retry=True)
    assert err.scope is None
    assert "Nothing was written: a FHIR transaction is all or nothing." in str(err)
    assert (f"{ASK} this app every scope its documentation lists, then launch it again."
            in str(err))
    if text is None:
        assert "HTTP 403 without an OperationOutcome" in str(err)


async def test_a_refused_conditional_update_says_nothing_was_written() -> None:
    err = await _raised(forbidden("scope patient/Task.u is required for PUT Task"), "update",
                        url="Task", resource={"resourceType": "Task"},
                        params=[("identifier", "s|v")])
    assert err.scope == "patient/Task.u"
    assert "Nothing was written: the server refused the update." in str(err)
