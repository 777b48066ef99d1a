"""What ``ketamine-screen check-config`` shows: the effective settings (secrets masked) and every
problem production refuses.

Each production check is a small function in :data:`PRODUCTION_CHECKS` that returns its
problems as one-line texts naming the ``KETAMINE_*`` variable; a new check is one more function
in that list. ``create_app`` and ``serve`` refuse to start in production while any is found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

from service.config import SECRET_FILE_SETTINGS, Settings, env_name
from service.errors import ConfigError
from service.logs import DEFAULT_PSEUDONYM_KEY

__all__ = [
    "PRODUCTION_CHECKS",
    "effective_settings",
    "masked",
    "production_problems",
    "refuse_unsafe_production",
    "reserved_host",
]

_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "xxx"}
MASK = "********"

Check = Callable[[Settings], Iterator[str]]


def _secrets(settings: Settings) -> Iterator[str]:
    if settings.client_secret is not None and settings.client_secret.lower() in _PLACEHOLDERS:
        yield "KETAMINE_CLIENT_SECRET is a placeholder; set a real secret"
    if settings.log_pseudonym_key == DEFAULT_PSEUDONYM_KEY or len(settings.log_pseudonym_key) < 16:
        yield ("KETAMINE_LOG_PSEUDONYM_KEY is the development default or shorter than 16 "
               "characters; set a long random secret")


def _issuers(settings: Settings) -> Iterator[str]:
    if not settings.allowed_issuers:
        yield "KETAMINE_ALLOWED_ISSUERS must name at least one FHIR server"
    for iss in settings.allowed_issuers:
        if not iss.startswith("https://"):
            yield f"KETAMINE_ALLOWED_ISSUERS: {iss} is not an https URL"


def _demo(settings: Settings) -> Iterator[str]:
    if settings.demo:
        yield "KETAMINE_DEMO is on: the demo launcher stands in for an EHR; turn it off"


def _https(settings: Settings) -> Iterator[str]:
    for field in ("redirect_uri", "base_url"):
        value = str(getattr(settings, field))
        if not value.startswith("https://"):
            yield f"{env_name(field)} must be an https URL (it is {urlsplit(value).scheme}://...)"
    if not settings.cookie_secure:
        yield "KETAMINE_COOKIE_SECURE is false: the session cookie would travel over plain HTTP"


def _replicas(settings: Settings) -> Iterator[str]:
    if settings.workers > 1 and not settings.redis_url:
        yield (f"KETAMINE_WORKERS is {settings.workers} without KETAMINE_REDIS_URL: each worker "
               "would keep its own launches and sessions")
    if settings.workers > 1 and settings.metrics_port is not None:
        yield ("KETAMINE_METRICS_PORT with KETAMINE_WORKERS above 1: the workers cannot share "
               "the port; run one worker per container and scale the containers")


def _session_keys(settings: Settings) -> Iterator[str]:
    if not settings.session_keys:
        yield ("KETAMINE_SESSION_KEYS is unset: the EHR's tokens are encrypted at rest with a "
               "key made at start-up, which other replicas and restarts cannot read; set one")


_RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost", "local"})
"""Top-level names reserved for documentation and testing (RFC 2606, RFC 6761, RFC 6762)."""
_EXAMPLE_DOMAINS = frozenset({"example.com", "example.net", "example.org"})


def reserved_host(host: str) -> bool:
    """A documentation or test host: example.com/.net/.org and their subdomains, any name with an
    ``example`` label (``*.example.*``), or a reserved top-level name.

    >>> [reserved_host(h) for h in ("ketamine-screen.example.org", "fhir.example.ch",
    ...                             "ehr.test", "localhost", "screening.clinic.ch")]
    [True, True, True, True, False]
    """
    labels = host.lower().rstrip(".").split(".")
    return (".".join(labels[-2:]) in _EXAMPLE_DOMAINS or "example" in labels
            or labels[-1] in _RESERVED_TLDS)


def _canonical_base(settings: Settings) -> Iterator[str]:
    host = urlsplit(settings.canonical_base).hostname or ""
    if reserved_host(host):
        yield (f"KETAMINE_CANONICAL_BASE is on {host}, a reserved example or test domain: "
               "choose the base of the identifiers written to charts (once: changing it later "
               "needs a data migration)")


PRODUCTION_CHECKS: list[Check] = [_secrets, _issuers, _demo, _https, _replicas, _session_keys,
                                  _canonical_base]
"""Every production check."""


def production_problems(settings: Settings) -> list[str]:
    """Everything production refuses in these settings (empty: good to go)."""
    return [problem for check in PRODUCTION_CHECKS for problem in check(settings)]


def refuse_unsafe_production(settings: Settings) -> None:
    """ConfigError listing the problems, in production; nothing elsewhere."""
    if settings.environment != "production":
        return
    problems = production_problems(settings)
    if problems:
        raise ConfigError("production refuses: " + "; ".join(problems)
                          + " (ketamine-screen check-config lists them)")


def masked(field: str, value: object) -> str:
    """A setting's value as shown: secrets masked, a URL's password masked."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    text = str(value)
    if field in SECRET_FILE_SETTINGS and field != "redis_url":
        return MASK if text else ""
    if field == "redis_url":
        parts = urlsplit(text)
        if parts.password:
            user = f"{parts.username}:" if parts.username else ":"
            netloc = f"{user}{MASK}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
            return urlunsplit(parts._replace(netloc=netloc))
    return text


def effective_settings(settings: Settings) -> list[tuple[str, str]]:
    """(``KETAMINE_*`` name, value as shown) for every setting, in declaration order."""
    return [(env_name(name), masked(name, getattr(settings, name)))
            for name in Settings.model_fields]
