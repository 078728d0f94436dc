"""The trail's writer alone, in this process: what one event costs in CPU and how many events a
flush carries, with N concurrent requests each doing some work of its own before it appends.

    .venv/bin/python -m bench.trail_writer [--database sqlite|postgresql] [--clients 32]
        [--work-us 1500] [--persons 1] [--seconds 5] [--profile]

Each simulated request spins about `--work-us` microseconds of CPU (0.5 to 1.5 times it) in
slices of about 100 µs (a
request's own work, which is what lets other requests' events gather while a flush is on its
way), then appends an event touching `--persons` persons, as W6 (1 person, ~1.5 ms of work) and
W1 (about 1,330 persons) do. It runs twice, the writer's appends replaced by nothing in the
second run, and prints the CPU per request of each, their difference (the trail's CPU per
event), the events per flush and the requests per second. `--profile` prints cProfile's top
functions of the first run. On PostgreSQL the server's own CPU is not in these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import URL

from hub.audit.event import Event
from hub.audit.writer import GATHER_MS, TrailWriter
from hub.db.engine import hub_engine
from hub.migrate import upgrade


def _event(i: int, persons: int) -> Event:
    return Event(
        at_us=1_796_000_000_000_000 + i,
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
            "fields": [["civil_affairs.ServiceDelivery", f"f{k}", "PLAIN", persons] for k in range(12)],
            "rows": {"civil_affairs.ServiceDelivery": persons},
        },
        persons={f"{i:032x}{p:032x}": "civil_affairs.ServiceDelivery" for p in range(persons)},
    )


def _spin(us: float) -> None:
    # By this thread's CPU time, not the clock's: a slice preempted by the machine's other work
    # costs the same CPU either way, so the trail's difference is its own.
    end = time.thread_time() + us / 1e6
    while time.thread_time() < end:
        pass


async def _load(writer: TrailWriter | None, clients: int, work_us: float, persons: int, seconds: float) -> int:
    done = 0
    stop = time.perf_counter() + seconds

    async def client(c: int) -> None:
        nonlocal done
        i = c
        rng = random.Random(c)
        while time.perf_counter() < stop:
            # Work of varied length, so requests reach the trail at different times, as real ones do.
            work = work_us * rng.uniform(0.5, 1.5)
            flight = None if writer is None else writer.begin()  # as the app does when a request begins
            for _ in range(max(1, int(work // 100))):
                _spin(min(100.0, work))
                await asyncio.sleep(0)
            if writer is not None and flight is not None:
                try:
                    await writer.append(_event(i, persons), flight)
                finally:
                    writer.end(flight)
            i += clients
            done += 1

    await asyncio.gather(*(client(c) for c in range(clients)))
    return done


async def run(url: URL, args: argparse.Namespace) -> None:
    engine = hub_engine(url)
    writer = TrailWriter(engine, gather_ms=args.gather_ms)
    await writer.append(_event(10**9, 1))  # connections opened, statements compiled
    flushes = writer.flushes
    results = []
    for trail in (True, False):
        profile = cProfile.Profile() if args.profile and trail else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        n = await _load(writer if trail else None, args.clients, args.work_us, args.persons, args.seconds)
        if profile is not None:
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        results.append((n, cpu, wall))
        if trail:
            flushes = writer.flushes - flushes
            print(f"trail on:  {n} requests, {n / max(1, flushes):.1f} events a flush ({flushes} flushes)")
    (n_on, cpu_on, wall_on), (n_off, cpu_off, wall_off) = results
    on_us, off_us = cpu_on / n_on * 1e6, cpu_off / n_off * 1e6
    print(
        f"CPU per request: trail on {on_us:.0f} µs, off {off_us:.0f} µs, the trail {on_us - off_us:.0f} µs; "
        f"req/s on {n_on / wall_on:.0f}, off {n_off / wall_off:.0f}; load average {os.getloadavg()[0]:.2f}"
    )
    await writer.close()
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.trail_writer")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--work-us", type=float, default=1500.0)
    parser.add_argument("--persons", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--gather-ms", type=float, default=GATHER_MS)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.database == "sqlite":
            url = URL.create("sqlite+aiosqlite", database=str(Path(folder) / "hub.db"))
        else:
            from tests.servers import fresh_database

            url = fresh_database("postgresql", "hub_bench_trail_writer")
        upgrade(url)
        asyncio.run(run(url, args))


if __name__ == "__main__":
    main()
