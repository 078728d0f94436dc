"""The aggregate workloads in process under cProfile: where a request's CPU goes.

    .venv/bin/python -m bench.aggregates_profile [--workload expenditures] [--requests 400] [--top 30]

Builds the hub as `hub serve` builds it over bench.aggregates' data (`bench_agg`, loaded by
`python -m bench.aggregates` if missing), sends warm-up requests one at a time straight to the
ASGI app, then profiles `--requests` more and prints the functions by their own time and by
their cumulative time, per request, besides the CPU time per request without the profiler.
First, a bare SQLite commit's time in the same folder: the floor of the access trail's write
(one durable commit per request that no other request shares), which a disk shared with other
work can raise past a small statement's whole time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.aggregates import CALLER, KEYS, database_for, ensure_scaled_data, hub_database
from bench.aggregates_limit import WORKLOADS
from bench.hub_setup import URL_ENV, hub_env, prepare_hub, register_app

WARMUP = 100


async def _one(app: Any, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    answer = orjson.loads(b"".join(chunks))
    if status != 200 or "errors" in answer:
        raise RuntimeError(f"the hub failed: {status} {answer}")


class Stopwatch:
    """Wall time spent inside one async method of a class, over every call: wraps it in place."""

    def __init__(self, owner: type, name: str) -> None:
        self.seconds = 0.0
        original = getattr(owner, name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        setattr(owner, name, timed)


def commit_floor(folder: Path, count: int = 200) -> tuple[float, float]:
    """Median and 90th percentile, in ms, of a bare SQLite commit of one small row in `folder`
    (write-ahead log, synchronous FULL, as the hub's database): the least the access trail's
    write can cost a request on this file system at this moment, whatever the hub does."""
    import sqlite3
    import statistics

    connection = sqlite3.connect(folder / "commit-floor.db")
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b BLOB)")
        connection.commit()
        times: list[float] = []
        for _ in range(count):
            started = time.perf_counter()
            connection.execute("INSERT INTO t (b) VALUES (?)", (os.urandom(300),))
            connection.commit()
            times.append(1000 * (time.perf_counter() - started))
    finally:
        connection.close()
    times.sort()
    return statistics.median(times), times[int(0.9 * len(times))]


async def _run(app: Any, body: bytes, headers: list[tuple[bytes, bytes]], count: int, top: int) -> None:
    from connectors.sql import SqlConnector
    from hub.audit.writer import Pending

    async with app.router.lifespan_context(app):
        for _ in range(WARMUP):
            await _one(app, body, headers)
        reads, trail = Stopwatch(SqlConnector, "aggregate"), Stopwatch(Pending, "wait")
        started, wall = time.process_time(), time.perf_counter()
        for _ in range(count):
            await _one(app, body, headers)
        cpu, wall = time.process_time() - started, time.perf_counter() - wall
        print(f"without the profiler: {1000 * cpu / count:.2f} ms CPU, {1000 * wall / count:.2f} ms wall a request")
        print(
            f"  of the wall time: {1000 * reads.seconds / count:.2f} ms in the department's statement, "
            f"{1000 * trail.seconds / count:.2f} ms waiting for the access trail"
        )
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(count):
            await _one(app, body, headers)
        profile.disable()
    stats = pstats.Stats(profile, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.aggregates_profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="expenditures")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--hub-database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args(argv)
    url = database_for(args.scale)
    ensure_scaled_data(url, args.scale)
    with tempfile.TemporaryDirectory(prefix="hub-bench-agg-profile-") as tmp:
        manifests, database_url = prepare_hub(Path(tmp), KEYS, hub_database(args.hub_database))
        token = asyncio.run(register_app(database_url, *CALLER))
        env = {
            **os.environ,
            "HUB_DATABASE_URL": database_url.render_as_string(hide_password=False),
            "HUB_MANIFESTS": str(manifests),
            URL_ENV: url.render_as_string(hide_password=False),
            **hub_env(KEYS),
        }
        median, p90 = commit_floor(Path(tmp))
        print(
            f"a bare SQLite commit here (WAL, synchronous FULL): {median:.2f} ms median, {p90:.2f} ms 90th "
            f"percentile (load average {os.getloadavg()[0]:.2f})"
        )
        from hub.app import create_app
        from hub.config import load_settings
        from hub.services import build_services

        app = create_app(build_services(load_settings(env)))
        headers = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")]
        body = orjson.dumps({"query": WORKLOADS[args.workload].query})
        asyncio.run(_run(app, body, headers, args.requests, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
