"""The access trail at size: `hub audit verify` over N events, and one inclusion and one
consistency proof, on a hub database of its own (SQLite in a temporary folder, or a PostgreSQL
database `hub_bench_audit`).

    .venv/bin/python -m bench.audit_log --events 1000000 [--database postgresql]

It fills the log through the trail's own writer in batches of 10,000 (each event with one
person touched), then times, in this process: `verify_log` over the whole log (CPU seconds
beside wall seconds), and 200 inclusion proofs and 200 consistency proofs at random positions
and sizes, each read from a fresh session as the HTTP endpoint does (median and p99 ms). Every
proof is checked against the root, so a fast wrong answer cannot pass.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import URL

from hub.audit.event import Event
from hub.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from hub.audit.tree import NodeCache, consistency, inclusion, log_size, root_at
from hub.audit.verify import verify_log
from hub.audit.writer import TrailWriter
from hub.db.engine import hub_engine, sessions
from hub.migrate import upgrade

BATCH = 10_000
PROOFS = 200


def _event(i: int) -> Event:
    return Event(
        at_us=1_796_000_000_000_000 + i,
        principal="bench-health",
        department="health",
        purpose="health_care",
        operation_hash="ab" * 32,
        operation_name="PersonByKey",
        document_id=None,
        outcome="served",
        status=200,
        code=None,
        policy_version="1",
        released={"fields": [["population.Person", "idNumber", "MASKED", 1]], "rows": {"population.Person": 1}},
        persons={f"{i:064x}": "population.Person"},
    )


def _ms(samples: list[float]) -> str:
    samples = sorted(samples)
    return f"median {statistics.median(samples):.2f} ms, p99 {samples[int(len(samples) * 0.99) - 1]:.2f} ms"


async def run(url: URL, events: int) -> None:
    engine = hub_engine(url)
    maker = sessions(engine)
    writer = TrailWriter(engine, BATCH)
    async with maker() as session:
        present = await log_size(session)
    if present not in (0, events):
        raise SystemExit(f"the database holds {present:,} events, not {events:,}: give another --keep file")
    if present == 0:
        began = time.perf_counter()
        for start in range(0, events, BATCH):
            await writer.write([_event(i) for i in range(start, min(events, start + BATCH))])
        print(f"filled {events:,} events in {time.perf_counter() - began:.1f} s")
    else:
        print(f"reusing the {events:,} events already written")

    cpu, wall = time.process_time(), time.perf_counter()
    report = await verify_log(maker, None)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert report.ok and report.events == events, report.findings[:3]
    print(f"verify over {events:,} events: {wall:.1f} s wall, {cpu:.1f} s CPU (target under 60 s)")

    # As the endpoint does: one cache of stored subtree hashes shared by every proof.
    cache = NodeCache()
    rng = random.Random(9162)
    async with maker() as session:
        root = await root_at(session, events)
    times: list[float] = []
    for _ in range(PROOFS):
        position = rng.randrange(events)
        t = time.perf_counter()
        async with maker() as session:
            proof = await inclusion(session, position, events, cache)
        times.append((time.perf_counter() - t) * 1000)
        assert verify_inclusion(position, events, leaf_hash(proof.leaf), proof.path, root)
    print(f"inclusion proof (read from the database, fresh session): {_ms(times)} (target under 5 ms)")
    times = []
    for _ in range(PROOFS):
        first = rng.randrange(1, events)
        t = time.perf_counter()
        async with maker() as session:
            path = await consistency(session, first, events, cache)
            first_root = await root_at(session, first, cache)
        times.append((time.perf_counter() - t) * 1000)
        assert verify_consistency(first, events, first_root, root, path)
    print(f"consistency proof with the old root: {_ms(times)}")
    await writer.close()
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.audit_log")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--keep", type=Path, help="SQLite: keep the hub database in this file, and reuse the log it holds"
    )
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} at start")
    with tempfile.TemporaryDirectory() as folder:
        if args.database == "sqlite":
            url = URL.create("sqlite+aiosqlite", database=str(args.keep or Path(folder) / "hub.db"))
        else:
            from tests.servers import fresh_database

            url = fresh_database("postgresql", "hub_bench_audit")
        upgrade(url)
        asyncio.run(run(url, args.events))
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} at end")


if __name__ == "__main__":
    main()
