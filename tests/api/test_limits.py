"""Bounded input before authentication (issue 16): body limits from Content-Length and while the
body streams in, the places for heavy work, the body deadline. In-process (ASGI); the memory
these bounds keep is measured on a real uvicorn process in tests/perf/test_memory_bound.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from service import errors
from service.api.services import services_of
from service.config import Settings
from service.main import create_app
from tests.api.conftest import APP_ORIGIN, assert_problem
from tests.builders import PatientBuilder

CHUNK = 64 * 1024
Auth = Callable[..., dict[str, str]]


class Body:
    """A request body handed over chunk by chunk, counting what the service took."""

    def __init__(self, total: int, *, hold: asyncio.Event | None = None,
                 head: bytes = b"") -> None:
        self.total = total
        self.taken = 0
        self.hold = hold
        self.head = head
        self.started = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        if self.head:
            self.taken += len(self.head)
            sent = len(self.head)
            self.started.set()
            yield self.head
        while sent < self.total:
            if self.hold is not None:
                self.started.set()
                await self.hold.wait()
            piece = b" " * min(CHUNK, self.total - sent)
            sent += len(piece)
            self.taken += len(piece)
            yield piece


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings)),
                                 base_url=APP_ORIGIN, timeout=60) as client:
        yield client


@pytest.fixture
async def small(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    """Small limits, so the tests move little data: 64 KiB, CDS 256 KiB, Bundles 1 MiB."""
    async for client in _client(make_settings(max_cds_body_bytes=256 * 1024,
                                              max_bundle_bytes=1024 * 1024)):
        yield client


def _assert_refused(resp: httpx.Response, status: int) -> dict[str, Any]:
    body = assert_problem(resp, status)
    for header in ("content-security-policy", "x-content-type-options", "referrer-policy"):
        assert header in resp.headers, header
    return body


ANONYMOUS = [("/cds-services/ketamine-order-sign", 256 * 1024), ("/api/v1/screenings", 65536),
             ("/api/v1/sessions", 65536)]


@pytest.mark.parametrize(("path", "limit"), ANONYMOUS, ids=["cds", "screenings", "sessions"])
async def test_an_oversized_body_is_413_from_its_content_length(
        small: httpx.AsyncClient, path: str, limit: int) -> None:
    """Issue 16: these routes read and parsed a body of any size before authentication."""
    resp = await small.post(path, content=b"{" + b" " * limit + b"}",
                            headers={"Content-Type": "application/json"})
    _assert_refused(resp, 413)


@pytest.mark.parametrize(("path", "limit"), ANONYMOUS, ids=["cds", "screenings", "sessions"])
async def test_a_streamed_body_is_cut_off_at_the_limit(small: httpx.AsyncClient, path: str,
                                                       limit: int) -> None:
    """No Content-Length (chunked): the body is refused once it passes the limit, and the service
    takes no more of it than the limit and one chunk."""
    body = Body(8 * 1024 * 1024, head=b"{")
    resp = await small.post(path, content=body, headers={"Content-Type": "application/json"})
    _assert_refused(resp, 413)
    assert body.taken <= limit + CHUNK, body.taken


async def test_evaluate_streams_the_bundle_and_stops_at_its_limit(small: httpx.AsyncClient,
                                                                  auth: Auth) -> None:
    """Issue 16: $evaluate buffered the whole body before its size check."""
    body = Body(8 * 1024 * 1024, head=b'{"resourceType": "Bundle", "entry": [')
    resp = await small.post("/api/v1/screenings/$evaluate", content=body, headers=auth())
    _assert_refused(resp, 413)
    assert body.taken <= 1024 * 1024 + CHUNK, body.taken


async def test_a_bundle_within_its_limit_is_screened(small: httpx.AsyncClient,
                                                     auth: Auth) -> None:
    resp = await small.post("/api/v1/screenings/$evaluate", json=PatientBuilder("lim").bundle(),
                            headers=auth())
    assert resp.status_code == 200, resp.text


async def test_excess_heavy_work_is_503_with_retry_after(make_settings: Callable[..., Settings],
                                                        auth: Auth) -> None:
    """Two places for heavy work: two Bundles arriving slowly hold them, a third request is
    answered 503 with Retry-After before its body is read; once they finish, there is room."""
    settings = make_settings(max_heavy_requests=2)
    app = create_app(settings)
    release = asyncio.Event()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=APP_ORIGIN,
                                 timeout=60) as client:
        slow = [Body(2 * CHUNK, hold=release, head=b"{") for _ in range(2)]
        held = [asyncio.create_task(client.post("/api/v1/screenings/$evaluate", content=b,
                                                headers=auth())) for b in slow]
        await asyncio.wait_for(asyncio.gather(*(b.started.wait() for b in slow)), 60)
        assert services_of(app).heavy.busy == 2
        extra = Body(CHUNK, head=b"{")
        busy = await client.post("/api/v1/screenings/$evaluate", content=extra, headers=auth())
        body = _assert_refused(busy, 503)
        assert busy.headers["retry-after"] == str(errors.RETRY_AFTER_SECONDS)
        assert body["type"].endswith(":busy")
        assert extra.taken <= len(b"{")  # refused before its body was read
        cds = await client.post("/cds-services/ketamine-order-sign", json={})
        assert cds.status_code == 503  # every heavy route shares the places
        light = await client.get("/api/v1/ruleset", headers=auth())
        assert light.status_code == 200  # light routes are not counted
        release.set()
        done = await asyncio.gather(*held)
    assert [r.status_code for r in done] == [422, 422]  # ' ' * n is no Bundle, but was read
    assert services_of(app).heavy.busy == 0


@pytest.mark.timeout(60)
async def test_a_body_that_does_not_arrive_in_time_is_408(
        make_settings: Callable[..., Settings], auth: Auth) -> None:
    """Slow clients must not hold a request (and its place) indefinitely."""
    never = asyncio.Event()
    async for client in _client(make_settings(body_timeout_seconds=0.2)):
        resp = await client.post("/api/v1/sessions", content=Body(CHUNK, hold=never, head=b"{"),
                                 headers={**auth(scope="ketamine.write"),
                                          "Content-Type": "application/json"})
        body = _assert_refused(resp, 408)
        assert "in time" in body["detail"]
