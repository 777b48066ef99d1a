"""The command line's arguments and the help a clinic's IT team reads (``--help``).

Kept apart from :mod:`service.cli` so that the words stay together and the commands stay short.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

__all__ = ["build_parser"]

_FORMAT = argparse.RawDescriptionHelpFormatter

MAIN = """\
Screen patients for ketamine / esketamine (Spravato) therapy against the product labels,
from a FHIR Bundle file or an EHR's FHIR R4 server, and run the web service.

Settings come from KETAMINE_* environment variables (see .env.example), a file named by
--env-file or KETAMINE_ENV_FILE, and KETAMINE_<NAME>_FILE for secrets kept in files.

Exit codes: 0 done, 1 the FHIR server or the network failed, 2 bad input (an argument, a
file, a setting). Errors are one line on stderr, without patient data."""

MAIN_EPILOG = """\
examples:
  ketamine-screen demo                               screen the built-in demo patients
  ketamine-screen screen --bundle patient.json       screen a Bundle file, no EHR needed
  ketamine-screen check-config                       show the settings, list what production refuses
  ketamine-screen serve --host 0.0.0.0               run the service (port 8000)

Run 'ketamine-screen COMMAND --help' for the options of each command."""

AUTH = """\
Talking to an EHR: every command that reads from or writes to --fhir-base authenticates:
  - with KETAMINE_FHIR_TOKEN set: that bearer token, as it is (it wins);
  - else with SMART Backend Services when client credentials are set: KETAMINE_CLIENT_ID and
    KETAMINE_PRIVATE_KEY_FILE (private_key_jwt, RS384/ES384) or KETAMINE_CLIENT_SECRET, and
    --fhir-base listed in KETAMINE_ALLOWED_ISSUERS (the token endpoint is discovered there);
  - else without a token (a test server), with a warning on stderr."""

SCREEN = """\
Screen one patient, from a FHIR Bundle file (--bundle) or from an EHR (--fhir-base with
--patient), or everyone on the EHR (--all, or the members of one Group with --group) through
Bulk Data $export. The report goes to stdout: the verdict per product first, then the
findings with the records and the label section behind each.

""" + AUTH

SCREEN_EPILOG = """\
examples:
  ketamine-screen screen --bundle patient.json
  ketamine-screen screen --bundle patient.json --format json --product esketamine
  KETAMINE_FHIR_TOKEN=eyJ... ketamine-screen screen --fhir-base https://ehr.example/fhir \\
      --patient 123 --as-of 2026-11-27T09:00:00Z
  ketamine-screen screen --fhir-base https://ehr.example/fhir --patient 123 --write-back
  ketamine-screen screen --fhir-base https://ehr.example/fhir --all --format json > all.ndjson

With --all the wait for the export and the screening show a progress bar on a terminal (a
line every 100 patients otherwise), then a summary table of verdicts."""

PUBLISH = """\
Publish the project's CodeSystems (the codes of the screening results and findings it writes)
to the EHR, once per EHR. Conditional updates: running it again changes nothing.

""" + AUTH

PUBLISH_EPILOG = """\
example:
  ketamine-screen publish-codesystems --fhir-base https://ehr.example/fhir"""

CHECK = """\
Print the effective settings as KETAMINE_*=value lines (secrets masked), then every problem
production refuses (demo mode, http URLs, placeholder or default secrets, several workers
without Redis, ...). Exit code 2 when KETAMINE_ENVIRONMENT=production and any is found, so a
deployment pipeline can run it before starting the service."""

CHECK_EPILOG = """\
examples:
  ketamine-screen check-config
  KETAMINE_ENVIRONMENT=production ketamine-screen --env-file /etc/ketamine.env check-config"""

SERVE = """\
Run the web service: SMART App Launch pages, the REST API, CDS Hooks, /healthz and /readyz.
Logs are JSON lines on stderr (KETAMINE_LOG_LEVEL, INFO by default); Prometheus metrics are
served on KETAMINE_METRICS_PORT when it is set, never on the public port. In production the
service refuses to start while check-config lists a problem. On SIGTERM, requests in flight
get KETAMINE_SHUTDOWN_GRACE_SECONDS to finish."""

SERVE_EPILOG = """\
examples:
  ketamine-screen serve                                  http://127.0.0.1:8000
  KETAMINE_DEMO=1 ketamine-screen serve                  the demo launcher at /demo
  ketamine-screen --env-file prod.env serve --host 0.0.0.0 --workers 2"""

