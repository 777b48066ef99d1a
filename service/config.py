"""All configuration, read from the environment (prefix ``KETAMINE_``); a ``.env`` file only when
named (``KETAMINE_ENV_FILE``, or the command line's ``--env-file``), never picked up from the
working directory.

Secrets can come from files (container secrets, e.g. ``/run/secrets/...``): for each setting in
:data:`SECRET_FILE_SETTINGS`, ``KETAMINE_<NAME>_FILE`` names a file whose content (surrounding
whitespace removed) is the value; the variable itself wins when both are set.
:func:`load_settings` turns a bad value into one :class:`~service.errors.ConfigError` line that
names the variable and the form it expects (the command line exits 2). What production refuses
is listed by :func:`service.config_report.production_problems`.
"""

from __future__ import annotations

import os
import types
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from annotated_types import Ge, Gt, Le, Lt
from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from service.errors import ConfigError
from service.logs import DEFAULT_PSEUDONYM_KEY

__all__ = [
    "ENV_FILE_VARIABLE",
    "ENV_PREFIX",
    "SECRET_FILE_SETTINGS",
    "Settings",
    "env_name",
    "expected_form",
    "get_settings",
    "load_settings",
]

ENV_PREFIX = "KETAMINE_"
ENV_FILE_VARIABLE = "KETAMINE_ENV_FILE"
"""Names the ``.env`` file to read; without it none is read."""
SECRET_FILE_SETTINGS = ("client_secret", "log_pseudonym_key", "redis_url", "session_keys")
"""Settings that may also come from ``KETAMINE_<NAME>_FILE`` (and are masked when shown)."""


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def env_name(field: str) -> str:
    """``fhir_timeout_seconds`` -> ``KETAMINE_FHIR_TIMEOUT_SECONDS``."""
    return ENV_PREFIX + field.upper()


