"""Timing full HTTP requests: from sending the request to having the whole body.

One client per contender with a kept-alive connection, as an app calling the hub would
hold; the connection is opened during the warm-ups, so timed runs measure requests, not TCP
handshakes. Requests are strictly sequential: W1 measures the latency of one large answer,
not throughput.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

# A 10,000-row answer takes well under a second at the limit and a few at worst on the hub;
# a minute means something is wrong, not slow.
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Contender:
    name: str
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json: object | None = None


@dataclass(frozen=True)
class Timings:
    name: str
    samples_ms: tuple[float, ...]
    body_bytes: int

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def min_ms(self) -> float:
        return min(self.samples_ms)

    @property
    def max_ms(self) -> float:
        return max(self.samples_ms)


class RequestFailed(RuntimeError):
    """A contender answered something other than 200 during timing."""


def client() -> httpx.Client:
    # trust_env=False: no proxy or netrc from the environment may redirect loopback traffic.
    return httpx.Client(trust_env=False, timeout=TIMEOUT_S)


def timed(http: httpx.Client, contender: Contender) -> tuple[float, int]:
    """One request: milliseconds from send to the full body, and the body's size."""
    # Built before the clock starts: encoding the small query body is the client's cost.
    request = http.build_request(contender.method, contender.url, headers=contender.headers, json=contender.json)
    start = time.perf_counter()
    response = http.send(request)  # not streamed: send() returns once the body is read
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        raise RequestFailed(f"{contender.name} answered HTTP {response.status_code}: {response.text[:500]}")
    return elapsed, len(response.content)


def measure(contenders: Sequence[Contender], warmups: int, runs: int) -> list[Timings]:
    """Warm every contender up, then time `runs` rounds of one request each.

    Rounds interleave the contenders (and rotate who goes first), so a slow spell of the
    machine (another tenant, a PostgreSQL checkpoint) falls on all of them alike instead of
    on whichever happened to be measured at that moment."""
    clients = [client() for _ in contenders]
    try:
        for http, contender in zip(clients, contenders, strict=True):
            for _ in range(warmups):
                timed(http, contender)
        samples: list[list[float]] = [[] for _ in contenders]
        sizes = [0 for _ in contenders]
        for round_no in range(runs):
            shift = round_no % len(contenders)
            for index in [*range(shift, len(contenders)), *range(shift)]:
                elapsed, size = timed(clients[index], contenders[index])
                samples[index].append(elapsed)
                sizes[index] = size
        return [Timings(c.name, tuple(s), n) for c, s, n in zip(contenders, samples, sizes, strict=True)]
    finally:
        for http in clients:
            http.close()
