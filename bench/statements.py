"""The SQL connector's own CPU cost of one by-key read, against raw asyncpg doing the same read.

    .venv/bin/python -m bench.statements [--fetches 2000] [--rounds 5]

Times `--fetches` reads of one civil affairs service delivery by its key (the 12 columns the
catalog declares, `Compare(key, EQ, ...)` with limit 1, as `hub.access.read`'s `by_key` asks) through
`SqlConnector.fetch`, one after another on one client, rotating through W6's keys in the
database `bench` (loaded by `bench.run`). The baseline is the floor of the same read: an asyncpg
pool's `fetchrow` of the statement the connector sends. What is reported is this process's CPU
time per read (time.process_time), not wall time: the server's work and the network wait are
the same for both, and on a shared 2-core machine CPU time is what stays comparable. Each round
times the connector and the floor back to back; the medians of the rounds are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from bench.database import bench_url
from bench.w6 import delivery_ids
from connectors.base import Compare, Op, Query
from connectors.sql import SqlConnector
from hub.demo.catalog import demo_catalog

ENTITY = "civil_affairs.ServiceDelivery"
WARMUPS = 200
# The statement the connector sends for this query on PostgreSQL (captured from its engine):
# the key compared bare and in the "C" collation, one row more than the limit.
FLOOR_SQL = (
    "SELECT delivery_id, case_id, recipient_name, recipient_id_number, recipient_mobile, service_type, "
    "delivered_at, amount, district_code, status, request_id, expenditure_id FROM ca_service_delivery "
    'WHERE delivery_id = $1::VARCHAR AND (delivery_id COLLATE "C") = $1::VARCHAR '
    'ORDER BY delivery_id COLLATE "C" ASC NULLS LAST LIMIT $2::INTEGER'
)

Read = Callable[[str], Awaitable[object]]


async def cpu_per_read(read: Read, keys: Sequence[str], count: int) -> float:
    """This process's CPU microseconds per call of `read`, over `count` calls."""
    for i in range(WARMUPS):
        await read(keys[i % len(keys)])
    start = time.process_time()
    for i in range(count):
        await read(keys[i % len(keys)])
    return (time.process_time() - start) / count * 1e6


async def main(fetches: int, rounds: int) -> None:
    catalog = demo_catalog()
    entity = catalog.entity(ENTITY)
    decl = catalog.departments[entity.department].connection
    columns = tuple(item.column for item in entity.fields.values())
    url = bench_url()
    keys = await delivery_ids(url)
    connector = SqlConnector(
        url, timezone=decl.timezone, statement_timeout_ms=decl.statement_timeout_ms, pool_size=decl.pool_size
    )
    pool = await asyncpg.create_pool(url.set(drivername="postgresql").render_as_string(), min_size=1, max_size=5)

    async def by_connector(key: str) -> object:
        page = await connector.fetch(Query(entity.table, columns, Compare(entity.table.key, Op.EQ, key), (), 1))
        assert page.count == 1 and page.column(entity.table.key)[0] == key
        return page

    async def by_asyncpg(key: str) -> object:
        return await pool.fetchrow(FLOOR_SQL, key, 2)

    try:
        ours: list[float] = []
        floor: list[float] = []
        for round_no in range(1, rounds + 1):
            ours.append(await cpu_per_read(by_connector, keys, fetches))
            floor.append(await cpu_per_read(by_asyncpg, keys, fetches))
            print(f"round {round_no}: connector {ours[-1]:.0f} µs, asyncpg {floor[-1]:.0f} µs", flush=True)
    finally:
        await pool.close()
        await connector.close()
    print(f"\nCPU per by-key read, median of {rounds} rounds of {fetches}:")
    print(f"  SqlConnector.fetch  {statistics.median(ours):7.0f} µs")
    print(f"  asyncpg fetchrow    {statistics.median(floor):7.0f} µs  (the floor)")
    # Paired by round: both contenders of a round ran under the same load from neighbours.
    ratios = [mine / base for mine, base in zip(ours, floor, strict=True)]
    print(f"  ratio               {statistics.median(ratios):7.2f}x  (median of the rounds' ratios)")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fetches", type=int, default=2000, help="reads timed per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each timing both contenders")
    args = parser.parse_args()
    asyncio.run(main(args.fetches, args.rounds))


if __name__ == "__main__":
    cli()
