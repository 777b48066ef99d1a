"""Screen every patient on a FHIR server, or every member of a Group, in one run.

The run's reading and bookkeeping; the screening itself is the ``screen`` function that
``service.workflow.screen_population`` hands in, so policy and settings stay the workflow's.
Records come from FHIR Bulk Data ``$export`` (service.fhir.bulk). Where the server has no
``$export``, the run pages ``Patient?_count=N`` (or reads the Group) and reads each patient the way
a single screening does (``FhirClient.read_patient_data``), and says so on stderr.

**Memory stays bounded** whatever the population's size. Each NDJSON file is streamed line by
line (never a whole file, let alone the whole export, in memory) into a temporary SQLite file on
disk (:class:`service.fhir.spill.Spill`): ``patients(id, body)``, ``medications(id, body)`` and
``records(patient, med, body)``, inserted in batches of :data:`BATCH` rows, with the per-patient
index built once the files are in. Screening then walks the patients in id order and pulls one
patient's rows (plus the Medications they reference) at a time, so the Python heap holds one
NDJSON line while downloading and one patient's records while screening; SQLite's own page cache
is capped at ``SQLITE_CACHE_KIB``. Disk use is about the size of the NDJSON. The fallback path
holds at most ``concurrency`` patients' records at once.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TextIO, cast

import msgspec

from service.errors import BundleError, FhirError, FhirNotFound, FhirProtocolError, reported_error
from service.fhir.bulk import BulkExport, Manifest, start_export
from service.fhir.bundle import parse_bundle
from service.fhir.client import FhirClient
from service.fhir.references import Ref
from service.fhir.spill import Spill
from service.logs import pseudonym
from service.screening.model import RawPatientData, ScreeningResult, Verdict

__all__ = ["Emit", "PopulationSummary", "Progress", "Reporter", "Screen", "Sleep", "patient_ids",
           "screen_population"]

log = logging.getLogger(__name__)

DOWNLOAD_ATTEMPTS = 3


@dataclass(slots=True)
class PopulationSummary:
    source: str = "bulk export"
    """``bulk export`` or ``patient search`` (the fallback)."""
    patients: int = 0
    records: int = 0
    """Resources read (NDJSON lines, or resources returned by the searches)."""
    ndjson_bytes: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    problems: int = 0
    """Records that could not be used (unparseable, or a Medication not found)."""
    unattached: int = 0
    """Exported records whose patient was not in the export."""
    skipped: int = 0
    """Exported Observations no rule reads (dropped as they came in, as a search never asks)."""
    fetch_seconds: float = 0.0
    screen_seconds: float = 0.0

    def table(self) -> str:
        rate = self.patients / self.screen_seconds if self.screen_seconds else 0.0
        total = self.fetch_seconds + self.screen_seconds
        lines = [f"Population screening: {self.patients} patients via {self.source}",
                 f"  {'verdict':<18} {'patients':>9}"]
        lines += [f"  {v.label:<18} {self.verdicts.get(v.label, 0):>9}"
                  for v in sorted(Verdict, reverse=True)]
        lines += [f"  {'failed':<18} {self.failed:>9}",
                  f"  records read {self.records}"
                  + (f" ({_size(self.ndjson_bytes)} of NDJSON)" if self.ndjson_bytes else "")
                  + f", unusable {self.problems}, without their patient {self.unattached}"
                  + (f", Observations no rule reads {self.skipped}" if self.skipped else ""),
                  f"  fetch {self.fetch_seconds:.1f} s, screening {self.screen_seconds:.1f} s "
                  f"({rate:.0f} patients/s), overall "
                  f"{self.patients / total if total else 0.0:.1f} patients/s"]
        return "\n".join(lines) + "\n"


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count / 1e3:.1f} kB"


class Reporter(Protocol):
    """What a run reports as it goes: the command line shows it as a progress bar on a terminal
    (:class:`service.terminal.TerminalProgress`), as :class:`Progress` lines elsewhere."""

    def note(self, text: str) -> None:
        """A one-off remark (e.g. no ``$export``, reading patient by patient)."""

    def waiting(self, status: str) -> None:
        """The export is being prepared; ``status`` is the server's ``X-Progress`` text."""

    def start(self, total: int | None) -> None:
        """Screening begins: ``total`` patients (None: not known in advance)."""

    def tick(self) -> None:
        """One patient done."""

    def close(self) -> None:
        """The run is over (called once, whatever happened)."""


