"""authlib's framework-neutral ``AuthorizationServer`` adapted to Starlette (test use only).

authlib ships Flask and Django adapters; this is the same few methods for Starlette: build an
``OAuth2Request`` from an already-read request, and turn authlib's ``(status, body, headers)``
into a Starlette response.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Payload
from starlette.requests import Request
from starlette.responses import Response


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, data: dict[str, str]) -> None:
        self._data = data

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        values: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in self._data.items():
            values[key].append(value)
        return values


class StarletteOAuth2Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, method: str, url: str, headers: Any,
                 args: dict[str, str], form: dict[str, str]) -> None:
        super().__init__(method, url, headers=headers)
        self._args = args
        self._form = form
        self.payload = _Payload({**args, **form})

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @classmethod
    async def read(cls, request: Request) -> StarletteOAuth2Request:
        form: dict[str, str] = {}
        if request.method == "POST":
            form = {k: str(v) for k, v in (await request.form()).items()}
        return cls(request.method, str(request.url), request.headers,
                   dict(request.query_params), form)


class StarletteAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        assert isinstance(request, StarletteOAuth2Request)
        return request

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        headers = dict(headers or [])
        if isinstance(body, dict):
            headers.setdefault("Content-Type", "application/json")
            body = json.dumps(body)
        return Response(body, status_code=status, headers=headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None
