"""Prometheus metrics (issue 15): served on their own port only when configured, request counts
and latencies by route template, upstream FHIR requests by operation and outcome, token refresh
outcomes, verdicts per product."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

import httpx
import pytest
import respx
from joserfc.jwk import KeySet, RSAKey
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from service.auth.backend import BackendServicesAuth
from service.config import Settings
from service.errors import FhirTimeout, FhirUnavailable, TokenError
from service.fhir.client import FhirClient
from service.fhir.http import RetryPolicy
from service.main import create_app
from tests.auth.smart_server import Client, SmartTestServer
from tests.servers import free_port

EVALUATE = "/api/v1/screenings/$evaluate"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_are_served_on_their_own_port_and_count_by_route_template(
        make_settings: Callable[..., Settings], auth: Callable[..., dict[str, str]]) -> None:
    port = free_port()
    app = create_app(make_settings(metrics_port=port))
    demo = resources.files("service.demo").joinpath("02-contraindicated.json").read_bytes()
    labels = {"method": "POST", "route": EVALUATE, "status": "200"}
    before = value("ketamine_http_requests_total", **labels)
    ketamine_ci = value("ketamine_verdicts_total", product="ketamine", verdict="contraindicated")
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        for _ in range(2):
            answer = await client.post(EVALUATE, content=demo,
                                       headers={**auth(), "Content-Type": "application/json"})
            assert answer.status_code == 200, answer.text
        assert (await client.get("/metrics")).status_code == 404  # never on the public port
        scraped = scrape(port)
    key = tuple(sorted(labels.items()))
    assert scraped[("ketamine_http_requests_total", key)] == before + 2
    latency = (("method", "POST"), ("route", EVALUATE))
    assert scraped[("ketamine_http_request_duration_seconds_count", latency)] >= 2
    assert scraped[("ketamine_verdicts_total", (("product", "ketamine"),
                                                ("verdict", "contraindicated")))] == ketamine_ci + 2
    assert not any("demo-contraindicated" in str(labels) for _, labels in scraped)  # no ids
    with pytest.raises(httpx.ConnectError):  # the lifespan's end closed the port
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


async def test_without_a_port_nothing_listens(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings())
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        assert (await client.get("/metrics")).status_code == 404


BASE = "http://fhir.metrics.test/fhir"


async def test_fhir_requests_by_operation_and_outcome() -> None:
    ok = {"operation": "read Patient", "outcome": "ok"}
    failed = {"operation": "search Observation", "outcome": "server-error"}
    timeout = {"operation": "search Condition", "outcome": "timeout"}
    before = {k: value("ketamine_fhir_requests_total", **v)
              for k, v in {"ok": ok, "failed": failed, "timeout": timeout}.items()}
    count_before = value("ketamine_fhir_request_duration_seconds_count", operation="read Patient")

    async def no_wait(_: float) -> None:
        return None

    retry = RetryPolicy(max_retries=1, sleep=no_wait)
    with respx.mock(base_url=BASE) as router:
        router.get("/Patient/p-metrics-1").respond(200, json={"resourceType": "Patient",
                                                              "id": "p-metrics-1"})
        router.get("/Observation").respond(503)
        router.get("/Condition").mock(side_effect=httpx.ReadTimeout("slow"))
        async with FhirClient(BASE, settings=Settings(_env_file=None),  # type: ignore[call-arg]
                              retry=retry) as fhir:
            await fhir.read("Patient", "p-metrics-1")
            with pytest.raises(FhirUnavailable):
                await fhir.get_json("Observation", [("patient", "p-metrics-1")],
                                    what="Observation")
            with pytest.raises(FhirTimeout):
                await fhir.get_json("Condition", [("patient", "p-metrics-1")], what="Condition")
    assert value("ketamine_fhir_requests_total", **ok) == before["ok"] + 1
    assert value("ketamine_fhir_requests_total", **failed) == before["failed"] + 2  # one retry
    assert value("ketamine_fhir_requests_total", **timeout) == before["timeout"] + 2
    assert value("ketamine_fhir_request_duration_seconds_count",
                 operation="read Patient") == count_before + 1


async def test_token_outcomes(token_server: SmartTestServer, tmp_path: Path) -> None:
    key = RSAKey.generate_key(2048)
    (tmp_path / "key.pem").write_bytes(key.as_pem(private=True))
    token_server.register_client(Client(
        "metrics-client", [], secret="metrics-secret",
        jwks=KeySet([RSAKey.import_key(key.as_dict(private=False))])))
    endpoint = f"{token_server.base_url}/token"
    keyed = Settings(_env_file=None, client_id="metrics-client",  # type: ignore[call-arg]
                     private_key_file=tmp_path / "key.pem")
    secret_only = Settings(_env_file=None, client_id="metrics-client",  # type: ignore[call-arg]
                           client_secret="a-wrong-secret-of-48-characters-0123456789abcdef")
    before = {o: value("ketamine_token_refresh_total", kind="backend", outcome=o)
              for o in ("ok", "refused", "failed")}
    await BackendServicesAuth(keyed, endpoint).access_token()
    with pytest.raises(TokenError, match="refused"):
        await BackendServicesAuth(secret_only, endpoint).access_token()
    with pytest.raises(TokenError, match="failed"):
        await BackendServicesAuth(keyed, "http://127.0.0.1:9/token").access_token()
    after = {o: value("ketamine_token_refresh_total", kind="backend", outcome=o)
             for o in ("ok", "refused", "failed")}
    assert after == {o: n + 1 for o, n in before.items()}
