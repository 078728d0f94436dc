"""A W1 event's flush alone, in this process: how long the answer waits for its event, with the
persons written in the flush (`--persons-in flush`, as before the backlog) or kept in the
backlog and moved after (`--persons-in backlog`, hub/audit/backlog.py), and how long that move
takes after the answer left.

    .venv/bin/python -m bench.trail_flush [--database postgresql|sqlite] [--persons-in backlog|flush]
        [--fill 20000] [--events 16]

The log is first filled with `--fill` W6-like events (one person each, from W1's pool of 1,330
persons: W6 runs before W1 in `bench.run --workload trail`, so W1's person rows land in an index
already holding those persons), then a CHECKPOINT (PostgreSQL), then `--events` W1-like events
(the same 1,330 persons each, as W1 touches the same recipients every time) are appended one at
a time. For each: the wall time of the append (what the answer waits for) and then of the move
(what the database does after it left). Medians and ranges in ms, with the load average.
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
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL

from hub.audit import backlog
from hub.audit.event import Event
from hub.audit.postgres_writer import PostgresFlusher
from hub.audit.sqlite_writer import SqliteFlusher
from hub.audit.writer import TrailWriter
from hub.db.engine import hub_engine
from hub.migrate import upgrade

PERSONS = 1_330


def _event(i: int, persons: list[str]) -> Event:
    return Event(
        at_us=1_796_000_000_000_000 + i * 1000,
        principal="bench-auditor",
        department="audit",
        purpose="audit",
        operation_hash="ab" * 32,
        operation_name=None,
        document_id=None,
        outcome="served",
        status=200,
        code=None,
        policy_version="7",
        released={
            "fields": [["civil_affairs.ServiceDelivery", f"f{k}", "PLAIN", 10_000] for k in range(12)],
            "rows": {"civil_affairs.ServiceDelivery": 10_000},
        },
        persons=dict.fromkeys(persons, "civil_affairs.ServiceDelivery"),
    )


async def _moved(flusher: Any) -> None:
    """Until the move the last flush queued is done."""
    if isinstance(flusher, PostgresFlusher):
        await asyncio.sleep(0)  # the mover's task starts at the loop's next turn
        await flusher.mover.close()
    elif isinstance(flusher, SqliteFlusher):
        for _ in range(60_000):  # a minute at most
            if flusher._moving is None:
                return
            await asyncio.sleep(0.001)


async def run(url: URL, args: argparse.Namespace) -> None:
    rng = random.Random(1)
    pool = [rng.randbytes(32).hex() for _ in range(PERSONS)]
    engine = hub_engine(url)
    writer = TrailWriter(engine)
    i = 0
    for _ in range(0, args.fill, 500):
        await writer.write([_event(i + k, [rng.choice(pool)]) for k in range(500)])
        i += 500
    if url.get_backend_name() == "postgresql":
        async with engine.connect() as connection:
            await connection.execute(text("CHECKPOINT"))
            await connection.commit()
    appends, moves = [], []
    for _ in range(args.events):
        started = time.perf_counter()
        await writer.append(_event(i, pool))
        appends.append((time.perf_counter() - started) * 1000)
        i += 1
        started = time.perf_counter()
        await _moved(writer._flusher)
        moves.append((time.perf_counter() - started) * 1000)
    await writer.close()
    await engine.dispose()
    for name, values in (("append (the answer waits)", appends), ("move (after it left)", moves)):
        print(
            f"{args.database}, persons in the {args.persons_in}, {name}: median {statistics.median(values):.1f} ms "
            f"({min(values):.1f}-{max(values):.1f}) over {len(values)} W1 events"
        )
    print(f"load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.trail_flush")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--persons-in", choices=("backlog", "flush"), default="backlog")
    parser.add_argument("--fill", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=16)
    args = parser.parse_args()
    if args.persons_in == "flush":
        # As before the backlog: every event's persons written in its flush.
        backlog.DEFER_PERSONS = 10**9
    with tempfile.TemporaryDirectory() as folder:
        if args.database == "sqlite":
            url = URL.create("sqlite+aiosqlite", database=str(Path(folder) / "hub.db"))
        else:
            from tests.servers import fresh_database

            url = fresh_database("postgresql", "hub_bench_trail_flush")
        upgrade(url)
        asyncio.run(run(url, args))


if __name__ == "__main__":
    main()
