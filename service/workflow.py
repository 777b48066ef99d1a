"""The one orchestrator: read, screen, render, write. Used by the command line, population
screening, the REST API, CDS Hooks and the clinician's pages alike.

Plain async functions over the pipeline stages: fetch (``service.fhir``), screen
(``service.screening``), build (``service.render``), and submit (``service.fhir.transaction``).
No web framework here. Decoding a large Bundle and screening it are CPU work: a small one (a
millisecond or less) is done at once, a larger one in the CPU lane, one job per turn of the
event loop (:func:`_cpu`), so that other requests are answered in between. The blood-pressure
policy and the evaluation time are decided here, from the settings, for every caller; the
ruleset is the settings' unless a caller (the command line's ``--ruleset``) names another.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

from service import population
from service.config import Settings
from service.demo import demo_patients
from service.errors import BundleError, InputError
from service.fhir import codesystems
from service.fhir.bundle import collect, load_bundle, parse_bundle
from service.fhir.client import FhirClient
from service.fhir.prefetch import (
    PREFETCH,
    PREFETCH_OPTIONAL,
    Connect,
    draft_orders,
    gather_records,
)
from service.fhir.record import LOINC
from service.fhir.references import Ref
from service.fhir.transaction import TransactionResult, TxEntry, build_transaction, submit
from service.metrics import count_verdicts
from service.render.cds import cards_for
from service.render.charts import PHQ9_TOTAL, phq9_points
from service.render.course_read import CourseRecords, course_searches, read_course_records
from service.render.integration import IntegrationInput, build_integration_write
from service.render.phq9 import Phq9Input, build_phq9_write
from service.render.rems_form import SubmissionInput, build_submission_write
from service.render.session import SESSION_SYSTEM, SessionWrite, build_session_write
from service.render.session_form import session_defaults
from service.render.session_input import SessionInput
from service.render.writeback import ScreeningWrite, build_screening_write
from service.screening.engine import BloodPressurePolicy, screen
from service.screening.matching import matcher_for
from service.screening.model import RawPatientData, ScreeningResult
from service.screening.orders import ordered_products
from service.screening.ruleset import load_ruleset

T = TypeVar("T")

__all__ = [
    "INLINE_BYTES",
    "INLINE_RECORDS",
    "CourseWrite",
    "HookCall",
    "Products",
    "SessionWritten",
    "bp_policy",
    "cds_cards",
    "demo_screenings",
    "evaluation_time",
    "order_products",
    "preview_course_write",
    "preview_screening",
    "preview_session",
    "publish_codesystems",
    "read_course",
    "read_history",
    "screen_bundle",
    "screen_file",
    "screen_from_fhir",
    "screen_population",
    "screen_raw",
    "screen_records",
    "session_form_defaults",
    "write_course",
    "write_screening",
    "write_screening_result",
    "write_session",
]


def evaluation_time(as_of: datetime | None = None) -> datetime:
    """``as_of`` in UTC (a naive time is taken as UTC); now, to the second, when absent.

    InputError outside the years 1900 to 2199: the look-back windows would leave the calendar.
    """
    if as_of is None:
        return datetime.now(UTC).replace(microsecond=0)
    if not 1900 <= as_of.year < 2200:
        raise InputError("as_of must fall in the years 1900 to 2199")
    if as_of.tzinfo is None:
        return as_of.replace(tzinfo=UTC)
    return as_of.astimezone(UTC)


def bp_policy(settings: Settings) -> BloodPressurePolicy:
    """The blood-pressure window and thresholds configured for this deployment."""
    return BloodPressurePolicy(
        settings.bp_window_days,
        settings.bp_systolic_uncontrolled,
        settings.bp_diastolic_uncontrolled,
        settings.bp_systolic_elevated,
        settings.bp_diastolic_elevated,
        settings.bp_systolic_guide_65,
        settings.bp_diastolic_guide_65,
        settings.eligibility_lookback_days,
    )


# -- Screening ----------------------------------------------------------------------------------


Products = str | Iterable[str] | None
"""``ketamine``, ``esketamine``, ``both`` (None: both)."""


def _counted(result: ScreeningResult) -> ScreeningResult:
    """Every screening passes here once: its per-product verdicts are counted (metrics)."""
    count_verdicts((product, verdict.label) for product, verdict in result.verdicts.items())
    return result


def screen_records(raw: RawPatientData, *, as_of: datetime | None, settings: Settings,
                   ruleset: str | None = None, products: Products = None) -> ScreeningResult:
    """Screen records already read, on this thread (the command line's way)."""
    return _counted(screen(raw, evaluation_time(as_of), policy=bp_policy(settings),
                           ruleset=ruleset or settings.ruleset, products=products))


INLINE_RECORDS = 100
"""Records screened at once, without waiting for the CPU lane: 100 take about a millisecond
(bench/profile_screening.py)."""
INLINE_BYTES = 64 * 1024
"""The same bound for a Bundle sent as JSON (about 100 records)."""

_LANES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary())
"""One lane per event loop (a semaphore belongs to its loop)."""


