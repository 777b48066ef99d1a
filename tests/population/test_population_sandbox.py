"""``screen --all`` / ``--group`` against the real HAPI sandbox (Bulk Data $export enabled).

What is proved: every patient on the server is screened exactly once; the case-table patients
reach, one by one, the verdict the Bundle path gives them (so the per-verdict counts agree too);
a Group export screens exactly its members; without ``$export`` the run pages Patient / reads the
Group instead, says so, and reaches the same verdicts; and the Python heap's peak while screening
300 patients stays a small fraction of the NDJSON it read.
"""

from __future__ import annotations

import io
import json
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.cli import main
from service.config import get_settings
from service.fhir.client import FhirClient
from service.population import patient_ids
from service.screening.model import ScreeningResult
from service.workflow import screen_population
from tests.builders import AS_OF
from tests.population.conftest import (
    CHOSEN,
    RUN,
    bundle_verdict,
    group,
    load,
    patient_count,
    renamed,
    synthetic,
)

pytestmark = pytest.mark.integration

AS_OF_ARG = "2026-06-15T12:00:00Z"
MEMORY_PATIENTS = 300
PEAK_RATIO = 0.5
"""Peak traced heap / NDJSON bytes read. Holding the export as text would be 1 at least, as parsed
JSON several times that; streaming into the on-disk spill measures about 0.35 here (3 MB of
NDJSON), and the peak is a constant (about 1 MB: one batch of lines, one patient's models, the
summary CapabilityStatement), so the ratio falls as the population grows."""


@pytest.fixture(scope="module")
def expected(fhir_base_url: str) -> dict[str, str]:
    """Patient id -> the Bundle path's verdict, for the case-table patients loaded here."""
    prefix = f"pop{RUN}-"
    resources: list[dict[str, Any]] = []
    verdicts: dict[str, str] = {}
    for case in CHOSEN:
        records = renamed(case, prefix)
        verdicts[records[0]["id"]] = bundle_verdict(records)
        assert verdicts[records[0]["id"]] == case.verdict, case.name
        resources += records
    resources.append(group(f"pop{RUN}-g5", members(verdicts)))
    load(fhir_base_url, resources)
    return verdicts


def members(verdicts: dict[str, str]) -> list[str]:
    """Five members: one of each verdict, plus the patient with a referenced Medication."""
    chosen: dict[str, str] = {}
    for pid, verdict in verdicts.items():
        chosen.setdefault(verdict, pid)
    referenced = next(f"pop{RUN}-{c.patient.pid}" for c in CHOSEN if "referenced" in c.name)
    picked = [*chosen.values(), referenced]
    picked += [p for p in verdicts if p not in picked][:5 - len(picked)]
    return picked[:5]


def cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["screen", *args], out=out)
    return code, out.getvalue()


