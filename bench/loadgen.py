"""Load generation for bench.service: closed-loop concurrency, a liveness probe, percentiles."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx

__all__ = ["Run", "closed_loop", "percentile", "probe"]

Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN for no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    """Seconds per request, successful ones only."""
    errors: dict[int, int] = field(default_factory=dict)
    """Status (0 for a transport error) -> count."""
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


async def closed_loop(client: httpx.AsyncClient, send: Send, *, in_flight: int,
                      total: int) -> Run:
    """``total`` requests with ``in_flight`` of them outstanding at any moment."""
    run = Run()
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while issued < total:
            number = issued
            issued += 1
            began = time.perf_counter()
            try:
                response = await send(client, number)
            except httpx.HTTPError:
                run.errors[0] = run.errors.get(0, 0) + 1
                continue
            if response.status_code < 300:
                run.latencies.append(time.perf_counter() - began)
            else:
                run.errors[response.status_code] = run.errors.get(response.status_code, 0) + 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    run.seconds = time.perf_counter() - began
    return run


async def probe(base_url: str, stop: asyncio.Event, every: float = 0.02) -> list[float]:
    """``GET /healthz`` latencies (seconds) on its own connection until ``stop`` is set: how long
    the service's event loop takes to answer while other work runs."""
    samples: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        while not stop.is_set():
            began = time.perf_counter()
            await client.get("/healthz")
            samples.append(time.perf_counter() - began)
            await asyncio.sleep(every)
    return samples