async def _cpu(work: Callable[[], T], *, small: bool) -> T:
    """``work`` on the event loop: at once when ``small``, else in the CPU lane.

    The lane runs one larger job per turn of the loop (a semaphore of one: 4-5 ms at 500
    records), so that between two jobs the loop answers everything else that is ready (a
    ``/healthz``, the bytes of other requests) instead of running every ready screening back to
    back. Not a worker thread: screening is pure Python and holds the GIL, and a thread holding
    it makes the loop wait for the GIL (up to the 5 ms switch interval) after every socket call,
    which under load slowed the whole process several times over (bench/service.py).
    """
    if small:
        return work()
    loop = asyncio.get_running_loop()
    lane = _LANES.get(loop)
    if lane is None:
        lane = _LANES[loop] = asyncio.Semaphore(1)
    async with lane:
        await asyncio.sleep(0)  # start on a fresh turn: what became ready meanwhile goes first
        return work()


async def screen_raw(raw: RawPatientData, *, as_of: datetime | None, settings: Settings,
                     ruleset: str | None = None, products: Products = None) -> ScreeningResult:
    """Screen records already read (in the CPU lane when there are many)."""
    run = functools.partial(screen_records, raw, as_of=as_of, settings=settings,
                            ruleset=ruleset, products=products)
    return await _cpu(run, small=len(raw.resources) <= INLINE_RECORDS)


def screen_file(path: Path, patient_id: str | None, *, as_of: datetime | None,
                settings: Settings, ruleset: str | None = None,
                products: Products = None) -> tuple[ScreeningResult, RawPatientData]:
    """A Bundle file, read and screened (BundleError when it cannot be read)."""
    raw = load_bundle(path, patient_id)
    return screen_records(raw, as_of=as_of, settings=settings, ruleset=ruleset,
                          products=products), raw


def demo_screenings(*, as_of: datetime,
                    settings: Settings) -> Iterator[tuple[Path, ScreeningResult]]:
    """Each embedded demo patient's Bundle and its result."""
    for path in demo_patients():
        yield path, screen_file(path, None, as_of=as_of, settings=settings)[0]


def _parse_and_screen(data: object, source: str, patient_id: str | None, as_of: datetime,
                      policy: BloodPressurePolicy, ruleset: str,
                      products: Products) -> tuple[ScreeningResult, RawPatientData]:
    if isinstance(data, bytes | bytearray) and not data.strip():
        raise BundleError(f"{source}: empty; send a FHIR Bundle")
    raw = parse_bundle(data, source, patient_id)
    return _counted(screen(raw, as_of, policy=policy, ruleset=ruleset, products=products)), raw


async def screen_bundle(data: bytes | Mapping[str, Any] | object, *,
                        source: str = "request body", patient_id: str | None = None,
                        as_of: datetime | None, settings: Settings,
                        ruleset: str | None = None,
                        products: Products = None) -> tuple[ScreeningResult, RawPatientData]:
    """Decode a FHIR Bundle (JSON bytes, or decoded JSON) and screen it (in the CPU lane when
    it is large).

    Raises ``BundleError`` when the data is not JSON, not a Bundle, or holds nothing usable.
    """
    run = functools.partial(_parse_and_screen, data, source, patient_id,
                            evaluation_time(as_of), bp_policy(settings),
                            ruleset or settings.ruleset, products)
    small = isinstance(data, bytes | bytearray) and len(data) <= INLINE_BYTES
    return await _cpu(run, small=small)


async def screen_from_fhir(client: FhirClient, patient_id: str, *, as_of: datetime | None,
                           settings: Settings, ruleset: str | None = None,
                           products: Products = None) -> tuple[ScreeningResult, RawPatientData]:
    """Read one patient's records from the FHIR server and screen them.

    FHIR failures raise the ``FhirError`` subclasses of :mod:`service.errors`.
    """
    when = evaluation_time(as_of)
    raw = await client.read_patient_data(patient_id, as_of=when,
                                         bp_window_days=settings.bp_window_days)
    return await screen_raw(raw, as_of=when, settings=settings, ruleset=ruleset,
                            products=products), raw


