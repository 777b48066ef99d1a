"""The ``ketamine-screen`` command line: the only place that exits the process.

Exit codes: 0 done; 1 the FHIR server or the network failed; 2 bad input (a file, an argument, a
``KETAMINE_*`` setting): each error class carries its own (``exit_code`` in
:mod:`service.errors`). Errors are one line on stderr, without a traceback and without patient
data. Every command goes through :mod:`service.workflow`; the help texts are in
:mod:`service.cli_help`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TextIO

import msgspec

from service import __version__, cli_help, workflow
from service.audit import AuditRecord, AuditTrail
from service.clients import FhirClients
from service.config import ENV_FILE_VARIABLE, Settings, load_settings
from service.config_report import effective_settings, production_problems
from service.errors import ConfigError, InputError, ServiceError
from service.fhir.client import FhirClient
from service.fhir.codesystems import use_canonical_base
from service.logs import configure_logging, set_pseudonym_key, uvicorn_log_config
from service.population import PopulationSummary, Progress, Reporter
from service.render.report import text_report
from service.screening.engine import PRODUCT_CHOICES, RULESETS
from service.screening.model import RawPatientData, ScreeningResult
from service.screening.policy import products_asked
from service.screening.ruleset import check_choice
from service.terminal import TerminalProgress

__all__ = ["TOKEN_VARIABLE", "main", "parse_as_of", "run_population"]

log = logging.getLogger(__name__)

TOKEN_VARIABLE = "KETAMINE_FHIR_TOKEN"  # noqa: S105 - a variable name
"""A bearer token for the server named by ``--fhir-base`` (it wins over Backend Services)."""


def parse_as_of(text: str) -> datetime:
    """An ISO 8601 date or date-time; a bare date means the end of that day (UTC)."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(23, 59, 59), UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--as-of {text!r} is not an ISO 8601 date-time") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _connect(settings: Settings, base: str, *, write: bool = False) -> FhirClient:
    """The EHR named on the command line, authenticated (the way is said on stderr)."""
    client, how = await FhirClients(settings).command_line(
        base, token=os.environ.get(TOKEN_VARIABLE) or None, write=write)
    if how == "none":
        sys.stderr.write(f"ketamine-screen: warning: no credentials ({TOKEN_VARIABLE}, or "
                         "KETAMINE_PRIVATE_KEY_FILE / KETAMINE_CLIENT_SECRET for Backend "
                         "Services): requests go without a token\n")
    return client


_ENCODER = msgspec.json.Encoder()
"""Population NDJSON: one contract a line, as fast as it is screened."""


def _who(settings: Settings) -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        user = "unknown"
    return f"{settings.client_id} (command line, user {user})"


async def _audit(settings: Settings, action: str, *, ok: bool, patient: str | None = None,
                 detail: str | None = None) -> None:
    """One audit record for a command's access to a FHIR server (service.audit)."""
    trail = AuditTrail.from_settings(settings, connect=FhirClients(settings).audit,
                                     command_line=True)
    trail.record(AuditRecord(action=action, outcome="success" if ok else "failure",
                             who=_who(settings), who_kind="client", patient=patient,
                             route=f"ketamine-screen {action}", detail=detail))
    await trail.aclose()


def _emit(result: ScreeningResult, fmt: str, out: TextIO) -> None:
    if fmt == "json":
        out.write(json.dumps(result.as_contract(), indent=2) + "\n")
    else:
        out.write(text_report(result))


async def _save(settings: Settings, client: FhirClient, result: ScreeningResult,
                raw: RawPatientData) -> list[str]:
    """The write-back, recorded in the audit trail whatever its outcome."""
    try:
        written = await workflow.write_screening_result(client, result, raw)
    except ServiceError as exc:
        await _audit(settings, "save", ok=False, patient=raw.patient_id,
                     detail=type(exc).__name__)
        raise
    await _audit(settings, "save", ok=True, patient=raw.patient_id,
                 detail=f"{len(written)} resources")
    return written


async def _from_server(settings: Settings, args: argparse.Namespace,
                       as_of: datetime) -> tuple[ScreeningResult, RawPatientData, list[str]]:
    async with await _connect(settings, args.fhir_base, write=args.write_back) as client:
        try:
            result, raw = await workflow.screen_from_fhir(
                client, args.patient, as_of=as_of, settings=settings, ruleset=args.ruleset,
                products=args.product)
        except ServiceError as exc:
            await _audit(settings, "screen", ok=False, patient=args.patient,
                         detail=type(exc).__name__)
            raise
        await _audit(settings, "screen", ok=True, patient=args.patient)
        written = await _save(settings, client, result, raw) if args.write_back else []
    return result, raw, written


def _reporter(err: TextIO) -> Reporter:
    return TerminalProgress() if err is sys.stderr and err.isatty() else Progress(err)