DEMO = """\
Screen the seven built-in, synthetic demo patients (every verdict, both eligibility answers)
and print their reports.
Needs no EHR and no network."""


def _common(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--env-file", metavar="FILE", default=default,
                        help="read KETAMINE_* settings from this file too (the environment "
                             "wins); without it no .env file is read")
    parser.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        default=default,
                        help="JSON log lines on stderr from this level (default: WARNING; "
                             "for serve, KETAMINE_LOG_LEVEL, else INFO)")


def _with_parents(common: argparse.ArgumentParser) -> type[argparse.ArgumentParser]:
    class SubParser(argparse.ArgumentParser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("parents", [common])
            super().__init__(*args, **kwargs)

    return SubParser


def build_parser(*, version: str, products: Sequence[str], rulesets: Sequence[str],
                 as_of: Callable[[str], datetime]) -> argparse.ArgumentParser:
    """The whole command line; each subcommand's ``command`` is its name."""
    parser = argparse.ArgumentParser(prog="ketamine-screen", description=MAIN,
                                     epilog=MAIN_EPILOG, formatter_class=_FORMAT)
    parser.add_argument("--version", action="version", version=version)
    _common(parser, None)
    # The same two options after the command name too; there, absent means "as before it".
    common = argparse.ArgumentParser(add_help=False)
    _common(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_with_parents(common))

    scr = sub.add_parser("screen", help="screen one patient (a Bundle file or an EHR), or all",
                         description=SCREEN, epilog=SCREEN_EPILOG, formatter_class=_FORMAT)
    source = scr.add_argument_group("where the records come from")
    source.add_argument("--bundle", metavar="FILE", help="a FHIR R4 Bundle (JSON) to screen")
    source.add_argument("--fhir-base", metavar="URL", help="the EHR's FHIR R4 base URL")
    source.add_argument("--patient", metavar="ID",
                        help="the Patient id on --fhir-base (or which patient of a --bundle)")
    source.add_argument("--all", action="store_true",
                        help="screen every patient on --fhir-base (Bulk Data $export)")
    source.add_argument("--group", metavar="ID", help="screen the members of this Group only")
    how = scr.add_argument_group("how")
    how.add_argument("--as-of", type=as_of, metavar="WHEN",
                     help="evaluation time, ISO 8601 (a bare date means its end; default now)")
    how.add_argument("--product", default="both",
                     help=f"{', '.join(products)} (default: both)")
    how.add_argument("--ruleset", help=f"{', '.join(rulesets)} (default: KETAMINE_RULESET, "
                                       "else v2)")
    how.add_argument("--format", choices=("text", "json"), default="text",
                     help="text report (default) or the JSON contract (NDJSON with --all)")
    how.add_argument("--write-back", action="store_true",
                     help="write the screening result to --fhir-base (one transaction; a "
                          "repeat adds nothing)")

    demo = sub.add_parser("demo", help="screen the built-in demo patients (no EHR needed)",
                          description=DEMO, formatter_class=_FORMAT)
    demo.add_argument("--as-of", type=as_of, metavar="WHEN",
                      help="evaluation time (default 2026-11-27, the demo records' date)")
    demo.add_argument("--format", choices=("text", "json"), default="text")

    pub = sub.add_parser("publish-codesystems", help="publish the CodeSystems to an EHR, once",
                         description=PUBLISH, epilog=PUBLISH_EPILOG, formatter_class=_FORMAT)
    pub.add_argument("--fhir-base", metavar="URL", required=True,
                     help="the EHR's FHIR R4 base URL")

    chk = sub.add_parser("check-config", help="show the settings and what production refuses",
                         description=CHECK, epilog=CHECK_EPILOG, formatter_class=_FORMAT)
    chk.add_argument("--workers", type=int, metavar="N",
                     help="check as if serving with N workers (default: KETAMINE_WORKERS)")

    srv = sub.add_parser("serve", help="run the web service", description=SERVE,
                         epilog=SERVE_EPILOG, formatter_class=_FORMAT)
    srv.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container)")
    srv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    srv.add_argument("--workers", type=int, metavar="N",
                     help="worker processes (default: KETAMINE_WORKERS, else 1; more than one "
                          "needs KETAMINE_REDIS_URL)")
    return parser