async def screen_population(client: FhirClient, *, as_of: datetime, settings: Settings,
                            emit: population.Emit, group: str | None = None,
                            progress: population.Reporter | TextIO | None = None,
                            spill_dir: str | None = None,
                            concurrency: int = 4,
                            sleep: population.Sleep = asyncio.sleep
                            ) -> population.PopulationSummary:
    """Everyone on the server (or ``group``'s members), each screened as of ``as_of``."""
    policy = bp_policy(settings)
    return await population.screen_population(
        client,
        screen=lambda raw: _counted(screen(raw, as_of, policy=policy, ruleset=settings.ruleset)),
        as_of=as_of,
        bp_window_days=settings.bp_window_days,
        max_poll_interval=settings.bulk_poll_max_seconds, emit=emit, group=group,
        progress=progress, spill_dir=spill_dir, concurrency=concurrency, sleep=sleep)


# -- Writing back -------------------------------------------------------------------------------


def _practitioner_id(practitioner: str | None) -> str | None:
    """``123``, ``Practitioner/123`` or a URL to it -> ``123``; another resource type -> None.

    A SMART ``fhirUser`` may name a Patient or a RelatedPerson: they are not recorded as authors.
    """
    if not practitioner:
        return None
    if "/" not in practitioner.rstrip("/"):
        return practitioner.rstrip("/")
    ref = Ref.parse(practitioner)
    return ref.id if ref is not None and ref.type == "Practitioner" else None


def preview_screening(result: ScreeningResult, raw: RawPatientData, *,
                      encounter: str | None = None) -> ScreeningWrite:
    """What :func:`write_screening_result` would send (the demo shows it instead)."""
    return build_screening_write(result, versions=raw.versions, encounter=encounter)


async def write_screening(client: FhirClient, result: ScreeningResult, *,
                          versions: Mapping[str, str] | None = None,
                          practitioner: str | None = None,
                          encounter: str | None = None) -> TransactionResult:
    """Write ``result`` back as one transaction; a repeat finds the first write and adds nothing.
    ``encounter`` is the launch's Encounter id (None: the result names no encounter)."""
    write = build_screening_write(result, versions=versions,
                                  practitioner=_practitioner_id(practitioner),
                                  encounter=encounter)
    return await submit(client, write.bundle())


async def write_screening_result(client: FhirClient, result: ScreeningResult,
                                 raw: RawPatientData, *,
                                 practitioner: str | None = None,
                                 encounter: str | None = None) -> list[str]:
    """Write the result back in one idempotent transaction; ``Type/id`` of each resource."""
    written = await write_screening(client, result, versions=raw.versions,
                                    practitioner=practitioner, encounter=encounter)
    return list(written.locations)


@dataclass(frozen=True, slots=True)
class SessionWritten:
    result: TransactionResult
    warnings: list[str]


def _with_practitioner(session: SessionInput, practitioner: str | None) -> SessionInput:
    """``practitioner`` fills in a session that names none."""
    if practitioner and session.practitioner_id is None:
        return session.model_copy(update={"practitioner_id": _practitioner_id(practitioner)})
    return session


def preview_session(session: SessionInput, *, encounter: str | None = None) -> SessionWrite:
    """What :func:`write_session` would send (the demo shows it instead)."""
    return build_session_write(session, encounter=encounter)


async def write_session(client: FhirClient, session: SessionInput, *,
                        practitioner: str | None = None,
                        encounter: str | None = None) -> SessionWritten:
    """Write one treatment session as one transaction; sending it again adds nothing.
    ``encounter`` (the launch's) goes on every resource the session writes."""
    write = build_session_write(_with_practitioner(session, practitioner), encounter=encounter)
    return SessionWritten(await submit(client, write.bundle()), write.warnings)


async def publish_codesystems(client: FhirClient) -> list[str]:
    """The project's CodeSystems on the server (conditional updates); ``CodeSystem/<id>`` each."""
    return await codesystems.publish_codesystems(client)


# -- The treatment course: REMS form submission, integration sessions, PHQ-9 ---------------------

CourseWrite = SubmissionInput | IntegrationInput | Phq9Input
"""What the course pages write; each becomes one idempotent transaction."""


def _course_entries(item: CourseWrite, *, task: Mapping[str, Any] | None = None,
                    now: datetime | None = None, encounter: str | None = None) -> list[TxEntry]:
    when = now or datetime.now(UTC)
    if isinstance(item, SubmissionInput):
        if task is None:
            raise ValueError("marking a REMS form submitted needs its Task")
        return build_submission_write(task, item, now=when)
    if isinstance(item, IntegrationInput):
        return build_integration_write(item, now=when, encounter=encounter)
    # A submission completes the Task as it was written: its encounter stays the session's.
    return build_phq9_write(item, now=when, encounter=encounter)


def _authored(item: CourseWrite, practitioner: str | None) -> CourseWrite:
    """``practitioner`` (the launch's fhirUser) fills in an item that names none."""
    who = _practitioner_id(practitioner)
    if who and item.practitioner_id is None:
        return item.model_copy(update={"practitioner_id": who})
    return item


