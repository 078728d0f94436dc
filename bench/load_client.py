"""The load test's requests and its client (bench/load.py): four kinds of read, a mix of
them, and a closed loop of N concurrent clients, each on a kept-alive connection of its own.

Kinds (the caller is the bench's auditor, purpose `audit`, as in W1, W2 and W6):

- `delivery`: one civil affairs service delivery by key, 12 fields (W6's query);
- `expenditure`: one finance expenditure by key, 7 fields;
- `deliveries+expenditure`: a list of 100 service deliveries of one district, each with the
  finance expenditure that paid for it (W2's query, 100 rows): civil affairs, then finance;
- `requests+feedback`: a list of 100 hotline requests of one district, each with its
  feedback (a relation within the hotline department).

Closed loop: each client sends its next request as soon as the previous is answered, so 100
clients keep 100 requests in flight. The kind of each request comes from one rotation of the
mix shared by all clients, so every kind keeps its share of the requests sent whatever its
latency.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from bench.load_stats import Outcome, Sample, classify
from bench.open_loop import _read_answer
from bench.w1 import FIELDS, PURPOSE, Mismatch

ROWS = 100
DELIVERY = f"query DeliveryByKey($key: ID!) {{ civilAffairsServiceDelivery(key: $key) {{ {FIELDS} }} }}"
EXPENDITURE = (
    "query ExpenditureByKey($key: ID!) { financeExpenditure(key: $key) { "
    "expenditureId budgetLineId department payee amount paidAt purpose } }"
)
DELIVERIES = (
    "query DeliveriesWithExpenditure($district: String!, $offset: Int!) { "
    f"civilAffairsServiceDeliveries(first: {ROWS}, offset: $offset, filter: {{districtCode: {{eq: $district}}}}, "
    "orderBy: [DELIVERY_ID_ASC]) { nodes { deliveryId caseId serviceType deliveredAt amount districtCode status "
    "expenditureId expenditure { expenditureId budgetLineId department payee amount paidAt purpose } } } }"
)
REQUESTS = (
    "query RequestsWithFeedback($district: String!, $offset: Int!) { "
    f"hotlineRequests(first: {ROWS}, offset: $offset, filter: {{districtCode: {{eq: $district}}}}, "
    "orderBy: [REQUEST_ID_ASC]) { nodes { requestId receivedAt channel category districtCode status "
    "satisfaction feedback { feedbackId satisfaction submittedAt } } } }"
)
# The share of each kind in the mix: lookups by key are most of the traffic, lists the rest.
MIX = {"delivery": 4, "expenditure": 2, "deliveries+expenditure": 1, "requests+feedback": 1}
KINDS = tuple(MIX)
# The department each kind reads; the load test takes one of them down.
READS = {
    "delivery": ("civil_affairs",),
    "expenditure": ("finance",),
    "deliveries+expenditure": ("civil_affairs", "finance"),
    "requests+feedback": ("hotline",),
}
KEYS = 1_000
OFFSETS = (0, 300, 600)
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Workload:
    """The bodies of each kind, rotated through in order."""

    bodies: dict[str, list[bytes]]

    def rotation(self) -> Iterator[tuple[str, bytes]]:
        """The mix, request by request: kinds interleaved by their weights, each kind walking its
        own bodies."""
        walkers = {kind: itertools.cycle(bodies) for kind, bodies in self.bodies.items()}
        for kind in itertools.cycle(_interleave(MIX)):
            yield kind, next(walkers[kind])


def _interleave(weights: dict[str, int]) -> list[str]:
    """One cycle of the mix with each kind spread evenly over it (smooth weighted round robin)."""
    total = sum(weights.values())
    current = dict.fromkeys(weights, 0)
    cycle = []
    for _ in range(total):
        for kind, weight in weights.items():
            current[kind] += weight
        chosen = max(current, key=lambda kind: current[kind])
        current[chosen] -= total
        cycle.append(chosen)
    return cycle


async def _column(url: URL, statement: str) -> list[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return [str(v) for v in (await connection.scalars(sa.text(statement))).all()]
    finally:
        await engine.dispose()


def _spread(values: Sequence[str], count: int) -> list[str]:
    if len(values) < count:
        raise Mismatch(f"the bench database holds {len(values)} rows where the load test needs {count}")
    return [values[i * len(values) // count] for i in range(count)]


async def _pages(url: URL, table: str) -> list[tuple[str, int]]:
    """(district, offset) for every district with rows enough for the last offset's page."""
    counts = await _column(
        url,
        f"SELECT district_code || ' ' || count(*) FROM {table} GROUP BY district_code "  # noqa: S608 (fixed names)
        'ORDER BY district_code COLLATE "C"',
    )
    pages = [(d, o) for d, n in (c.split(" ") for c in counts) if int(n) >= OFFSETS[-1] + ROWS for o in OFFSETS]
    if not pages:
        raise Mismatch(f"no district of {table} has rows enough for the load test's pages")
    return pages