class _SecretFiles(PydanticBaseSettingsSource):
    """``KETAMINE_<NAME>_FILE`` for the settings in SECRET_FILE_SETTINGS."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every file at once

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name in SECRET_FILE_SETTINGS:
            variable = env_name(name) + "_FILE"
            path = os.environ.get(variable)
            if not path:
                continue
            try:
                found[name] = Path(path).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as err:
                reason = getattr(err, "strerror", None) or type(err).__name__
                raise ConfigError(f"{variable}: cannot read the file ({reason})") from None
        return found


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=None, extra="ignore",
                                      env_ignore_empty=True)

    environment: Literal["development", "test", "production"] = "development"
    demo: bool = False
    """Serve the built-in demo launcher (``/demo``) that stands in for an EHR (``make demo-ui``)."""
    base_url: str = "http://127.0.0.1:8000"
    """Public URL of this service (CDS Hooks ``aud``, SMART redirect defaults)."""

    # What the app writes to charts
    canonical_base: str = "http://ketamine-screen.example.org/fhir"
    """Base URL of the project's identifier systems (``<base>/identifier/...``) and CodeSystems
    (``<base>/CodeSystem/...``) in everything written to charts. Choose it once, before the
    first write to real charts: identifiers written under another base no longer match (the
    README's "Canonical base"). The default is for development and tests; production refuses
    example and reserved test domains."""

    # Screening
    ruleset: Literal["v1", "v2"] = "v2"
    """The ruleset version screens use (v1 stays loadable for results already written)."""
    bp_window_days: int = Field(default=30, ge=1, le=365)
    bp_systolic_uncontrolled: float = 180
    bp_diastolic_uncontrolled: float = 100
    bp_systolic_elevated: float = 140
    bp_diastolic_elevated: float = 90
    bp_systolic_guide_65: float = 150
    bp_diastolic_guide_65: float = 90
    """EU-SPRAVATO's blood-pressure guide at 65 or older (quoted in the age information)."""
    eligibility_lookback_days: int = Field(default=730, ge=1, le=3650)
    """Antidepressant trials count within this look-back when the depression diagnosis has no
    onset or recorded date."""

    # Treatment course
    integration_window_days: int = Field(default=7, ge=1, le=90)
    """The timeline flags a dosing session with no integration (psychotherapy) session within
    this many days after it."""

    # EHR FHIR access
    fhir_timeout_seconds: float = Field(default=10.0, gt=0)
    fhir_max_retries: int = Field(default=3, ge=0, le=10)
    fhir_page_size: int = Field(default=200, ge=10, le=1000)
    fhir_max_connections: int = Field(default=32, ge=1, le=1000)
    """Connections kept to each FHIR server, at most (one pool per server for the process);
    requests beyond wait for a free one (within the timeout)."""
    bulk_poll_max_seconds: float = Field(default=5.0, gt=0, le=300)
    """Longest wait between Bulk Data status polls (servers such as HAPI always ask for 120 s)."""

    # SMART App Launch (as a confidential client)
    client_id: str = "ketamine-screen"
    client_secret: str | None = None
    private_key_file: Path | None = None
    private_key_alg: Literal["RS384", "ES384"] = "RS384"
    allowed_issuers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redirect_uri: str = "http://127.0.0.1:8000/callback"
    frame_ancestors: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["'self'"])
    cookie_secure: bool = True
    session_ttl_seconds: int = Field(default=8 * 3600, ge=300)
    """How long a clinician's launch stays usable (bounded by the EHR's refresh token)."""
    draft_ttl_hours: int = Field(default=12, ge=1, le=72)
    """How long the server keeps a draft of the treatment-session form (encrypted, like the
    sessions): long enough for a dosing visit and a relaunch, short enough not to hoard PHI."""
    offline_access: bool = False
    """Ask the EHR for ``offline_access`` (a refresh token that outlives the user's EHR session)
    instead of ``online_access``; only where the clinic's policy allows it."""
    discovery_ttl_seconds: int = Field(default=3600, ge=0)
    """How long a FHIR server's ``.well-known/smart-configuration`` is cached."""

    # The service's own REST API (bearer JWTs from this issuer)
    api_issuer: str | None = None
    api_audience: str | None = None
    api_jwks_url: str | None = None

    # CDS Hooks clients allowed to call us
    cds_allowed_issuers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cds_jwks_urls: dict[str, str] = Field(default_factory=dict)
    """Each allowed CDS issuer's JWK Set URL (JSON object, issuer -> URL). Keys are fetched from
    here only; a JWT's ``jku``, when present, must equal it exactly."""

    # Shared state for several replicas
    redis_url: str | None = None
    """Shared launch and session state (``redis://...``); needed with more than one worker."""

    # Operations
    workers: int = Field(default=1, ge=1, le=64)
    """Worker processes of ``ketamine-screen serve`` (more than one needs ``redis_url``)."""
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, le=600)
    """On SIGTERM, how long requests in flight may take to finish before the server stops."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Level of the JSON log lines on stderr."""
    log_pseudonym_key: str = DEFAULT_PSEUDONYM_KEY
    """Key of the keyed hash that stands in for patient ids in log lines (production needs its
    own: a long random string, kept secret and stable so lines stay joinable)."""
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Serve Prometheus ``/metrics`` on this port, apart from the service's; unset: not served."""
    metrics_host: str = "127.0.0.1"
    """Address the metrics port binds to (``0.0.0.0`` for a scraper on the container network)."""

    session_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """Fernet keys (comma-separated) that encrypt launch and session state and session-form
    drafts at rest. The first encrypts, every one decrypts: to rotate, put a new key first and
    drop an old one once ``session_ttl_seconds`` and ``draft_ttl_hours`` have passed. Required
    in production; elsewhere a key made at start-up is used when unset (state is then unreadable
    by other processes)."""

    # Bounded input, checked before a body is parsed or its sender authenticated
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    """Largest request body of a route without a limit of its own (screenings, sessions, forms,
    CDS feedback); larger is answered 413 from ``Content-Length`` or as the body streams in."""
    max_cds_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    """Largest CDS service call (context, draft orders and prefetch)."""
    max_bundle_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    """Largest Bundle ``$evaluate`` takes; read as it streams in and never buffered beyond this."""
    max_heavy_requests: int = Field(default=4, ge=1, le=256)
    """Heavy requests (``$evaluate``, screenings, sessions, CDS calls) one process serves at once;
    more are answered 503 with ``Retry-After`` before their body is read."""
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    """Longest a client may take to send a request body (then 408 and the connection closes)."""
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    """Longest a client may take to send a request's headers (``serve``; then the connection is
    closed)."""
    keep_alive_seconds: float = Field(default=5.0, gt=0)
    """How long an idle keep-alive connection stays open (``serve``)."""
    max_connections: int = Field(default=200, ge=1)
    """Open connections and requests one ``serve`` process takes; more are answered 503."""

    # The audit trail (one record per access; the one place real patient ids are written)
    audit_log: str = "stdout"
    """``stdout``, ``stderr`` or a file path (JSON lines, appended; reopened when rotated away).
    The command line writes to stderr instead of stdout, which carries its results."""
    audit_fhir_base: str | None = None
    """Also send each record as a FHIR AuditEvent to this server (no token is sent)."""

    @model_validator(mode="before")
    @classmethod
    def _split_lists(cls, data: object) -> object:
        if isinstance(data, dict):
            for key in ("allowed_issuers", "frame_ancestors", "cds_allowed_issuers",
                        "session_keys"):
                if key in data:
                    data[key] = _split(data[key])
        return data

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings, _SecretFiles(settings_cls))

    @model_validator(mode="after")
    def _check_canonical_base(self) -> Settings:
        parts = urlsplit(self.canonical_base)
        if (parts.scheme not in ("http", "https") or not parts.hostname or parts.query
                or parts.fragment or parts.username or parts.password
                or any(c.isspace() for c in self.canonical_base)):
            raise ValueError("KETAMINE_CANONICAL_BASE must be an http(s) URL without query, "
                             "fragment or credentials, e.g. https://screening.example-clinic.ch"
                             "/fhir")
        self.canonical_base = self.canonical_base.rstrip("/")
        return self

    @model_validator(mode="after")
    def _check_keys(self) -> Settings:
        for key in self.session_keys:
            try:
                Fernet(key.get_secret_value())
            except ValueError:
                raise ValueError("KETAMINE_SESSION_KEYS: each key must be a Fernet key "
                                 "(32 url-safe base64-encoded bytes)") from None
        issuers = {_issuer(i) for i in self.cds_allowed_issuers}
        urls = {_issuer(i): url for i, url in self.cds_jwks_urls.items()}
        if missing := sorted(issuers - set(urls)):
            raise ValueError("KETAMINE_CDS_JWKS_URLS must give the JWK Set URL of every CDS "
                             f"issuer (missing: {', '.join(missing)})")
        if unknown := sorted(set(urls) - issuers):
            raise ValueError("KETAMINE_CDS_JWKS_URLS names issuers that are not in "
                             f"KETAMINE_CDS_ALLOWED_ISSUERS: {', '.join(unknown)}")
        # REST API keys and CDS client keys are never accepted for each other.
        if self.api_issuer and _issuer(self.api_issuer) in issuers:
            raise ValueError("KETAMINE_API_ISSUER may not also be a CDS issuer")
        if self.api_jwks_url and self.api_jwks_url in urls.values():
            raise ValueError("KETAMINE_API_JWKS_URL may not also be a CDS issuer's JWK Set")
        return self


