"""Authentication and authorisation: SMART App Launch, Backend Services, REST API bearer tokens.

    discovery.py    trusted issuers, ``.well-known/smart-configuration`` (cached)
    launch.py       EHR / standalone launch: authorize URL (PKCE S256), callback, code exchange
    idtoken.py      id_token verification against the EHR's JWKS
    session.py      server-side clinician session, refresh, ``SessionAuth`` (httpx.Auth)
    backend.py      ``BackendServicesAuth`` (httpx.Auth): client_credentials + private_key_jwt
    client_auth.py  how we authenticate at a token endpoint (secret or private_key_jwt)
    api_tokens.py   bearer JWTs for our own REST API -> ``Caller``
    scopes.py       scopes we ask for and the API scopes we grant meaning to
    cds_client.py   the CDS client's JWT (CDS Hooks 2.0 "trusting CDS clients")
    jwks.py         remote JWK Sets, cached
    smart.py        the SMART client's shared parts (store, discovery, JWKS caches)
"""

from service.auth.api_tokens import Caller
from service.auth.backend import BackendServicesAuth
from service.auth.scopes import API_SCOPES, SCOPE_SCREEN, SCOPE_WRITE
from service.auth.session import SessionAuth, SmartSession

__all__ = [
    "API_SCOPES",
    "SCOPE_SCREEN",
    "SCOPE_WRITE",
    "BackendServicesAuth",
    "Caller",
    "SessionAuth",
    "SmartSession",
]