class Progress:
    """A :class:`Reporter` for logs and pipes: a line every ``every`` patients, and each new
    export status."""

    def __init__(self, stream: TextIO, total: int | None = None, every: int = 100) -> None:
        self.stream, self.total, self.every = stream, total, every
        self.done = 0

    def note(self, text: str) -> None:
        self.stream.write(f"ketamine-screen: {text}\n")

    def waiting(self, status: str) -> None:
        self.stream.write(f"ketamine-screen: export in preparation: {status}\n")

    def start(self, total: int | None) -> None:
        self.total, self.done = total, 0

    def tick(self) -> None:
        self.done += 1
        if self.done % self.every == 0:
            of = f"/{self.total}" if self.total else ""
            self.stream.write(f"ketamine-screen: screened {self.done}{of} patients\n")

    def close(self) -> None:
        self.stream.flush()


def _reporter(progress: Reporter | TextIO | None) -> Reporter:
    if progress is None:
        return Progress(sys.stderr)
    if hasattr(progress, "tick"):
        return cast(Reporter, progress)
    return Progress(progress)


# -- the run --------------------------------------------------------------------------------------

Emit = Callable[[ScreeningResult], None]
Screen = Callable[[RawPatientData], ScreeningResult]
"""One patient's records to their result (the workflow's screening, policy and time bound)."""
Sleep = Callable[[float], Awaitable[None]]


async def screen_population(client: FhirClient, *, screen: Screen, as_of: datetime,
                            bp_window_days: int, max_poll_interval: float, emit: Emit,
                            group: str | None = None,
                            progress: Reporter | TextIO | None = None,
                            spill_dir: str | None = None, concurrency: int = 4,
                            sleep: Sleep = asyncio.sleep) -> PopulationSummary:
    """Screen everyone (or ``group``'s members); ``emit`` gets each result as it is made.

    Screening is CPU work done on this event loop: run it from a command line or a worker, not
    inside a web request. FhirError when the server fails (a single patient that vanished between
    listing and reading is counted as failed instead). ``sleep`` spends the waits (export polls,
    download retries).
    """
    reporter = _reporter(progress)
    try:
        return await _run(client, screen=screen, as_of=as_of, bp_window_days=bp_window_days,
                          max_poll_interval=max_poll_interval, emit=emit, group=group,
                          reporter=reporter, spill_dir=spill_dir, concurrency=concurrency,
                          sleep=sleep)
    finally:
        reporter.close()


async def _run(client: FhirClient, *, screen: Screen, as_of: datetime, bp_window_days: int,
               max_poll_interval: float, emit: Emit, group: str | None, reporter: Reporter,
               spill_dir: str | None, concurrency: int, sleep: Sleep) -> PopulationSummary:
    started = time.monotonic()
    job = await start_export(client, group=group, max_poll_interval=max_poll_interval,
                             sleep=sleep)
    if job is None:
        if group:
            await client.read("Group", group)  # an unknown Group is FhirNotFound, not a fallback
        reporter.note("the server offers no Bulk Data $export; reading patient by patient "
                      "instead (slower)")
        return await _by_search(client, screen=screen, as_of=as_of, window=bp_window_days,
                                emit=emit, group=group, reporter=reporter,
                                concurrency=concurrency, started=started)
    summary = PopulationSummary()
    spill = Spill(spill_dir)
    try:
        try:
            reporter.waiting("kicked off")
            manifest = await job.wait(reporter.waiting)
            await _download(job, manifest, spill, sleep)
        finally:
            await job.delete()  # the server may drop the files, whatever happened
        await _resolve_medications(client, spill)
        spill.finish()
        summary.records, summary.ndjson_bytes = spill.lines, spill.bytes
        summary.problems, summary.unattached = spill.unusable, spill.unattached()
        summary.skipped = spill.skipped
        summary.fetch_seconds = time.monotonic() - started
        reporter.start(spill.patient_count())
        began = time.monotonic()
        for pid, bundle in spill.patients():
            try:
                raw = parse_bundle(bundle, f"export of Patient/{pid}", pid)
            except BundleError as err:
                log.warning("patient %s not screened: %s", pseudonym(pid), type(err).__name__)
                summary.failed += 1
            else:
                _screen_one(raw, screen, emit, summary)
            reporter.tick()
        summary.screen_seconds = time.monotonic() - began
    finally:
        spill.close()
    return summary


