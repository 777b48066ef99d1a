"""CDS Hooks 2.0 endpoints: discovery (public), the two services, and feedback.

https://cds-hooks.hl7.org/2.0/. A service answers ``{"cards": []}`` unless a draft order holds
ketamine or esketamine (the engine's own matcher decides). Records come from ``prefetch``; what it
lacks is read from ``fhirServer`` with ``fhirAuthorization.access_token`` (only when that server is
one of ``KETAMINE_ALLOWED_ISSUERS``), else the call answers 412 as the spec asks. The CDS client's
JWT is checked by :class:`CdsJwtVerifier` (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

import anyio.to_thread
import httpx
from fastapi import APIRouter, Depends, HTTPException, Path, Request
from joserfc import jws
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwt import JWTClaimsRegistry
from pydantic import BaseModel, ConfigDict, Field

from service.auth.api_tokens import LEEWAY_SECONDS
from service.auth.discovery import normalise_issuer
from service.auth.jwks import ASYMMETRIC_ALGS, JwksCache
from service.auth.problems import BearerError
from service.config import Settings
from service.errors import FhirError, InputError, TokenError
from service.fhir.bundle import parse_resource
from service.fhir.client import FhirClient
from service.fhir.paging import same_origin
from service.render.cds import PREFETCH, SERVICES, cards_for, discovery
from service.screening.matching import default_matcher
from service.screening.model import RawPatientData
from service.screening.normalise import normalise
from service.screening.ruleset import load_ruleset
from service.state.base import SessionStore
from service.workflow import screen_bundle

__all__ = ["CdsCaller", "CdsJwtVerifier", "CdsRequest", "holds_ketamine", "router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["cds-hooks"])

FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"
ServiceId = Annotated[str, Path(pattern=r"^[a-z0-9-]{1,64}$",
                                json_schema_extra={"enum": list(SERVICES)})]
MAX_MEDICATION_READS = 20


class FhirAuthorization(BaseModel):
    access_token: str = Field(min_length=1, max_length=8192)
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None


class HookContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    patientId: Annotated[str, Field(pattern=FHIR_ID)]
    userId: str | None = None
    draftOrders: dict[str, Any]
    selections: list[str] | None = None


class CdsRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    hook: str
    hookInstance: Annotated[str, Field(min_length=1, max_length=256)]
    fhirServer: Annotated[str | None, Field(max_length=2048)] = None
    fhirAuthorization: FhirAuthorization | None = None
    context: HookContext
    prefetch: dict[str, Any] | None = None


class CdsResponse(BaseModel):
    cards: list[dict[str, Any]]


class Feedback(BaseModel):
    model_config = ConfigDict(extra="allow")

    card: Annotated[str, Field(min_length=1, max_length=256)]
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[dict[str, Any]] | None = None
    overrideReason: dict[str, Any] | None = None
    outcomeTimestamp: str


class FeedbackRequest(BaseModel):
    feedback: Annotated[list[Feedback], Field(max_length=100)]



# -- the CDS client's JWT ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CdsCaller:
    issuer: str
    token_id: str
    tenant: str | None


class CdsJwtVerifier:
    """Checks ``Authorization: Bearer <JWT>`` from a CDS client.

    The issuer must be in ``KETAMINE_CDS_ALLOWED_ISSUERS``; its keys come from the JWT's ``jku``
    only when that URL is on the issuer's own origin (so a token cannot make us fetch arbitrary
    URLs); the signature must be asymmetric; ``aud`` must be this endpoint's URL; ``exp``, ``iat``
    and ``jti`` must be present, and a ``jti`` is accepted once.
    """

    def __init__(self, settings: Settings, store: SessionStore | None) -> None:
        self._issuers = {normalise_issuer(i) for i in settings.cds_allowed_issuers}
        self._timeout = settings.fhir_timeout_seconds
        self._store = store
        self._keys: dict[str, JwksCache] = {}

    async def verify(self, token: str, audiences: list[str]) -> CdsCaller:
        try:
            compact = jws.extract_compact(token.encode())
            header = compact.headers()
            claims = json.loads(compact.payload)
        except (JoseError, ValueError, UnicodeError):
            raise BearerError("The CDS client's JWT is malformed.") from None
        if not isinstance(claims, dict):
            raise BearerError("The CDS client's JWT carries no claims.")
        if header.get("alg") not in ASYMMETRIC_ALGS or not header.get("kid"):
            raise BearerError("The JWT must name its key (kid) and an asymmetric algorithm.")
        iss = claims.get("iss")
        if not isinstance(iss, str) or normalise_issuer(iss) not in self._issuers:
            raise BearerError("The JWT's issuer is not an allowed CDS client.")
        jku = header.get("jku")
        if not isinstance(jku, str) or not _jku_allowed(jku, iss):
            raise BearerError("The JWT's jku must be a JWK Set URL on its issuer's origin.")
        cache = self._keys.get(jku)
        if cache is None:
            cache = self._keys[jku] = JwksCache(jku, timeout=self._timeout)
        try:
            decoded = await cache.decode(token)
        except TokenError as err:
            raise BearerError(str(err)) from None
        registry = JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": iss},
            aud={"essential": True, "values": audiences},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(decoded.claims)
        except ExpiredTokenError:
            raise BearerError("The CDS client's JWT has expired.") from None
        except (InvalidClaimError, MissingClaimError) as err:
            raise BearerError(f"The JWT's '{err.claim}' claim is not acceptable.") from None
        except JoseError as err:
            raise BearerError(f"The JWT is not acceptable ({err.error}).") from None
        jti = str(decoded.claims["jti"])
        await self._once(iss, jti, decoded.claims.get("exp"))
        tenant = decoded.claims.get("tenant")
        return CdsCaller(iss, jti, tenant if isinstance(tenant, str) else None)

    async def _once(self, iss: str, jti: str, exp: object) -> None:
        if self._store is None:
            return
        key = f"cds-jti:{normalise_issuer(iss)}:{jti}"
        if await self._store.get(key) is not None:
            raise BearerError("This JWT was used before (jti replayed).")
        left = int(exp) - int(time.time()) if isinstance(exp, int | float) else 300
        await self._store.put(key, {"seen": True}, max(60, min(left + LEEWAY_SECONDS, 3600)))


def _jku_allowed(jku: str, iss: str) -> bool:
    parts = urlsplit(jku)
    if parts.scheme not in ("https", urlsplit(iss).scheme) or parts.username or parts.password:
        return False
    return same_origin(jku, iss)


async def verify_cds_client(request: Request) -> CdsCaller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise BearerError("A CDS client must send its JWT as a bearer token.", missing=True)
    if scheme.lower() != "bearer" or not token.strip():
        raise BearerError("Only 'Authorization: Bearer <JWT>' is accepted.")
    verifier: CdsJwtVerifier | None = getattr(request.app.state, "cds_jwt", None)
    if verifier is None:
        verifier = CdsJwtVerifier(request.app.state.settings,
                                  getattr(request.app.state, "store", None))
        request.app.state.cds_jwt = verifier
    base = str(request.app.state.settings.base_url).rstrip("/")
    path = request.url.path
    audiences = [base + path]
    if path.endswith("/feedback"):
        audiences.append(base + path.removesuffix("/feedback"))
    return await verifier.verify(token.strip(), audiences)


VerifiedClient = Annotated[CdsCaller, Depends(verify_cds_client)]


@router.get("/cds-services", summary="CDS Hooks discovery (public)")
async def cds_discovery() -> dict[str, Any]:
    return discovery()


@router.post("/cds-services/{service_id}", summary="Call a CDS service (CDS client JWT)",
             response_model=CdsResponse, response_model_exclude_none=True,
             responses={401: {"description": "missing or invalid CDS client JWT"},
                        404: {"description": "no such service"},
                        412: {"description": "prefetch incomplete and no usable fhirServer"}})
async def call_service(request: Request, service_id: ServiceId, body: CdsRequest,
                       client: VerifiedClient) -> dict[str, Any]:
    service = SERVICES.get(service_id)
    if service is None:
        raise HTTPException(404, f"No CDS service '{service_id}' here.")
    if body.hook != service.hook:
        raise InputError(f"The service '{service_id}' answers the '{service.hook}' hook only.")
    settings: Settings = request.app.state.settings
    patient_id = body.context.patientId
    if not await anyio.to_thread.run_sync(holds_ketamine, body.context, patient_id):
        log.info("cds %s (%s): no ketamine order, no cards", service_id, client.issuer)
        return {"cards": []}
    entries = await _records(body, patient_id, settings)
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": r} for r in entries]}
    result, _ = await screen_bundle(bundle, source="prefetch", patient_id=patient_id,
                                    as_of=None, settings=settings)
    ruleset, _ = load_ruleset()
    cards = cards_for(result, hook_instance=body.hookInstance, base_url=settings.base_url,
                      sources=ruleset.sources)
    log.info("cds %s (%s) for Patient/%s: %s, %d cards", service_id, client.issuer, patient_id,
             result.verdict.label, len(cards))
    return {"cards": cards}


@router.post("/cds-services/{service_id}/feedback", summary="Card feedback (CDS client JWT)",
             responses={401: {"description": "missing or invalid CDS client JWT"}})
async def feedback(service_id: ServiceId, body: FeedbackRequest,
                   client: VerifiedClient) -> dict[str, int]:
    if service_id not in SERVICES:
        raise HTTPException(404, f"No CDS service '{service_id}' here.")
    for item in body.feedback:
        # Outcome and card id only: override comments are free text and may name the patient.
        log.info("cds feedback %s: card %s %s", service_id, item.card, item.outcome)
    return {"received": len(body.feedback)}


# -- the draft orders ---------------------------------------------------------------------------

def _bundle_resources(value: object) -> Generator[dict[str, Any]]:
    if not isinstance(value, dict):
        return
    if value.get("resourceType") != "Bundle":
        if isinstance(value.get("resourceType"), str):
            yield value
        return
    for entry in value.get("entry") or []:
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            yield entry["resource"]


def holds_ketamine(context: HookContext, patient_id: str) -> bool:
    """True when a draft MedicationRequest (a selected one, for order-select) is ketamine or
    esketamine, by RxNorm, ATC or name (the allergy rule's lists, via the engine's matcher)."""
    selected = set(context.selections or [])
    raw = RawPatientData(patient_id=patient_id)
    for data in _bundle_resources(context.draftOrders):
        kind = data.get("resourceType")
        if kind not in ("MedicationRequest", "Medication"):
            continue
        if kind == "MedicationRequest" and selected and f"{kind}/{data.get('id')}" not in selected:
            continue
        try:
            resource = parse_resource(data)
        except ValueError:
            continue
        if kind == "Medication":
            raw.medications[f"Medication/{resource.id}"] = resource
        else:
            raw.resources.append(resource)
    matcher = default_matcher()
    facts = normalise(raw, matcher.terminology)
    return any(matcher.is_ketamine(m.concept) for m in facts.medications)


# -- the patient's records: prefetch, then the FHIR server ------------------------------------

class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


async def _records(body: CdsRequest, patient_id: str,
                   settings: Settings) -> list[dict[str, Any]]:
    prefetch = body.prefetch or {}
    entries: list[dict[str, Any]] = []
    for key in PREFETCH:
        entries.extend(_bundle_resources(prefetch.get(key)))
    missing = [key for key in PREFETCH if key not in prefetch]
    if not missing and not _unresolved_medications(entries):
        return entries
    client = _fhir_client(body, settings, required=bool(missing))
    if client is None:
        return entries
    async with client:
        try:
            fetched = await asyncio.gather(*(_fetch(client, key, patient_id) for key in missing))
            entries += [r for found in fetched for r in found]
            wanted = _unresolved_medications(entries)[:MAX_MEDICATION_READS]
            entries += await asyncio.gather(*(client.read("Medication", mid) for mid in wanted))
        except FhirError as err:
            raise HTTPException(412, f"Prefetch incomplete and the FHIR server failed: {err}") \
                from None
    log.info("cds: read %s from the FHIR server", ", ".join(missing) or "medications")
    return entries


def _fhir_client(body: CdsRequest, settings: Settings, *, required: bool) -> FhirClient | None:
    problem = None
    if not body.fhirServer or body.fhirAuthorization is None:
        problem = "the request has no fhirServer and fhirAuthorization"
    elif normalise_issuer(body.fhirServer) not in {normalise_issuer(a)
                                                   for a in settings.allowed_issuers}:
        problem = "fhirServer is not one of the FHIR servers this service may use"
    if problem is None:
        assert body.fhirServer is not None and body.fhirAuthorization is not None  # noqa: S101
        return FhirClient(normalise_issuer(body.fhirServer), settings=settings,
                          auth=_Bearer(body.fhirAuthorization.access_token))
    if required:
        raise HTTPException(412, f"Prefetch incomplete and {problem}.")
    return None


async def _fetch(client: FhirClient, key: str, patient_id: str) -> list[dict[str, Any]]:
    query = PREFETCH[key].replace("{{context.patientId}}", patient_id)
    if "?" not in query:
        kind, rid = query.split("/", 1)
        return [await client.read(kind, rid)]
    kind, params = query.split("?", 1)
    pairs = [(k, v) for k, v in parse_qsl(params) if k != "_count"]
    result = await client.search(kind, pairs)
    return result.matches + result.includes


def _unresolved_medications(entries: list[dict[str, Any]]) -> list[str]:
    have = {r.get("id") for r in entries if r.get("resourceType") == "Medication"}
    wanted: list[str] = []
    for resource in entries:
        if resource.get("resourceType") not in ("MedicationStatement", "MedicationRequest"):
            continue
        med = resource.get("medicationReference")
        ref = med.get("reference") if isinstance(med, dict) else None
        if not isinstance(ref, str) or ref.startswith("#"):
            continue
        parts = ref.split("/_history/")[0].split("/")
        if len(parts) >= 2 and parts[-2] == "Medication" and parts[-1] not in have:
            wanted.append(parts[-1])
            have.add(parts[-1])
    return wanted
