"""Where a lookup's time goes beside the heavy request: the access trail timed.

In process (no HTTP, no uvicorn): the bench database's departments on PostgreSQL and a fresh
hub database `hub_bench_trail_probe` (HUB_TEST_DB_SUFFIX appended) on PostgreSQL as in
production, the app built as `hub serve` builds it. After warm-ups, 100 lookups by key alone
("quiet"), then the heavy request (bench/heavy_request.py's eight 10,000-row lists) `--heavy`
times back to back while the civil affairs app looks up one service delivery every 50 ms. The
trail writer (hub/audit/writer.py) is timed by wrapping its methods, no code changed: each
event's append (request side: queued to positioned), each flush, each gathering wait. It prints
the lookups' p50 / p90 / p99 and how much of them the append took, and the flushes and
gatherings of the heavy phase.

A measuring aid, by hand; not part of the suites.

`--data-dir DIR` serves the demo in DIR instead (made by `hub demo --data-dir DIR` or
`bench.fairness`): departments and hub database on SQLite, built as `hub demo` builds it.

    .venv/bin/python -m bench.fairness_trail [--heavy 6] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.fairness import HEAVY_CALLER, HEAVY_PURPOSE, LOOKUP, LOOKUP_CALLER, LOOKUP_PURPOSE
from bench.heavy_request import WIDE_LISTS


class Timings:
    """The trail writer's appends, flushes and gatherings, as (start, end, ...) in perf_counter."""

    def __init__(self) -> None:
        self.appends: list[tuple[float, float, int]] = []  # persons of the event
        self.flushes: list[tuple[float, float, int, int]] = []  # events, most persons of one
        self.gathers: list[tuple[float, float]] = []

    def clear(self) -> None:
        self.appends.clear()
        self.flushes.clear()
        self.gathers.clear()


def instrument(timings: Timings) -> None:
    from hub.audit import writer

    cls: Any = writer.TrailWriter
    pending: Any = writer.Pending
    enqueue, wait, write, gather = cls.enqueue, pending.wait, cls._write, cls._gather

    # An append as the app makes it: queued (enqueue), then waited for (Pending.wait).
    queued: dict[Any, tuple[float, int]] = {}

    def timed_enqueue(self: Any, event: Any, flight: Any = None) -> Any:
        made = enqueue(self, event, flight)
        queued[made] = (time.perf_counter(), len(event.persons))
        return made

    async def timed_wait(self: Any) -> Any:
        try:
            return await wait(self)
        finally:
            start = queued.pop(self, None)
            if start is not None:
                timings.appends.append((start[0], time.perf_counter(), start[1]))

    async def timed_write(self: Any, staged: Any) -> Any:
        start = time.perf_counter()
        try:
            return await write(self, staged)
        finally:
            most = max(len(item.event.persons) for item in staged)
            timings.flushes.append((start, time.perf_counter(), len(staged), most))

    async def timed_gather(self: Any) -> Any:
        start = time.perf_counter()
        try:
            return await gather(self)
        finally:
            timings.gathers.append((start, time.perf_counter()))

    cls.enqueue, pending.wait, cls._write, cls._gather = timed_enqueue, timed_wait, timed_write, timed_gather


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def spread(values: Sequence[float]) -> str:
    return " / ".join(f"{percentile(values, p) * 1000:.1f}" for p in (50, 90, 99))


async def postgresql_settings() -> tuple[Any, dict[str, str]]:
    """Settings as `bench.fairness --database postgresql --hub-database postgresql` serves, and
    the callers' tokens."""
    from bench.database import bench_url
    from bench.hub_setup import URL_ENV, hub_env, prepare_hub, register_app
    from bench.run import prepare_database
    from hub.config import load_settings
    from tests.servers import fresh_database

    # Each of these runs an event loop of its own.
    await asyncio.to_thread(prepare_database)
    own = await asyncio.to_thread(fresh_database, "postgresql", "hub_bench_trail_probe")
    folder = Path(tempfile.mkdtemp(prefix="hub-fairness-trail-"))
    manifests, database_url = await asyncio.to_thread(prepare_hub, folder, database_url=own)
    tokens = {
        HEAVY_CALLER: await asyncio.to_thread(asyncio.run, register_app(database_url)),
        LOOKUP_CALLER: await asyncio.to_thread(
            asyncio.run, register_app(database_url, "ca", "civil_affairs", ("department_app",))
        ),
    }
    environ = {
        **os.environ,
        "HUB_DATABASE_URL": database_url.render_as_string(hide_password=False),
        "HUB_MANIFESTS": str(manifests),
        URL_ENV: bench_url().render_as_string(hide_password=False),
        **hub_env(),
    }
    return load_settings(environ), tokens