def _screen_one(raw: RawPatientData, screen: Screen, emit: Emit,
                summary: PopulationSummary) -> None:
    result = screen(raw)
    summary.patients += 1
    summary.problems += len(raw.problems)
    summary.verdicts[result.verdict.label] += 1
    emit(result)


async def _download(job: BulkExport, manifest: Manifest, spill: Spill, sleep: Sleep) -> None:
    if manifest.errors:
        log.warning("the export reports %d error file(s)", len(manifest.errors))
    for file in manifest.output:
        for attempt in range(DOWNLOAD_ATTEMPTS):
            try:
                async for line in job.lines(file, manifest):
                    spill.add(line)
            except FhirError as err:
                spill.rollback()
                if attempt == DOWNLOAD_ATTEMPTS - 1 or isinstance(err, FhirProtocolError):
                    raise
                log.warning("export file download failed (%s); retrying", type(err).__name__)
                await sleep(0.5 * 2**attempt)
            else:
                spill.commit()
                break


async def _resolve_medications(client: FhirClient, spill: Spill) -> None:
    """Medications a Group export could not carry: ``_id`` searches, MEDICATION_BATCH at a time
    (service.fhir.quirks: group export types). Each arrives in the read model and goes into the
    spill as its JSON (the elements screening reads: decoding it again gives the same)."""
    ndjson_bytes = spill.bytes
    for ids in spill.missing_medications():
        result = await client.search("Medication", [("_id", ",".join(ids))])
        for resource in result.matches:
            spill.add(msgspec.json.encode(resource))
        spill.unusable += len(result.problems)
    spill.bytes = ndjson_bytes  # what was searched for is a record read, but not NDJSON


# -- without $export ----------------------------------------------------------------------------

async def patient_ids(client: FhirClient, group: str | None) -> AsyncIterator[str]:
    """The ids of ``group``'s members, or of every Patient on the server (paged)."""
    if group:
        members = (await client.read("Group", group)).get("member") or []
        for member in members:
            entity = member.get("entity") if isinstance(member, dict) else None
            ref = Ref.parse(entity.get("reference") if isinstance(entity, dict) else None)
            if ref is not None and ref.type == "Patient" and ref.id:
                yield ref.id
        return
    async for page in client.search_pages("Patient", [("_elements", "id")]):
        for entry in page.entries:
            if entry.mode == "match" and entry.resource is not None and entry.resource.id:
                yield entry.resource.id


async def _by_search(client: FhirClient, *, screen: Screen, as_of: datetime, window: int,
                     emit: Emit, group: str | None, reporter: Reporter,
                     concurrency: int, started: float) -> PopulationSummary:
    summary = PopulationSummary(source="patient search")
    reporter.start(None)
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=2 * concurrency)

    async def worker() -> None:
        while (pid := await queue.get()) is not None:
            try:
                raw = await client.read_patient_data(pid, as_of=as_of, bp_window_days=window)
            except FhirNotFound as err:
                log.warning("patient %s not screened: %s", pseudonym(pid), type(err).__name__)
                summary.failed += 1
            else:
                summary.records += 1 + len(raw.resources) + len(raw.medications)
                _screen_one(raw, screen, emit, summary)
            reporter.tick()

    try:
        async with asyncio.TaskGroup() as tasks:
            for _ in range(concurrency):
                tasks.create_task(worker())
            async for pid in patient_ids(client, group):
                await queue.put(pid)
            for _ in range(concurrency):  # a failure cancels this body and the workers alike
                await queue.put(None)
    except BaseExceptionGroup as failures:
        raise reported_error(failures) from None
    summary.fetch_seconds = 0.0
    summary.screen_seconds = time.monotonic() - started
    return summary