def run_population(fhir_base: str, out: TextIO, *, as_of: datetime, fmt: str = "text",
                   group: str | None = None, err: TextIO | None = None,
                   settings: Settings | None = None) -> int:
    """``screen --all``: NDJSON contracts (``json``) or nothing per patient (``text``), then the
    summary table (stdout for text, stderr for json). A progress bar on a terminal."""
    err = err or sys.stderr
    settings = settings or load_settings()

    def emit(result: ScreeningResult) -> None:
        if fmt == "json":
            out.write(_ENCODER.encode(result.as_contract()).decode() + "\n")

    async def run() -> PopulationSummary:
        async with await _connect(settings, fhir_base) as client:
            return await workflow.screen_population(client, as_of=as_of, settings=settings,
                                                    emit=emit, group=group,
                                                    progress=_reporter(err))

    try:
        summary = asyncio.run(run())
    except ServiceError as exc:
        asyncio.run(_audit(settings, "bulk", ok=False, detail=type(exc).__name__))
        raise
    asyncio.run(_audit(settings, "bulk", ok=True,
                       detail=f"group {group}" if group else "all patients"))
    (err if fmt == "json" else out).write(summary.table())
    return 0


def _screen(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    as_of = args.as_of or workflow.evaluation_time()
    # Bad choices fail before anything is read (ChoiceError is an InputError: exit 2).
    args.ruleset = check_choice(args.ruleset or settings.ruleset, tuple(RULESETS), "ruleset")
    products_asked(args.product)
    if args.all or args.group:
        if not args.fhir_base or args.bundle or args.patient or args.write_back:
            raise InputError("--all/--group need --fhir-base URL, without --bundle, --patient "
                             "or --write-back")
        return run_population(args.fhir_base, out, as_of=as_of, fmt=args.format,
                              group=args.group, settings=settings)
    written: list[str] = []
    if args.bundle:
        if args.write_back and not args.fhir_base:
            raise InputError("--write-back needs --fhir-base URL (the server to write to)")
        result, raw = workflow.screen_file(Path(args.bundle), args.patient, as_of=as_of,
                                           settings=settings, ruleset=args.ruleset,
                                           products=args.product)
        if args.write_back:
            async def write() -> list[str]:
                async with await _connect(settings, args.fhir_base, write=True) as client:
                    return await _save(settings, client, result, raw)
            written = asyncio.run(write())
    else:
        if not (args.fhir_base and args.patient):
            raise InputError("screen needs --bundle FILE, or --fhir-base URL with --patient ID")
        result, raw, written = asyncio.run(_from_server(settings, args, as_of))
    for problem in raw.problems:
        sys.stderr.write(f"ketamine-screen: warning: {problem.reference}: {problem.problem}\n")
    _emit(result, args.format, out)
    if args.write_back:
        sys.stderr.write(f"ketamine-screen: wrote {len(written)} resource(s): "
                         f"{', '.join(written)}\n")
    return 0


def _demo(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    as_of = args.as_of or parse_as_of("2026-11-27")
    for path, result in workflow.demo_screenings(as_of=as_of, settings=settings):
        if args.format == "json":
            _emit(result, "json", out)
        else:
            out.write(f"=== demo patient {path.stem} ===\n")
            out.write(text_report(result))
            out.write("\n")
    return 0


def _publish(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    async def run() -> list[str]:
        async with await _connect(settings, args.fhir_base, write=True) as client:
            return await workflow.publish_codesystems(client)

    for ref in asyncio.run(run()):
        out.write(f"{ref}\n")
    return 0


def _check_config(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.workers is not None:
        settings = settings.model_copy(update={"workers": args.workers})
    for name, value in effective_settings(settings):
        out.write(f"{name}={value}\n")
    problems = production_problems(settings)
    production = settings.environment == "production"
    heading = "production refuses" if production else "production would refuse"
    out.write(f"\n{heading} ({len(problems)}):\n" if problems else
              "\nno production problems\n")
    out.writelines(f"  - {problem}\n" for problem in problems)
    return 2 if production and problems else 0


def _serve(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from service import serving
    from service.config_report import refuse_unsafe_production

    workers = args.workers or settings.workers
    refuse_unsafe_production(settings.model_copy(update={"workers": workers}))
    if workers > 1 and settings.metrics_port is not None:
        raise ConfigError("KETAMINE_METRICS_PORT needs KETAMINE_WORKERS=1: the workers cannot "
                          "share the port (run one worker per container)")
    if args.env_file:  # the workers load the settings again, from the same file
        os.environ[ENV_FILE_VARIABLE] = str(args.env_file)
    if args.workers:
        os.environ["KETAMINE_WORKERS"] = str(workers)
    level = args.log_level or settings.log_level
    # Our access line (service.access) replaces uvicorn's: it has the route template and the
    # duration, and never the query string.
    started = serving.serve(settings, host=args.host, port=args.port, workers=workers,
                            log_config=uvicorn_log_config(level), log_level=level.lower())
    return 0 if started else 3


COMMANDS = {"screen": _screen, "demo": _demo, "publish-codesystems": _publish,
            "check-config": _check_config, "serve": _serve}


def _parser() -> argparse.ArgumentParser:
    return cli_help.build_parser(version=f"ketamine-screen {__version__}",
                                 products=PRODUCT_CHOICES, rulesets=tuple(RULESETS),
                                 as_of=parse_as_of)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.env_file)
        configure_logging(args.log_level or "WARNING")
        set_pseudonym_key(settings.log_pseudonym_key)
        use_canonical_base(settings.canonical_base)
        return int(COMMANDS[args.command](args, settings, out or sys.stdout))
    except ServiceError as exc:
        sys.stderr.write(f"ketamine-screen: error: {exc}\n")
        return exc.exit_code