def preview_course_write(item: CourseWrite, *, task: Mapping[str, Any] | None = None,
                         encounter: str | None = None) -> list[TxEntry]:
    """What :func:`write_course` would send (the demo shows it instead)."""
    return _course_entries(item, task=task, encounter=encounter)


async def write_course(client: FhirClient, item: CourseWrite, *,
                       task: Mapping[str, Any] | None = None,
                       practitioner: str | None = None,
                       encounter: str | None = None) -> TransactionResult:
    """Write one course item (a REMS form submitted, an integration session, a PHQ-9) as one
    transaction; sending it again adds nothing. ``encounter``: the launch's Encounter id."""
    entries = _course_entries(_authored(item, practitioner), task=task, encounter=encounter)
    return await submit(client, build_transaction(entries))


async def read_course(client: FhirClient, patient_id: str) -> CourseRecords:
    """The patient's sessions, REMS form Tasks, integration sessions, PHQ-9 totals and screening
    results (FhirError when the server fails)."""
    patient = ("patient", f"Patient/{patient_id}")
    searches = course_searches()
    names = list(searches)
    results = await asyncio.gather(*(
        client.search_json(searches[name][0], [patient, *searches[name][1]]) for name in names))
    found = dict(zip(names, results, strict=True))
    return read_course_records(found, phq9_points(found["phq9"]))


async def session_form_defaults(client: FhirClient, patient_id: str, *, settings: Settings
                                ) -> tuple[dict[str, str], dict[str, str]]:
    """A new session form's values from the last session and a screen run now, with notes."""
    (result, _), course = await asyncio.gather(
        screen_from_fhir(client, patient_id, as_of=None, settings=settings),
        read_course(client, patient_id))
    return session_defaults(course.last_documented(), result.findings)


# -- The pages' treatment history ---------------------------------------------------------------


async def read_history(client: FhirClient, patient_id: str) -> list[dict[str, Any]]:
    """PHQ-9 totals and this app's session BP panels (FhirError when the server fails)."""
    patient = ("patient", f"Patient/{patient_id}")
    sessions = codesystems.canonical(SESSION_SYSTEM)
    found = await asyncio.gather(
        client.search_json("Observation", [patient, ("code", f"{LOINC}|{PHQ9_TOTAL}")]),
        client.search_json("Observation", [patient, ("code", f"{LOINC}|85354-9"),
                                           ("identifier", f"{sessions}|")]))
    return [r for matches in found for r in matches]


# -- CDS Hooks ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HookCall:
    """What the workflow needs of a CDS hook request."""

    patient_id: str
    hook_instance: str
    orders: Mapping[str, Any]
    selections: Sequence[str] | None
    prefetch: Mapping[str, Any] | None


def order_products(raw: RawPatientData, order_id: str | None, *, ruleset: str
                   ) -> tuple[str, ...]:
    """The products the launch's order (the MedicationRequest in ``fhirContext``) is for, matched
    as a CDS hook's draft order is; ``()`` when it is not among the records read or is neither
    ketamine nor esketamine, both when it names both or neither clearly."""
    if not order_id:
        return ()
    order = [r for r in raw.resources
             if r.get_resource_type() == "MedicationRequest" and r.id == order_id]
    if not order:
        return ()
    return ordered_products(RawPatientData(raw.patient_id, resources=order,
                                           medications=raw.medications), matcher_for(ruleset))


def _ordered_products(call: HookCall, ruleset: str) -> tuple[str, ...]:
    return ordered_products(draft_orders(call.orders, call.selections, call.patient_id),
                            matcher_for(ruleset))


async def cds_cards(call: HookCall, *, connect: Connect,
                    settings: Settings) -> tuple[list[dict[str, Any]], ScreeningResult | None]:
    """The cards for one hook call, and the result behind them (None: no ketamine order, no
    cards). The order names the product screened for (both when it names both, or neither
    clearly). ``connect`` makes the client for what the prefetch lacks; PrefetchIncomplete when
    records stay missing."""
    products = _ordered_products(call, settings.ruleset)  # a few draft orders: on the loop
    if not products:
        return [], None
    gathered = await gather_records(call.prefetch, PREFETCH, call.patient_id, connect=connect,
                                    optional=PREFETCH_OPTIONAL)
    raw = collect([(None, r) for r in gathered.resources], gathered.problems, "prefetch",
                  call.patient_id)
    result = await screen_raw(raw, as_of=None, settings=settings, products=products)
    ruleset, _ = load_ruleset(settings.ruleset)
    cards = cards_for(result, hook_instance=call.hook_instance, base_url=settings.base_url,
                      ruleset=ruleset)
    return cards, result