def demo_settings(root: Path) -> tuple[Any, dict[str, str]]:
    """Settings as `hub demo --data-dir ROOT` serves (the environment's HUB_* settings kept),
    and the demo callers' tokens."""
    import json

    from hub.cli.serve import demo_environ
    from hub.config import load_settings
    from hub.demo.workspace import Workspace

    workspace = Workspace(root)
    if not workspace.ready:
        raise SystemExit(f"no demo in {root}: run `hub demo --data-dir {root}` once")
    settings = load_settings(
        demo_environ(os.environ),
        database_url=workspace.hub_database.render_as_string(),
        manifests_dir=workspace.manifests,
        master_key_file=workspace.master_key_file,
    )
    return settings, json.loads(workspace.token_file.read_text())


async def measure(heavy_runs: int, timings: Timings, data_dir: Path | None) -> None:
    from hub.app import create_app
    from hub.interpreter import apply_switch_interval
    from hub.services import build_services

    settings, tokens = await postgresql_settings() if data_dir is None else demo_settings(data_dir)
    apply_switch_interval(settings.switch_interval_ms)
    app = create_app(build_services(settings))
    heavy_headers = {"Authorization": f"Bearer {tokens[HEAVY_CALLER]}", "X-Hub-Purpose": HEAVY_PURPOSE}
    lookup_headers = {"Authorization": f"Bearer {tokens[LOOKUP_CALLER]}", "X-Hub-Purpose": LOOKUP_PURPOSE}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub", timeout=120) as client:

            async def heavy() -> float:
                began = time.perf_counter()
                response = await client.post("/graphql", json={"query": WIDE_LISTS}, headers=heavy_headers)
                if response.status_code != 200:
                    raise SystemExit(f"the heavy request failed: {response.status_code}")
                return time.perf_counter() - began

            async def lookup(n: int) -> tuple[float, float]:
                began = time.perf_counter()
                variables = {"key": f"CASD{n % 10_000 + 1:06d}"}
                response = await client.post(
                    "/graphql", json={"query": LOOKUP, "variables": variables}, headers=lookup_headers
                )
                if response.status_code != 200 or b'"errors"' in response.content:
                    raise SystemExit(f"a lookup failed: {response.status_code} {response.text[:300]}")
                return began, time.perf_counter()

            await heavy()
            for n in range(20):
                await lookup(n)
            timings.clear()
            quiet = [await lookup(n) for n in range(100)]
            quiet_appends = [end - start for start, end, _ in timings.appends]
            timings.clear()
            done = asyncio.Event()
            lookups: list[tuple[float, float]] = []

            async def beside() -> None:
                n = 1_000
                while not done.is_set():
                    lookups.append(await lookup(n))
                    n += 1
                    await asyncio.sleep(0.05)

            task = asyncio.create_task(beside())
            heavies = [await heavy() for _ in range(heavy_runs)]
            done.set()
            await task
    load = f"{os.getloadavg()[0]:.2f}"
    print(f"load average {load}; milliseconds p50 / p90 / p99")
    print(f"quiet: lookups {spread([e - s for s, e in quiet])}, their appends {spread(quiet_appends)}")
    small = [(s, e) for s, e, persons in timings.appends if persons <= 1]
    print(f"beside the heavy request (median {statistics.median(heavies):.2f} s, {heavy_runs} runs):")
    print(f"  lookups (n={len(lookups)}) {spread([e - s for s, e in lookups])}")
    print(f"  their appends {spread([e - s for s, e in small])}")
    small_flushes = [e - s for s, e, _, most in timings.flushes if most <= 1]
    heavy_flushes = [(e - s, most) for s, e, _, most in timings.flushes if most > 1]
    print(f"  small events' flushes (n={len(small_flushes)}) {spread(small_flushes)}")
    print(
        f"  heavy events' flushes (n={len(heavy_flushes)}): "
        + ", ".join(f"{seconds * 1000:.1f} ms ({persons} persons)" for seconds, persons in heavy_flushes)
    )
    gathers = [e - s for s, e in timings.gathers]
    print(f"  gathering waits (n={len(gathers)}) {spread(gathers)}")
    overlapping = 0
    for start, end in small:
        if any(min(end, fe) > max(start, fs) for fs, fe, _, most in timings.flushes if most > 1):
            overlapping += 1
    print(f"  small appends that overlapped a heavy event's flush: {overlapping} of {len(small)}")
    in_append = []
    for start, end in lookups:
        inside = [ae - as_ for as_, ae in small if as_ >= start and ae <= end]
        in_append.append((inside[0] if inside else 0.0) / (end - start))
    print(f"  share of a lookup's time in its append: mean {statistics.mean(in_append):.0%}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fairness_trail", description=__doc__.splitlines()[0])
    parser.add_argument("--heavy", type=int, default=6, help="heavy requests, back to back")
    parser.add_argument("--data-dir", type=Path, help="serve the demo in this folder (SQLite) instead")
    args = parser.parse_args(argv)
    timings = Timings()
    instrument(timings)
    asyncio.run(measure(args.heavy, timings, None if args.data_dir is None else args.data_dir.resolve()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
