"""In-process micro benchmark of the fast completion path, timed around `schema.execute` (no
HTTP, no JSON) with the fast path on and off, over 10,000 rows from a MemoryConnector:

- the W1 shape: 12 scalar fields of mixed types (IDs, strings, Decimal, DateTime, Date);
- 2 fields and a to-one relation of 3 fields per row, the relation loaded in one batch.

    .venv/bin/python -m bench.fast_path [--rounds 15]

Besides the whole `execute`, it times the reader's part (fetch and release, lists and
relations) inside each run, so "graphql" is what GraphQL execution itself costs: parsing and
validation (cached after the first run), access planning, resolvers, and completion. The
MemoryConnector answers the relation's `IN` of 10,000 keys slowly (a scan per key); that is
reader time, not counted as GraphQL. Not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy.engine import URL

from connectors.memory import MemoryConnector
from hub.access.plan import ReleaseEverything
from hub.access.read import Reader
from hub.auth.principal import Principal
from hub.catalog import load_catalog
from hub.config import load_settings
from hub.migrate import upgrade
from hub.services import Services, build_services
from schema import build_schema
from schema.context import RequestContext

ROWS = 10_000
MANIFEST = """\
department: bench
connection:
  sqlite_path: bench.db
entities:
  - name: Delivery
    table: delivery
    key: deliveryId
    fields:
      - {name: deliveryId, column: delivery_id, type: ID}
      - {name: caseId, column: case_id, type: ID}
      - {name: recipientName, column: recipient_name, type: String}
      - {name: recipientIdNumber, column: recipient_id_number, type: ID}
      - {name: recipientMobile, column: recipient_mobile, type: String}
      - {name: serviceType, column: service_type, type: String}
      - {name: deliveredAt, column: delivered_at, type: DateTime}
      - {name: amount, type: Decimal}
      - {name: dueDate, column: due_date, type: Date}
      - {name: districtCode, column: district_code, type: String}
      - {name: status, type: String}
      - {name: requestId, column: request_id, type: ID}
    relations:
      - {name: recipient, target: Recipient, field: recipientIdNumber, target_field: idNumber}
  - name: Recipient
    table: recipient
    key: idNumber
    fields:
      - {name: idNumber, column: id_number, type: ID}
      - {name: name, type: String}
      - {name: district, type: String}
"""
FIELDS = (
    "deliveryId caseId recipientName recipientIdNumber recipientMobile serviceType "
    "deliveredAt amount dueDate districtCode status requestId"
)
QUERY = f"{{ benchDeliveries(first: {ROWS}, orderBy: [DELIVERY_ID_ASC]) {{ nodes {{ {FIELDS} }} }} }}"
# The same list with a to-one relation per row, loaded in one batch: the normal path calls the
# relation's resolver per row; the fast path loads and shapes the related rows per list.
RELATED = (
    f"{{ benchDeliveries(first: {ROWS}, orderBy: [DELIVERY_ID_ASC]) "
    "{ nodes { deliveryId amount recipient { idNumber name district } } } }"
)


def recipients() -> list[dict[str, Any]]:
    return [
        {"id_number": f"11010519900101{i:04d}", "name": f"居民{i}", "district": f"1101{i % 16:02d}"}
        for i in range(ROWS)
    ]


def rows() -> list[dict[str, Any]]:
    start = datetime(2024, 1, 1, 8, 0)
    return [
        {
            "delivery_id": f"D{i:07d}",
            "case_id": f"C{i // 3:07d}",
            "recipient_name": "王小明" if i % 2 else "李华",
            "recipient_id_number": f"11010519900101{i % 10000:04d}",
            "recipient_mobile": f"138{i:08d}",
            "service_type": ("低保", "特困", "临时救助")[i % 3],
            "delivered_at": start + timedelta(minutes=i),
            "amount": Decimal(f"{500 + i % 700}.{i % 100:02d}"),
            "due_date": date(2024, 1, 1) + timedelta(days=i % 365),
            "district_code": f"1101{i % 16:02d}",
            "status": "delivered" if i % 5 else "pending",
            "request_id": None if i % 4 == 0 else f"R{i:07d}",
        }
        for i in range(ROWS)
    ]


@dataclass
class Samples:
    totals: list[float] = field(default_factory=list)
    # The reader's part of each run: fetching and releasing rows (lists and relations).
    readers: list[float] = field(default_factory=list)

    def line(self, name: str, values: int) -> str:
        total, read = statistics.median(self.totals), statistics.median(self.readers)
        graphql = statistics.median(t - r for t, r in zip(self.totals, self.readers, strict=True))
        per_value = graphql / values * 1e6
        return f"{name:<8}{total * 1e3:>9.1f}ms{read * 1e3:>9.1f}ms{graphql * 1e3:>9.1f}ms{per_value:>10.2f}us"


class TimedReader:
    """The services' reader, timing its list and relation reads."""

    def __init__(self, services: Services) -> None:
        self.reader = services.reader
        self.spent: list[float] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.reader, name)
        if name not in ("page", "related"):
            return method

        async def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                self.spent.append(time.perf_counter() - began)

        return timed


