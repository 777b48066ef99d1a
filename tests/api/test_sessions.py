"""POST /api/v1/sessions without a FHIR server: scope and validation come first."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.api.conftest import assert_problem
from tests.render.test_session import session_body

URL = "/api/v1/sessions"
Auth = Callable[..., dict[str, str]]


async def test_needs_the_write_scope(api: httpx.AsyncClient, auth: Auth) -> None:
    assert_problem(await api.post(URL, json=session_body()), 401)
    assert_problem(await api.post(URL, json=session_body(), headers=auth()), 403)


@pytest.mark.parametrize(("changes", "hint"), [
    ({"route": "IV"}, "dose_mg_per_kg"),
    ({"dose_mg": -1}, "dose_mg"),
    ({"patient_id": "a/b"}, "patient_id"),
    ({"fhir_base": "https://evil.example"}, "fhir_base"),
])
async def test_invalid_sessions_are_422(api: httpx.AsyncClient, auth: Auth,
                                        changes: dict[str, object], hint: str) -> None:
    resp = await api.post(URL, json=session_body(**changes), headers=auth(scope="ketamine.write"))
    assert hint in assert_problem(resp, 422)["detail"]
