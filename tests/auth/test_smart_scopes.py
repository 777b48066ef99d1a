"""The test EHR's scope enforcement (tests/auth/smart_scopes.py): which request needs which scope,
and which granted scopes cover it. No HAPI, no network."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import pytest

from tests.auth.conftest import CLIENT_ID
from tests.auth.flow import authorize, callback
from tests.auth.smart_grants import Grant
from tests.auth.smart_scopes import Check, check_request, covers, granted_permissions, needed_checks
from tests.auth.smart_server import SmartTestServer


def _needs(method: str, path: str, query: str = "", body: Any = None,
           headers: dict[str, str] | None = None) -> list[tuple[str, str]]:
    return [(c.rtype, c.interaction)
            for _, c in needed_checks(method, path, query, headers or {}, body)]


@pytest.mark.parametrize(("method", "path", "query", "needs"), [
    ("GET", "metadata", "", []),
    ("GET", "", "_getpages=abc&_getpagesoffset=10", []),
    ("GET", "Patient/p1", "", [("Patient", "r")]),
    ("GET", "Patient/p1/_history/2", "", [("Patient", "r")]),
    ("GET", "Condition", "patient=p1", [("Condition", "s")]),
    ("POST", "Condition/_search", "", [("Condition", "s")]),
    ("POST", "Device", "", [("Device", "c")]),
    ("PUT", "Task/t1", "", [("Task", "u")]),
    ("PUT", "Task", "identifier=s|v", [("Task", "u")]),
    ("PATCH", "Task/t1", "", [("Task", "u")]),
    ("DELETE", "Task/t1", "", [("Task", "d")]),
    ("GET", "Patient/p1/$everything", "", [("Patient", "r")]),
    ("GET", "Group/g1/$export", "", [("Group", "r")]),
    ("GET", "$export", "", [("*", "s")]),
    ("GET", "", "_type=Patient", [("*", "s")]),
    ("GET", "_history", "", [("*", "s")]),
])
def test_each_interaction_needs_its_letter(method: str, path: str, query: str,
                                           needs: list[tuple[str, str]]) -> None:
    assert _needs(method, path, query) == needs


def test_a_conditional_create_needs_create_only() -> None:
    assert _needs("POST", "Observation", headers={"If-None-Exist": "identifier=s|v"}) == [
        ("Observation", "c")]


def test_each_bundle_entry_is_checked() -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "Observation", "ifNoneExist": "identifier=s|1"}},
        {"request": {"method": "PUT", "url": "Task?identifier=s|2"}},
        {"request": {"method": "GET", "url": "Patient/p1"}},
        {"request": {"method": "GET", "url": "Condition?patient=p1"}},
        {"request": {"method": "DELETE", "url": "Procedure/x"}},
        {"resource": {"resourceType": "Patient"}},
    ]}
    assert _needs("POST", "", body=bundle) == [
        ("Observation", "c"), ("Task", "u"), ("Patient", "r"), ("Condition", "s"),
        ("Procedure", "d"), ("*", "c")]
    batch = {**bundle, "type": "batch"}
    assert _needs("POST", "", body=batch) == _needs("POST", "", body=bundle)
    # A Bundle POSTed to its own type is a create of a Bundle, not a transaction.
    assert _needs("POST", "Bundle", body=bundle) == [("Bundle", "c")]


@pytest.mark.parametrize(("scope", "letters"), [
    ("patient/Observation.rs", "rs"),
    ("patient/Observation.cruds", "cruds"),
    ("user/Observation.cu", "cu"),
    ("system/Observation.s", "s"),
    ("patient/Observation.read", "rs"),
    ("patient/Observation.write", "cud"),
    ("patient/Observation.*", "cruds"),
    ("patient/Observation.sr", ""),  # out of order: not a v2 string
    ("patient/Observation.rr", ""),
    ("patient/Observation.x", ""),
    ("patient/Observation.rs?category=laboratory", ""),  # granular: granted nothing here
    ("Observation.rs", ""),
    ("launch/patient", ""),
    ("openid", ""),
])
def test_permission_strings(scope: str, letters: str) -> None:
    assert granted_permissions([scope]).get("Observation", set()) == set(letters)


def test_wildcard_type_covers_every_type() -> None:
    assert covers(["patient/*.rs"], "Device", "r")
    assert covers(["system/*.read"], "Condition", "s")
    assert not covers(["patient/*.rs"], "Device", "c")
    assert covers(["patient/*.write"], "Device", "c")
    assert covers(["user/*.*"], "Task", "d")


def test_scopes_add_up_across_levels_and_forms() -> None:
    scopes = ["patient/Task.rs", "user/Task.u", "system/Task.write"]
    assert all(covers(scopes, "Task", letter) for letter in "cruds")
    assert not covers(["patient/Task.rs", "patient/Task.u"], "Task", "c")


def test_one_uncovered_entry_refuses_the_whole_bundle_and_names_the_scope() -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "POST", "url": "Provenance"}},
        {"request": {"method": "POST", "url": "DetectedIssue"}},
    ]}
    needs = needed_checks("POST", "", "", {}, bundle)
    refusal = check_request(["patient/Observation.c", "patient/DetectedIssue.write"], "patient",
                            needs)
    assert refusal is not None
    assert refusal.entry == 1 and refusal.check == Check("Provenance", "c", "POST Provenance")
    assert refusal.diagnostics == (
        "scope patient/Provenance.c is required for POST Provenance (Bundle entry 1)")
    assert check_request(["patient/*.c"], "patient", needs) is None


def test_a_plain_refusal_names_the_method_and_type() -> None:
    needs = needed_checks("POST", "Device", "", {}, {"resourceType": "Device"})
    refusal = check_request(["patient/Observation.c"], "patient", needs)
    assert refusal is not None
    assert refusal.diagnostics == "scope patient/Device.c is required for POST Device"


# -- The proxy itself (the test EHR without a FHIR upstream: what passes the check answers 404) --

async def test_the_proxy_refuses_before_forwarding_and_logs_each_check() -> None:
    # Its own server: the shared one can still be answering a request an earlier test left
    # behind, and that check would land in the log this test reads.
    smart_server = SmartTestServer().start()
    try:
        await _refuses_before_forwarding(smart_server)
    finally:
        smart_server.stop()


async def _refuses_before_forwarding(smart_server: SmartTestServer) -> None:
    token = secrets.token_urlsafe(16)
    grant = Grant(client_id=CLIENT_ID, scope="launch patient/Observation.rs",
                  user={"sub": "u", "patient": "p1"})
    smart_server.state.access_tokens[token] = (time.time() + 60, grant)
    mark = len(smart_server.state.scope_checks)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": "Observation?patient=p1"}},
        {"request": {"method": "POST", "url": "Device"}}]}
    async with httpx.AsyncClient(base_url=smart_server.fhir_base,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        allowed = await http.get("/Observation", params={"patient": "p1"})
        refused = await http.post("", json=bundle)
        metadata = await http.get("/metadata")
    assert allowed.status_code == 404  # checked, then sent on (there is no upstream here)
    assert metadata.status_code == 404
    assert refused.status_code == 403
    assert refused.json()["issue"] == [{"severity": "error", "code": "forbidden", "diagnostics": (
        "scope patient/Device.c is required for POST Device (Bundle entry 1)")}]
    assert smart_server.state.scope_checks[mark:] == [
        ("Observation", "s", True), ("Observation", "s", True), ("Device", "c", False)]


async def test_withheld_scopes_are_left_out_of_the_grant(
        app_client: httpx.AsyncClient, browser_http: httpx.AsyncClient,
        smart_server: SmartTestServer) -> None:
    smart_server.state.withhold_scopes = {"patient/Provenance.c"}
    try:
        cb, asked = await authorize(app_client, browser_http, "/launch", {
            "iss": smart_server.fhir_base, "launch": smart_server.new_launch("withheld")})
        done = await callback(app_client, cb)
    finally:
        smart_server.state.withhold_scopes = set()
    assert done.status_code == 303, done.text
    granted = smart_server.state.refresh_tokens[
        next(reversed(smart_server.state.refresh_tokens))].scope.split()
    assert "patient/Provenance.c" in asked["scope"].split()
    assert set(granted) == set(asked["scope"].split()) - {"patient/Provenance.c"}
