"""The container files (issue 15): compose.yaml is a valid Compose file that runs the service with
Redis and a HAPI FHIR server; the Dockerfile pins its base, runs as a numeric user, carries OCI
labels and drains on SIGTERM. ``make container-check`` runs the same processes for real."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from service.config import Settings, env_name, load_settings
from service.config_report import production_problems

ROOT = Path(__file__).resolve().parents[1]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
SCHEMA = json.loads((ROOT / "tests/data/compose/compose_spec.json").read_text(encoding="utf-8"))
APP = COMPOSE["services"]["app"]


def test_compose_file_fits_the_compose_specification() -> None:
    validator = jsonschema_rs.validator_for(SCHEMA)
    errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(COMPOSE)]
    assert errors == []
    # The schema can fail too: a misspelt key is refused.
    broken = {**COMPOSE, "services": {**COMPOSE["services"], "app": {**APP, "usr": "0"}}}
    assert not validator.is_valid(broken)


def test_compose_runs_the_service_with_redis_and_hapi() -> None:
    assert set(COMPOSE["services"]) == {"app", "redis", "hapi"}
    env = APP["environment"]
    assert env["KETAMINE_REDIS_URL"].startswith("redis://redis:")
    assert env["KETAMINE_ALLOWED_ISSUERS"] == "http://hapi:8080/fhir"
    assert APP["depends_on"]["redis"]["condition"] == "service_healthy"
    assert COMPOSE["services"]["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert COMPOSE["services"]["hapi"]["environment"]["hapi.fhir.fhir_version"] == "R4"


def test_every_image_is_pinned_to_a_full_version() -> None:
    for name, service in COMPOSE["services"].items():
        image = service["image"]
        assert re.search(r":v?\d+\.\d+\.\d+", image), (name, image)
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base.group(1))
    assert re.findall(r"^FROM (\S+)", DOCKERFILE, re.M) == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]


def test_the_app_environment_is_a_valid_configuration() -> None:
    env = {str(k): str(v) for k, v in APP["environment"].items()}
    names = {env_name(field) for field in Settings.model_fields}
    assert set(env) <= names, set(env) - names
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        settings = load_settings()
    assert settings.redis_url and settings.metrics_port == 9464 and settings.workers == 1
    # The stop grace period outlasts the drain; production would refuse only the trial's
    # plain-HTTP parts, its development secrets (the pseudonym key, no session key) and the
    # development canonical base.
    assert int(APP["stop_grace_period"].removesuffix("s")) > settings.shutdown_grace_seconds
    refused = {p.split(" ")[0] for p in production_problems(settings)}
    assert refused <= {"KETAMINE_LOG_PSEUDONYM_KEY", "KETAMINE_ALLOWED_ISSUERS:",
                       "KETAMINE_REDIRECT_URI", "KETAMINE_BASE_URL", "KETAMINE_COOKIE_SECURE",
                       "KETAMINE_SESSION_KEYS", "KETAMINE_CANONICAL_BASE"}


def test_numeric_user_in_the_dockerfile_and_compose() -> None:
    assert re.findall(r"^USER (\S+)$", DOCKERFILE, re.M) == ["10001:10001"]
    assert "--uid 10001 --gid 10001" in DOCKERFILE and "--gid 10001 ketamine" in DOCKERFILE
    assert APP["user"] == "10001:10001"
    assert all(re.fullmatch(r"\d+:\d+", s["user"]) for s in COMPOSE["services"].values()
               if "user" in s)


def test_labels_and_the_drain() -> None:
    labels = set(re.findall(r"org\.opencontainers\.image\.([a-z.]+)=", DOCKERFILE))
    assert {"title", "description", "version", "licenses", "base.name"} <= labels
    assert re.search(r"^STOPSIGNAL SIGTERM$", DOCKERFILE, re.M)
    assert APP["stop_signal"] == "SIGTERM"
    assert re.search(r'^CMD \["serve", "--host", "0.0.0.0", "--port", "8000"\]$', DOCKERFILE,
                     re.M)