@pytest.mark.slow
def test_all_screens_everyone_once_with_the_bundle_paths_verdicts(
        fhir_base_url: str, expected: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    on_server = patient_count(fhir_base_url)
    code, out = cli("--fhir-base", fhir_base_url, "--all", "--as-of", AS_OF_ARG,
                    "--format", "json")
    assert code == 0
    contracts = [json.loads(line) for line in out.splitlines()]
    screened = [c["patient"].removeprefix("Patient/") for c in contracts]
    assert len(screened) == len(set(screened)) == on_server
    mine = {pid: c["verdict"] for pid, c in zip(screened, contracts, strict=True)
            if pid in expected}
    assert Counter(mine.values()) == Counter(expected.values())
    assert mine == expected
    err = capsys.readouterr().err
    assert f"Population screening: {on_server} patients via bulk export" in err


def test_group_screens_exactly_its_members(fhir_base_url: str, expected: dict[str, str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli("--fhir-base", fhir_base_url, "--group", f"pop{RUN}-g5", "--as-of",
                    AS_OF_ARG, "--format", "json")
    assert code == 0
    contracts = [json.loads(line) for line in out.splitlines()]
    got = {c["patient"].removeprefix("Patient/"): c["verdict"] for c in contracts}
    assert len(contracts) == 5
    assert got == {pid: expected[pid] for pid in members(expected)}
    capsys.readouterr()
    code, out = cli("--fhir-base", fhir_base_url, "--all", "--group", f"pop{RUN}-g5",
                    "--as-of", AS_OF_ARG)
    assert code == 0
    assert "Population screening: 5 patients via bulk export" in out
    for verdict, count in Counter(got.values()).items():
        assert f"{verdict} " in out and any(
            line.split() == [verdict, str(count)] for line in out.splitlines())


def test_unknown_group_is_a_clear_error(fhir_base_url: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = cli("--fhir-base", fhir_base_url, "--group", "no-such-group", "--as-of", AS_OF_ARG)
    err = capsys.readouterr().err
    assert code == 1
    assert "Group/no-such-group" in err and "Traceback" not in err


class NoExport(httpx.AsyncBaseTransport):
    """The real sandbox, minus ``$export``: kick-offs answer 404, or the CapabilityStatement
    lists no operation (``hide="metadata"``)."""

    def __init__(self, hide: str) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.hide = hide

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.hide == "kick-off" and request.url.path.endswith("$export"):
            return httpx.Response(404, json={"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "not-supported"}]})
        response = await self.inner.handle_async_request(request)
        if self.hide == "metadata" and request.url.path.endswith("/metadata"):
            await response.aread()
            statement = response.json()
            for rest in statement.get("rest", []):
                rest.pop("operation", None)
                for resource in rest.get("resource", []):
                    resource.pop("operation", None)
            return httpx.Response(200, json=statement)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("hide", ["kick-off", "metadata"])
async def test_without_export_falls_back_to_per_patient_reads(
        fhir_base_url: str, expected: dict[str, str], hide: str) -> None:
    stderr = io.StringIO()
    results: list[ScreeningResult] = []
    async with FhirClient(fhir_base_url, transport=NoExport(hide)) as client:
        summary = await screen_population(client, as_of=AS_OF, settings=get_settings(),
                                          emit=results.append,
                                          group=f"pop{RUN}-g5", progress=stderr)
    assert "offers no Bulk Data $export; reading patient by patient" in stderr.getvalue()
    assert summary.source == "patient search" and summary.patients == 5
    assert {r.patient.removeprefix("Patient/"): r.verdict.label for r in results} == {
        pid: expected[pid] for pid in members(expected)}


async def test_fallback_pages_through_every_patient(fhir_base_url: str,
                                                    expected: dict[str, str]) -> None:
    async with FhirClient(fhir_base_url, page_size=10) as client:
        ids = [pid async for pid in patient_ids(client, None)]
    assert len(ids) == len(set(ids)) == patient_count(fhir_base_url)
    assert set(expected) <= set(ids)


@pytest.fixture(scope="module")
def crowd(fhir_base_url: str) -> str:
    """300 synthetic patients (about 3 MB of NDJSON) in one Group; the Group id."""
    pids = [f"mem{RUN}-{n:03d}" for n in range(MEMORY_PATIENTS)]
    resources = [r for n, pid in enumerate(pids) for r in synthetic(pid, n)]
    gid = f"mem{RUN}-all"
    load(fhir_base_url, [*resources, group(gid, pids)])
    return gid


@pytest.fixture
async def client(fhir_base_url: str) -> AsyncIterator[FhirClient]:
    async with FhirClient(fhir_base_url) as fhir:
        yield fhir


@pytest.mark.slow
async def test_peak_memory_stays_a_fraction_of_the_export(
        client: FhirClient, crowd: str, expected: dict[str, str]) -> None:
    verdicts: Counter[str] = Counter()

    def count(result: ScreeningResult) -> None:
        verdicts[result.verdict.label] += 1

    # Warm-up (imports, the ruleset, pydantic model classes) outside the measurement.
    await screen_population(client, as_of=AS_OF, settings=get_settings(), emit=count,
                            group=f"pop{RUN}-g5", progress=io.StringIO())
    verdicts.clear()
    tracemalloc.start()
    try:
        summary = await screen_population(client, as_of=AS_OF, settings=get_settings(),
                                          emit=count, group=crowd,
                                          progress=io.StringIO())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.patients == MEMORY_PATIENTS == sum(verdicts.values())
    assert summary.ndjson_bytes > 2_000_000
    print(f"peak {peak / 1e6:.2f} MB for {summary.ndjson_bytes / 1e6:.2f} MB of NDJSON "  # noqa: T201
          f"({peak / summary.ndjson_bytes:.3f})")
    assert peak < PEAK_RATIO * summary.ndjson_bytes