async def measure(services: Services, query: str, rounds: int) -> dict[bool, Samples]:
    """Both paths, alternating run by run (and who goes first), so that a slow spell of the
    machine falls on both alike."""
    built = {fast: build_schema(services.catalog, services.settings, fast_path=fast) for fast in (False, True)}
    principal = Principal("bench", "bench", ("department_app",))
    reader = TimedReader(services)
    samples = {False: Samples(), True: Samples()}
    for index in range(rounds + 3):
        for fast in (index % 2 == 0, index % 2 == 1):
            schema = built[fast]
            context = RequestContext(
                principal, None, cast(Reader, reader), services.planner, schema.entity_types, schema.root_fields, None
            )
            reader.spent.clear()
            began = time.perf_counter()
            result = await schema.schema.execute(query, context_value=context)
            elapsed = time.perf_counter() - began
            assert not result.errors, result.errors
            assert result.data is not None and len(result.data["benchDeliveries"]["nodes"]) == ROWS
            if index >= 3:  # warm-ups: caches, the keyring, the allocator
                samples[fast].totals.append(elapsed)
                samples[fast].readers.append(sum(reader.spent))
    return samples


async def run(services: Services, rounds: int) -> list[tuple[str, int, dict[bool, Samples]]]:
    await services.start()
    try:
        return [
            ("W1: 12 scalar fields", ROWS * 12, await measure(services, QUERY, rounds)),
            ("2 fields + a to-one relation of 3", ROWS * 5, await measure(services, RELATED, rounds)),
        ]
    finally:
        await services.close()


def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        manifests = Path(folder) / "manifests"
        manifests.mkdir()
        (manifests / "bench.yaml").write_text(MANIFEST, encoding="utf-8")
        url = URL.create("sqlite+aiosqlite", database=str(Path(folder) / "hub.db"))
        upgrade(url)  # alembic runs its own event loop: before ours
        settings = load_settings(
            {}, database_url=url.render_as_string(), manifests_dir=manifests, master_key=b"\x00" * 32
        )
        catalog = load_catalog(manifests)
        connectors = {"bench": MemoryConnector({"delivery": rows(), "recipient": recipients()})}
        services = build_services(settings, catalog=catalog, connectors=connectors, policy=ReleaseEverything())
        workloads = asyncio.run(run(services, rounds))
    print(f"In process, {ROWS:,} rows from a MemoryConnector, median of {rounds} runs of schema.execute")
    for title, values, samples in workloads:
        print(f"\n{title} ({values:,} values)")
        print(f"{'path':<8}{'execute':>11}{'reader':>11}{'graphql':>11}{'per value':>12}")
        for fast in (False, True):
            print(samples[fast].line("fast" if fast else "normal", values))
        ratio = statistics.median(samples[False].totals) / statistics.median(samples[True].totals)
        print(f"execute: normal / fast = {ratio:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    main(parser.parse_args().rounds)