def _issuer(url: str) -> str:
    return url.strip().rstrip("/")


def _describe(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _describe(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        return _describe(options[0]) + " (or unset)" if len(options) == 1 else "a value"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(annotation))
    if origin is list:
        return "a comma-separated list"
    return {bool: "true or false", int: "an integer", float: "a number", Path: "a file path",
            str: "text"}.get(annotation, "a value")


def expected_form(field: str) -> str:
    """What ``KETAMINE_<FIELD>`` must look like, from the field's type and bounds.

    >>> expected_form("fhir_page_size")
    'an integer, at least 10, at most 1000'
    >>> expected_form("ruleset")
    'one of v1, v2'
    """
    info = Settings.model_fields[field]
    form = _describe(info.annotation)
    words = {Gt: "greater than", Ge: "at least", Lt: "less than", Le: "at most"}
    for bound in info.metadata:
        for kind, text in words.items():
            if isinstance(bound, kind):
                form += f", {text} {getattr(bound, kind.__name__.lower())}"
    return form


def _one_line(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] in Settings.model_fields:
            problems.append(f"{env_name(loc[0])} must be {expected_form(loc[0])}")
        else:  # a check across settings: its message names the variables itself
            problems.append(str(error.get("msg", "invalid")).removeprefix("Value error, "))
    return "configuration: " + "; ".join(problems)


def load_settings(env_file: str | Path | None = None, **values: Any) -> Settings:
    """The settings from the environment (and ``env_file``, else ``KETAMINE_ENV_FILE`` when set);
    ConfigError, one line naming each bad variable (never its value), when one is unusable."""
    env_file = env_file or os.environ.get(ENV_FILE_VARIABLE) or None
    if env_file is not None and not Path(env_file).is_file():
        raise ConfigError(f"--env-file or {ENV_FILE_VARIABLE}: no such file: {env_file}")
    try:
        return Settings(_env_file=env_file, **values)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, loaded once (:func:`load_settings`)."""
    return load_settings()
