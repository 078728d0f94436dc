"""In-process micro benchmark of relations inside entity lists, timed around `schema.execute`
(no HTTP, no JSON) with the fast path on and off, at 50 and 1,000 rows from a MemoryConnector.

Each delivery has a to-one relation (its recipient), and each recipient a to-many relation
back to the recipient's deliveries (three each), so the answer holds two levels of relations:

    { benchDeliveries(first: N) { nodes { deliveryId amount
        recipient { idNumber name deliveries { deliveryId status } } } } }

    .venv/bin/python -m bench.relations [--rounds 15]

As in bench/fast_path.py, the reader's part (fetch and release) is timed inside each run, and
"graphql" (the whole execute less the reader) is divided by the rows of the outer list to
give the cost per row. Not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy.engine import URL

from bench.fast_path import Samples, TimedReader
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

SIZES = (50, 1_000)
# Deliveries per recipient: each nested list holds this many rows.
PER_RECIPIENT = 3
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
      - {name: recipientIdNumber, column: recipient_id_number, type: ID}
      - {name: amount, type: Decimal}
      - {name: status, type: String}
    relations:
      - {name: recipient, target: Recipient, field: recipientIdNumber, target_field: idNumber}
  - name: Recipient
    table: recipient
    key: idNumber
    fields:
      - {name: idNumber, column: id_number, type: ID}
      - {name: name, type: String}
    relations:
      - {name: deliveries, target: Delivery, field: idNumber, target_field: recipientIdNumber, many: true}
"""


def query(rows: int) -> str:
    return (
        f"{{ benchDeliveries(first: {rows}, orderBy: [DELIVERY_ID_ASC]) {{ nodes {{ deliveryId amount "
        "recipient { idNumber name deliveries { deliveryId status } } } } }"
    )


def tables(rows: int) -> dict[str, list[dict[str, Any]]]:
    people = rows // PER_RECIPIENT + 1
    deliveries = [
        {
            "delivery_id": f"D{i:07d}",
            "recipient_id_number": f"11010519900101{i % people:04d}",
            "amount": Decimal(f"{500 + i % 700}.{i % 100:02d}"),
            "status": "delivered" if i % 5 else "pending",
        }
        for i in range(rows)
    ]
    recipients = [{"id_number": f"11010519900101{i:04d}", "name": f"居民{i}"} for i in range(people)]
    return {"delivery": deliveries, "recipient": recipients}


async def measure(services: Services, rows: int, rounds: int) -> dict[bool, Samples]:
    """Both paths, alternating run by run (and who goes first), 3 warm-ups each."""
    built = {fast: build_schema(services.catalog, services.settings, fast_path=fast) for fast in (False, True)}
    principal = Principal("bench", "bench", ("department_app",))
    reader = TimedReader(services)
    samples = {False: Samples(), True: Samples()}
    text = query(rows)
    for index in range(rounds + 3):
        for fast in (index % 2 == 0, index % 2 == 1):
            schema = built[fast]
            context = RequestContext(
                principal, None, cast(Reader, reader), services.planner, schema.entity_types, schema.root_fields, None
            )
            reader.spent.clear()
            began = time.perf_counter()
            result = await schema.schema.execute(text, context_value=context)
            elapsed = time.perf_counter() - began
            assert not result.errors, result.errors
            nodes = result.data["benchDeliveries"]["nodes"] if result.data else []
            assert len(nodes) == rows and len(nodes[-1]["recipient"]["deliveries"]) >= 1
            if index >= 3:
                samples[fast].totals.append(elapsed)
                samples[fast].readers.append(sum(reader.spent))
    return samples


async def run(rounds: int, folder: Path, url: URL) -> list[tuple[int, dict[bool, Samples]]]:
    out: list[tuple[int, dict[bool, Samples]]] = []
    for rows in SIZES:
        settings = load_settings({}, database_url=url.render_as_string(), manifests_dir=folder, master_key=b"\x00" * 32)
        connectors = {"bench": MemoryConnector(tables(rows))}
        services = build_services(
            settings, catalog=load_catalog(folder), connectors=connectors, policy=ReleaseEverything()
        )
        await services.start()
        try:
            out.append((rows, await measure(services, rows, rounds)))
        finally:
            await services.close()
    return out


def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        manifests = Path(folder) / "manifests"
        manifests.mkdir()
        (manifests / "bench.yaml").write_text(MANIFEST, encoding="utf-8")
        url = URL.create("sqlite+aiosqlite", database=str(Path(folder) / "hub.db"))
        upgrade(url)  # alembic runs its own event loop: before ours
        workloads = asyncio.run(run(rounds, manifests, url))
    print(f"In process, a list with a to-one relation holding a to-many one, median of {rounds} runs")
    for rows, samples in workloads:
        print(f"\n{rows:,} rows (each with 1 recipient of {PER_RECIPIENT} deliveries)")
        print(f"{'path':<8}{'execute':>11}{'reader':>11}{'graphql':>11}{'per row':>12}")
        for fast in (False, True):
            print(samples[fast].line("fast" if fast else "normal", rows).replace("us", "us/row"))
        ratio = statistics.median(samples[False].totals) / statistics.median(samples[True].totals)
        print(f"execute: normal / fast = {ratio:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    main(parser.parse_args().rounds)
