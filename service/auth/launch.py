"""SMART App Launch as a confidential client: EHR launch and standalone launch.

https://hl7.org/fhir/smart-app-launch/app-launch.html. The authorization request always carries
PKCE S256 and a single-use ``state`` bound to the browser's cookie; the code is exchanged with
client authentication; the id_token is verified; tokens stay in the server-side store.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass

import httpx
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.oauth2.client import OAuth2Client

from service.auth.client_auth import oauth_client
from service.auth.discovery import check_issuer
from service.auth.idtoken import verify_id_token
from service.auth.scopes import user_scopes
from service.auth.session import SmartSession, session_key
from service.auth.smart import SmartApp
from service.errors import LaunchError, TokenEndpointUnavailable
from service.logs import pseudonym

__all__ = ["LAUNCH_TTL_SECONDS", "CompletedLaunch", "begin_launch", "complete_launch"]

log = logging.getLogger(__name__)

LAUNCH_TTL_SECONDS = 600
"""A pending launch (state, PKCE verifier, nonce) lives ten minutes and is used once."""
_ERROR_CODE = re.compile(r"^[a-z_]{1,64}$")


@dataclass(frozen=True, slots=True)
class CompletedLaunch:
    handle: str
    """Non-secret name of this launch within the browser session (``/app?ctx=...``)."""
    session: SmartSession


def _binding(browser_id: str) -> str:
    return hashlib.sha256(browser_id.encode()).hexdigest()


async def begin_launch(smart: SmartApp, *, iss: str | None, launch: str | None,
                       standalone: bool, browser_id: str) -> str:
    """The authorization URL to redirect the browser to."""
    settings = smart.settings
    iss = check_issuer(iss, settings.allowed_issuers)
    if not standalone and not launch:
        raise LaunchError("An EHR launch needs the 'launch' parameter from the EHR.")
    config = await smart.discovery.get(iss)
    state = secrets.token_urlsafe(32)
    verifier = generate_token(64)
    nonce = secrets.token_urlsafe(24)
    scope = user_scopes(standalone=standalone, v2=config.supports_v2_scopes,
                        offline=settings.offline_access)
    client = OAuth2Client(None, client_id=settings.client_id, redirect_uri=settings.redirect_uri,
                          scope=scope, code_challenge_method="S256")
    extra = {"launch": launch} if launch and not standalone else {}
    url, _ = client.create_authorization_url(
        config.authorization_endpoint, state=state, code_verifier=verifier,
        aud=iss, nonce=nonce, **extra,
    )
    await smart.store.put(
        f"launch:{state}",
        {"iss": iss, "verifier": verifier, "nonce": nonce, "binding": _binding(browser_id),
         "standalone": standalone, "scope": scope},
        LAUNCH_TTL_SECONDS,
    )
    log.info("SMART %s launch started for iss=%s", "standalone" if standalone else "EHR", iss)
    return str(url)


async def complete_launch(smart: SmartApp, *, state: str | None, code: str | None,
                          error: str | None, browser_id: str | None) -> CompletedLaunch:
    """Check the callback, exchange the code, verify the id_token, store the session."""
    if error:
        shown = error if _ERROR_CODE.match(error) else "unknown error"
        raise LaunchError(f"The EHR did not authorize the app ({shown}).")
    if not state or not code:
        raise LaunchError("The callback lacks 'state' or 'code'.")
    # pop: a state is consumed by its first use, whatever happens next.
    pending = await smart.store.pop(f"launch:{state}")
    if pending is None:
        raise LaunchError("Unknown, expired or already used launch state; launch again.")
    if not browser_id or not hmac.compare_digest(pending["binding"], _binding(browser_id)):
        raise LaunchError("This launch was started in another browser session; launch again.")
    iss = str(pending["iss"])
    config = await smart.discovery.get(iss)
    settings = smart.settings
    try:
        async with oauth_client(settings, config.token_endpoint,
                                redirect_uri=settings.redirect_uri) as client:
            token = dict(await client.fetch_token(
                config.token_endpoint, grant_type="authorization_code", code=code,
                code_verifier=pending["verifier"], redirect_uri=settings.redirect_uri,
            ))
    except OAuthError as err:
        raise LaunchError(f"The EHR refused to issue a token ({err.error}).") from None
    except (httpx.HTTPError, ValueError) as err:
        raise TokenEndpointUnavailable(
            f"The EHR's token endpoint did not answer properly ({type(err).__name__})."
        ) from None
    if not isinstance(token.get("access_token"), str):
        raise TokenEndpointUnavailable("The EHR's token response has no access_token.")

    fhir_user = sub = None
    if "id_token" not in token and "openid" in str(pending.get("scope", "openid")).split():
        # Who the user is comes from the id_token only (OpenID Connect Core section 3.1.3.3).
        raise LaunchError("The EHR sent no id_token although the app asked for one (openid).")
    if "id_token" in token:
        if not config.jwks_uri:
            raise LaunchError("The EHR sent an id_token but publishes no jwks_uri to check it.")
        claims = await verify_id_token(
            str(token["id_token"]), config=config, jwks=smart.jwks(config.jwks_uri),
            client_id=settings.client_id, nonce=str(pending["nonce"]),
            access_token=str(token["access_token"]),
        )
        fhir_user = claims.get("fhirUser") or claims.get("profile")
        sub = claims.get("sub")
    session = SmartSession.from_token(iss, config.token_endpoint, token,
                                      fhir_user=fhir_user, sub=sub)
    if not session.patient:
        raise LaunchError("The EHR did not say which patient to screen.")
    handle = secrets.token_urlsafe(12)
    await smart.store.put(session_key(browser_id, handle), session.to_json(),
                          settings.session_ttl_seconds)
    log.info("SMART launch completed for iss=%s patient %s user %s", iss,
             pseudonym(session.patient), pseudonym(fhir_user))
    return CompletedLaunch(handle=handle, session=session)