async def workload(url: URL) -> Workload:
    """The same requests every run on the same data: keys spread evenly over each table in
    code-point order, every district with rows enough at three offsets."""
    deliveries = _spread(
        await _column(url, 'SELECT delivery_id FROM ca_service_delivery ORDER BY delivery_id COLLATE "C"'), KEYS
    )
    expenditures = _spread(
        await _column(url, 'SELECT expenditure_id FROM fin_expenditure ORDER BY expenditure_id COLLATE "C"'), KEYS
    )

    def body(query: str, variables: dict[str, object]) -> bytes:
        return orjson.dumps({"query": query, "variables": variables})

    return Workload(
        {
            "delivery": [body(DELIVERY, {"key": k}) for k in deliveries],
            "expenditure": [body(EXPENDITURE, {"key": k}) for k in expenditures],
            "deliveries+expenditure": [
                body(DELIVERIES, {"district": d, "offset": o}) for d, o in await _pages(url, "ca_service_delivery")
            ],
            "requests+feedback": [
                body(REQUESTS, {"district": d, "offset": o}) for d, o in await _pages(url, "hl_request")
            ],
        }
    )


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Hub-Purpose": PURPOSE, "Content-Type": "application/json"}


def _request(host: str, port: int, token: str, body: bytes) -> bytes:
    """One POST /graphql as bytes on the wire, made once per body before the run."""
    lines = ["POST /graphql HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers(token).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass(frozen=True)
class Run:
    samples: list[Sample]
    seconds: float  # from the first request sent to the last answer
    client_cpu_s: float  # this process's CPU over the run (user and system)


async def _closed_loop(host: str, port: int, token: str, work: Workload, clients: int, seconds: float) -> Run:
    wire = {kind: {body: _request(host, port, token, body) for body in bodies} for kind, bodies in work.bodies.items()}
    rotation = work.rotation()
    samples: list[Sample] = []
    loop = asyncio.get_running_loop()
    began = loop.time()
    deadline = began + seconds

    async def client() -> None:
        # One kept-alive connection per client, as a browser or an app's HTTP pool holds it;
        # opened again after a failure.
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while loop.time() < deadline:
            kind, body = next(rotation)
            sent = loop.time()
            try:
                async with asyncio.timeout(TIMEOUT_S):
                    if connection is None:
                        connection = await asyncio.open_connection(host, port)
                    reader, writer = connection
                    writer.write(wire[kind][body])
                    status, answer, keep = await _read_answer(reader)
                outcome = classify(status, orjson.loads(answer))
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                outcome, keep = Outcome.FAILED, False
            samples.append(Sample(kind, (loop.time() - sent) * 1000, outcome, sent - began))
            if not keep and connection is not None:
                connection[1].transport.abort()
                connection = None
        if connection is not None:
            connection[1].close()

    cpu = time.process_time()
    await asyncio.gather(*(client() for _ in range(clients)))
    cpu = time.process_time() - cpu
    return Run(samples, loop.time() - began, cpu)


def run(base_url: str, token: str, work: Workload, clients: int, seconds: float) -> Run:
    """`clients` concurrent clients for `seconds`, closed loop; the requests still in flight at
    the deadline are waited for and counted. HTTP/1.1 over asyncio streams, as bench/open_loop.py
    speaks it: httpx spent about 6 ms of CPU a request with 100 connections in its pool, more
    than the hub it measured, on the cores the two share."""
    address = httpx.URL(base_url)
    return asyncio.run(_closed_loop(address.host, address.port or 80, token, work, clients, seconds))
