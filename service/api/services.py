"""The application's services, built once in ``create_app`` and typed, never found by name.

Route handlers receive them through the ``Annotated`` aliases of :mod:`service.api.deps`; nothing
is created on a first request. ``page_source`` is decided here: the EHR's FHIR server, or (demo
mode) the demo Bundles for demo launches.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from service.api.limits import HeavyWork
from service.api.sources import PageSource, fhir_pages
from service.audit import AuditTrail
from service.auth.api_tokens import ApiTokenVerifier
from service.auth.cds_client import CdsJwtVerifier
from service.auth.smart import SmartApp
from service.clients import FhirClients
from service.config import Settings
from service.fhir.codesystems import use_canonical_base
from service.render.session_form import DRAFT_FIELDS
from service.screening.ruleset import Ruleset
from service.state import SessionStore, make_store
from service.state.drafts import Drafts

__all__ = ["AppServices", "build_services", "services_of"]


@dataclass(slots=True)
class AppServices:
    settings: Settings
    store: SessionStore
    smart: SmartApp
    api_tokens: ApiTokenVerifier
    cds_jwt: CdsJwtVerifier
    fhir: FhirClients
    page_source: PageSource
    audit: AuditTrail
    heavy: HeavyWork
    drafts: Drafts
    ruleset: Ruleset | None = None
    """Set by the lifespan once the maps have loaded (readiness)."""


def build_services(settings: Settings) -> AppServices:
    # What the app writes is named on the configured base from the first request on.
    use_canonical_base(settings.canonical_base)
    store = make_store(settings)
    smart = SmartApp(settings, store)
    fhir = FhirClients(settings, smart)
    return AppServices(settings=settings, store=store, smart=smart,
                       api_tokens=ApiTokenVerifier(settings),
                       cds_jwt=CdsJwtVerifier(settings, store), fhir=fhir,
                       page_source=fhir_pages(settings, fhir),
                       audit=AuditTrail.from_settings(settings, connect=fhir.audit),
                       heavy=HeavyWork(settings.max_heavy_requests),
                       drafts=Drafts(settings, store, DRAFT_FIELDS))


def services_of(app: FastAPI) -> AppServices:
    """The services ``create_app`` attached to ``app``."""
    services: AppServices = app.state.services
    return services
