"""Bulk Data export client and the population run, against a scripted server (no network)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from rich.console import Console

from service.config import get_settings
from service.errors import FhirProtocolError, FhirUnavailable
from service.fhir.bulk import start_export
from service.fhir.client import FhirClient
from service.fhir.http import RetryPolicy
from service.fhir.spill import Spill
from service.population import Progress
from service.screening.model import ScreeningResult
from service.terminal import TerminalProgress
from service.workflow import screen_population
from tests.builders import AS_OF, PatientBuilder

BASE = "https://ehr.example.org/fhir"
STATUS = f"{BASE}/$export-poll-status?_jobId=1"
EXPORT_OP = {"rest": [{"mode": "server", "operation": [{"name": "export"}],
                       "resource": [{"type": "Group", "operation": [{"name": "export"}]}]}]}


def ndjson(resources: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in resources)


class Broken(httpx.AsyncByteStream):
    """Half a file, then the connection drops."""

    def __init__(self, head: bytes) -> None:
        self.head = head

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        raise httpx.ReadError("connection reset by peer")


class Script:
    """A Bulk Data server: two polls in progress, then a manifest of one file per type."""

    def __init__(self, files: dict[str, list[dict[str, Any]]], *, statement: dict[str, Any]
                 | None = None, kick_off: int = 202, broken_once: str | None = None,
                 status_headers: list[dict[str, str]] | None = None,
                 file_base: str = BASE, requires_token: bool = True) -> None:
        self.files = files
        self.statement = EXPORT_OP if statement is None else statement
        self.kick_off = kick_off
        self.broken_once = broken_once
        self.polls = status_headers if status_headers is not None else [
            {"X-Progress": "10%", "Retry-After": "3"}, {"X-Progress": "60%"}]
        self.file_base = file_base
        self.requires_token = requires_token
        self.seen: list[str] = []
        self.deleted = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.seen.append(f"{request.method} {request.url.path}")
        if request.url.path.endswith("/metadata"):
            return httpx.Response(200, json={"resourceType": "CapabilityStatement",
                                             **self.statement})
        if request.url.path.endswith("$export"):
            assert request.headers["Prefer"] == "respond-async"
            return httpx.Response(self.kick_off, headers={"Content-Location": STATUS})
        if url == STATUS and request.method == "DELETE":
            self.deleted = True
            return httpx.Response(202)
        if url == STATUS:
            if self.polls:
                return httpx.Response(202, headers=self.polls.pop(0))
            return httpx.Response(200, json={
                "transactionTime": "2026-06-15T12:00:00Z", "request": url,
                "requiresAccessToken": self.requires_token,
                "output": [{"type": t, "url": f"{self.file_base}/Binary/{t}"}
                           for t in self.files], "error": []})
        kind = request.url.path.rsplit("/", 1)[-1]
        if request.url.path.startswith("/fhir/Binary/"):
            assert request.headers["Accept"] == "application/fhir+ndjson"
            body = ndjson(self.files[kind])
            if kind == self.broken_once:
                self.broken_once = None
                return httpx.Response(200, stream=Broken(body[: len(body) // 2]))
            return httpx.Response(200, content=body)
        if request.url.path == "/fhir/Medication":
            return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset"})
        return httpx.Response(404, json={"resourceType": "OperationOutcome", "issue": []})


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> FhirClient:
    return FhirClient(BASE, transport=httpx.MockTransport(handler),
                      retry=RetryPolicy(max_retries=0))


def population() -> dict[str, list[dict[str, Any]]]:
    a, b = PatientBuilder("a"), PatientBuilder("b")
    a.condition("I71.4", "Abdominal aortic aneurysm")
    b.medication("6813", "methadone", form="referenced")
    everyone = [a.patient(), *a.resources, b.patient(), *b.resources]
    files: dict[str, list[dict[str, Any]]] = {}
    for resource in everyone:
        files.setdefault(resource["resourceType"], []).append(resource)
    return files


async def test_kick_off_poll_and_stream() -> None:
    script = Script(population())
    waits: list[float] = []
    progress: list[str] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with client_for(script) as client:
        job = await start_export(client, sleep=sleep)
        assert job is not None
        manifest = await job.wait(progress.append)
        lines = [line for f in manifest.output async for line in job.lines(f, manifest)]
    assert waits == [3.0, 1.0]  # Retry-After honoured; then the backoff (0.5 s, doubled)
    assert progress == ["10%", "60%"]
    assert {f.type for f in manifest.output} == {"Patient", "Condition", "Observation",
                                                 "Medication", "MedicationStatement"}
    assert len(lines) == sum(len(v) for v in population().values())
    kick_off = next(s for s in script.seen if s.endswith("$export"))
    assert kick_off == "GET /fhir/$export"


async def test_a_long_retry_after_is_capped() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    script = Script({}, status_headers=[{"Retry-After": "120"}])  # HAPI's constant answer
    async with client_for(script) as client:
        job = await start_export(client, group="g1", max_poll_interval=2.0, sleep=sleep)
        assert job is not None
        await job.wait()
    assert waits == [2.0]
    assert "GET /fhir/Group/g1/$export" in script.seen


@pytest.mark.parametrize("kick_off", [404, 405, 501])
async def test_no_export_on_kick_off(kick_off: int) -> None:
    async with client_for(Script({}, kick_off=kick_off)) as client:
        assert await start_export(client) is None


async def test_no_export_in_the_capability_statement() -> None:
    script = Script({}, statement={"rest": [{"mode": "server", "operation": []}]})
    async with client_for(script) as client:
        assert await start_export(client) is None
    assert not any("$export" in s for s in script.seen)


async def test_a_failing_kick_off_is_an_error() -> None:
    async with client_for(Script({}, kick_off=500)) as client:
        with pytest.raises(FhirUnavailable, match=r"\$export \(500\)"):
            await start_export(client)


async def test_files_elsewhere_never_get_our_token() -> None:
    script = Script(population(), status_headers=[], file_base="https://files.example.net/x")
    async with client_for(script) as client:
        job = await start_export(client)
        assert job is not None
        manifest = await job.wait()
        with pytest.raises(FhirProtocolError, match="another server"):
            async for _ in job.lines(manifest.output[0], manifest):
                pass


async def test_population_resumes_a_broken_download_without_duplicates() -> None:
    script = Script(population(), status_headers=[], broken_once="Observation")
    results: list[ScreeningResult] = []
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with client_for(script) as client:
        summary = await screen_population(client, as_of=AS_OF, settings=get_settings(),
                                          emit=results.append, progress=io.StringIO(),
                                          sleep=sleep)
    files = population()
    assert summary.source == "bulk export" and summary.patients == 2
    assert summary.records == sum(len(v) for v in files.values())
    assert script.seen.count("GET /fhir/Binary/Observation") == 2
    assert waits == [0.5]  # one pause before the download is tried again, none spent for real
    verdicts = {r.patient: r.verdict.label for r in results}
    assert verdicts == {"Patient/a": "contraindicated", "Patient/b": "needs-review"}
    # Every Observation once: the half-file was rolled back before the retry.
    assert sum(len(r.findings) for r in results) >= 2
    assert script.deleted


def test_spill_groups_by_patient_and_counts_strays(tmp_path: Any) -> None:
    spill = Spill(str(tmp_path))
    try:
        spill.add(json.dumps({"resourceType": "Patient", "id": "p1"}))
        spill.add(json.dumps({"resourceType": "Condition", "id": "c1",
                              "subject": {"reference": "Patient/p1"}}))
        spill.add(json.dumps({"resourceType": "Condition", "id": "c2",
                              "subject": {"reference": "Patient/gone"}}))
        spill.add(json.dumps({"resourceType": "MedicationStatement", "id": "m1",
                              "subject": {"reference": f"{BASE}/Patient/p1/_history/2"},
                              "medicationReference": {"reference": "Medication/x"}}))
        spill.add(json.dumps({"resourceType": "Medication", "id": "x"}))
        spill.add("{not json")
        spill.commit()
        spill.add(json.dumps({"resourceType": "Condition", "id": "c3",
                              "subject": {"reference": "Patient/p1"}}))
        spill.rollback()
        spill.finish()
        assert spill.lines == 6 and spill.unusable == 1 and spill.unattached() == 1
        assert list(spill.missing_medications()) == []
        [(pid, bundle)] = list(spill.patients())
        ids = [e["resource"]["id"] for e in json.loads(bundle)["entry"]]
        assert pid == "p1" and ids == ["p1", "c1", "m1", "x"]
    finally:
        spill.close()


def test_progress_is_a_line_every_n_without_a_tty() -> None:
    stream = io.StringIO()
    bar = Progress(stream, total=250, every=100)
    for _ in range(250):
        bar.tick()
    bar.close()
    assert stream.getvalue().splitlines() == ["ketamine-screen: screened 100/250 patients",
                                              "ketamine-screen: screened 200/250 patients"]


def test_progress_on_a_terminal_is_rich_bar_with_the_export_wait() -> None:
    """On a terminal (issue 15): the export wait shows its X-Progress, then a done/total bar."""
    console = Console(file=io.StringIO(), force_terminal=True, width=100, color_system=None)
    bar = TerminalProgress(console)
    bar.waiting("Build in progress - 50%")
    bar.start(3)
    for _ in range(3):
        bar.tick()
    bar.close()
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "$export: Build in progress - 50%" in text
    assert "screening" in text and "3/3" in text
    assert bar.close() is None  # closing twice is harmless


def test_lines_name_the_export_status_and_the_fallback() -> None:
    stream = io.StringIO()
    bar = Progress(stream)
    bar.note("the server offers no Bulk Data $export")
    bar.waiting("10%")
    bar.start(None)
    bar.close()
    assert stream.getvalue().splitlines() == [
        "ketamine-screen: the server offers no Bulk Data $export",
        "ketamine-screen: export in preparation: 10%"]