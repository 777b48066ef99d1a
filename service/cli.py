"""The ``ketamine-screen`` command line: the only place that exits the process.

Exit codes: 0 done; 1 the FHIR server or the network failed; 2 bad input (a file, an argument):
each error class carries its own (``exit_code`` in :mod:`service.errors`). Errors are one line on
stderr, without a traceback and without patient data. Every command goes through
:mod:`service.workflow`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TextIO

import msgspec

from service import __version__, workflow
from service.clients import FhirClients
from service.config import Settings, get_settings
from service.errors import InputError, ServiceError
from service.population import PopulationSummary
from service.render.report import text_report
from service.screening.engine import PRODUCT_CHOICES, RULESETS
from service.screening.model import RawPatientData, ScreeningResult
from service.screening.policy import products_asked
from service.screening.ruleset import check_choice

__all__ = ["main", "parse_as_of", "run_population"]

log = logging.getLogger("ketamine_screen")


def parse_as_of(text: str) -> datetime:
    """An ISO 8601 date or date-time; a bare date means the end of that day (UTC)."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(23, 59, 59), UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--as-of {text!r} is not an ISO 8601 date-time") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


_ENCODER = msgspec.json.Encoder()
"""Population NDJSON: one contract a line, as fast as it is screened."""


def _clients() -> FhirClients:
    return FhirClients(get_settings())


def _emit(result: ScreeningResult, fmt: str, out: TextIO) -> None:
    if fmt == "json":
        out.write(json.dumps(result.as_contract(), indent=2) + "\n")
    else:
        out.write(text_report(result))


async def _from_server(base: str, patient: str, as_of: datetime, settings: Settings,
                       args: argparse.Namespace) -> tuple[ScreeningResult, RawPatientData]:
    async with _clients().plain(base) as client:
        return await workflow.screen_from_fhir(client, patient, as_of=as_of, settings=settings,
                                               ruleset=args.ruleset, products=args.product)


async def _write_back(base: str, result: ScreeningResult, raw: RawPatientData) -> list[str]:
    async with _clients().plain(base) as client:
        return await workflow.write_screening_result(client, result, raw)


def run_population(fhir_base: str, out: TextIO, *, as_of: datetime, fmt: str = "text",
                   group: str | None = None, err: TextIO | None = None) -> int:
    """``screen --all``: NDJSON contracts (``json``) or nothing per patient (``text``), then the
    summary table (stdout for text, stderr for json)."""
    err = err or sys.stderr
    settings = get_settings()

    def emit(result: ScreeningResult) -> None:
        if fmt == "json":
            out.write(_ENCODER.encode(result.as_contract()).decode() + "\n")

    async def run() -> PopulationSummary:
        async with _clients().plain(fhir_base) as client:
            return await workflow.screen_population(client, as_of=as_of, settings=settings,
                                                    emit=emit, group=group, progress=err)

    summary = asyncio.run(run())
    (err if fmt == "json" else out).write(summary.table())
    return 0


def _screen(args: argparse.Namespace, out: TextIO) -> int:
    as_of = args.as_of or workflow.evaluation_time()
    settings = get_settings()
    # Bad choices fail before anything is read (ChoiceError is an InputError: exit 2).
    args.ruleset = check_choice(args.ruleset or settings.ruleset, tuple(RULESETS), "ruleset")
    products_asked(args.product)
    if args.all or args.group:
        if not args.fhir_base or args.bundle or args.patient or args.write_back:
            raise InputError("--all/--group need --fhir-base URL, without --bundle, --patient "
                             "or --write-back")
        return run_population(args.fhir_base, out, as_of=as_of, fmt=args.format,
                              group=args.group)
    if args.bundle:
        result, raw = workflow.screen_file(Path(args.bundle), args.patient, as_of=as_of,
                                           settings=settings, ruleset=args.ruleset,
                                           products=args.product)
    else:
        if not (args.fhir_base and args.patient):
            raise InputError("screen needs --bundle FILE, or --fhir-base URL with --patient ID")
        result, raw = asyncio.run(_from_server(args.fhir_base, args.patient, as_of, settings,
                                               args))
    for problem in raw.problems:
        sys.stderr.write(f"ketamine-screen: warning: {problem.reference}: {problem.problem}\n")
    _emit(result, args.format, out)
    if args.write_back:
        if not args.fhir_base:
            raise InputError("--write-back needs --fhir-base URL (the server to write to)")
        written = asyncio.run(_write_back(args.fhir_base, result, raw))
        sys.stderr.write(f"ketamine-screen: wrote {len(written)} resource(s): "
                         f"{', '.join(written)}\n")
    return 0


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    as_of = args.as_of or parse_as_of("2026-11-27")
    for path, result in workflow.demo_screenings(as_of=as_of, settings=get_settings()):
        if args.format == "json":
            _emit(result, "json", out)
        else:
            out.write(f"=== demo patient {path.stem} ===\n")
            out.write(text_report(result))
            out.write("\n")
    return 0


def _publish(args: argparse.Namespace, out: TextIO) -> int:
    async def run() -> list[str]:
        async with _clients().plain(args.fhir_base) as client:
            return await workflow.publish_codesystems(client)

    for ref in asyncio.run(run()):
        out.write(f"{ref}\n")
    return 0


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    import uvicorn

    uvicorn.run("service.main:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="info", proxy_headers=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ketamine-screen", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    scr = sub.add_parser("screen", help="screen one patient from a Bundle file or a FHIR server")
    scr.add_argument("--bundle", metavar="FILE", help="a FHIR R4 Bundle (JSON)")
    scr.add_argument("--fhir-base", metavar="URL", help="FHIR R4 base URL")
    scr.add_argument("--patient", metavar="ID", help="Patient id (required with --fhir-base)")
    scr.add_argument("--as-of", type=parse_as_of, help="evaluation time (ISO 8601; default now)")
    scr.add_argument("--format", choices=("text", "json"), default="text")
    scr.add_argument("--product", default="both",
                     help=f"{', '.join(PRODUCT_CHOICES)} (default: both)")
    scr.add_argument("--ruleset",
                     help=f"{', '.join(RULESETS)} (default: KETAMINE_RULESET, else v2)")
    scr.add_argument("--write-back", action="store_true",
                     help="write the screening Observation to --fhir-base")
    scr.add_argument("--all", action="store_true",
                     help="screen every patient on --fhir-base (Bulk Data $export)")
    scr.add_argument("--group", metavar="ID", help="screen the members of this Group only")
    scr.set_defaults(run=_screen)

    demo = sub.add_parser("demo", help="screen the embedded demo patients (no EHR needed)")
    demo.add_argument("--as-of", type=parse_as_of)
    demo.add_argument("--format", choices=("text", "json"), default="text")
    demo.set_defaults(run=_demo)

    pub = sub.add_parser("publish-codesystems",
                         help="publish the project's CodeSystems to a FHIR server (idempotent)")
    pub.add_argument("--fhir-base", metavar="URL", required=True)
    pub.set_defaults(run=_publish)

    srv = sub.add_parser("serve", help="run the web service")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--workers", type=int, default=1)
    srv.set_defaults(run=_serve)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args, out or sys.stdout))
    except ServiceError as exc:
        sys.stderr.write(f"ketamine-screen: error: {exc}\n")
        return exc.exit_code
