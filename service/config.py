"""All configuration, read from the environment (prefix ``KETAMINE_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "get_settings"]

_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "xxx"}


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KETAMINE_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    demo: bool = False
    """Serve the built-in demo launcher (``/demo``) that stands in for an EHR (``make demo-ui``)."""
    base_url: str = "http://127.0.0.1:8000"
    """Public URL of this service (CDS Hooks ``aud``, SMART redirect defaults)."""

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
    discovery_ttl_seconds: int = Field(default=3600, ge=0)
    """How long a FHIR server's ``.well-known/smart-configuration`` is cached."""

    # The service's own REST API (bearer JWTs from this issuer)
    api_issuer: str | None = None
    api_audience: str | None = None
    api_jwks_url: str | None = None

    # CDS Hooks clients allowed to call us (issuer -> JWKS URL is taken from the JWT's jku)
    cds_allowed_issuers: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Shared state for several replicas
    redis_url: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _split_lists(cls, data: object) -> object:
        if isinstance(data, dict):
            for key in ("allowed_issuers", "frame_ancestors", "cds_allowed_issuers"):
                if key in data:
                    data[key] = _split(data[key])
        return data

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.environment == "production":
            if self.client_secret is not None and self.client_secret.lower() in _PLACEHOLDERS:
                raise ValueError("KETAMINE_CLIENT_SECRET is a placeholder; set a real secret")
            if not self.allowed_issuers:
                raise ValueError("KETAMINE_ALLOWED_ISSUERS must name at least one FHIR server")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
