"""Where the hub's time goes on W1: the hub app called in process, each part timed.

    .venv/bin/python -m bench.profile_w1 [--requests 30] [--freeze] [--cprofile FILE]

Sets up the bench database and a throw-away hub exactly as `bench.run` does (same data, keys,
manifests and caller), then builds the app as `hub serve` does and sends W1's request through
httpx's ASGI transport: no socket, no uvicorn, so what is timed is the hub's own work. After
3 warm-ups it times `--requests` requests and prints, per part, the median milliseconds per
request (parts nest: the reader's parts are inside the reader, the reader inside GraphQL
execution), and how much of each request the garbage collector took, by generation.

`--freeze` runs `gc.freeze()` after the warm-ups, as a server that freezes its start-up heap
would: full collections then walk only what requests allocate. Comparing a run with and
without it prices the collector. `--cprofile FILE` also writes a cProfile of the timed
requests (`python -m pstats FILE`). A profiling aid, not a benchmark: ratios against the
physical limit come from `bench.run`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import gc
import inspect
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.database import bench_url
from bench.hub_setup import URL_ENV, hub_env, prepare_hub, register_app
from bench.run import prepare_database
from bench.w1 import PURPOSE, QUERY

WARMUPS = 3
# (label, module, attribute path): the parts timed, outermost first. A part whose function is
# gone (renamed by later work) is left out with a note rather than failing the run.
PARTS = [
    ("GraphQL execution (all of it)", "strawberry", "Schema.execute"),
    ("  reader: one list", "hub.access.read", "Reader.page"),
    ("    connector: statement, driver, rows", "connectors.sql", "SqlConnector._execute"),
    ("    connector: values read column-wise", "connectors.sql", "SqlConnector._columns"),
    ("    release: decrypt, mask, row dicts", "hub.access.release", "Releaser.release"),
    ("      of which decrypting", "hub.access.release", "Releaser._decrypt"),
    ("  completion: shaper", "schema.execution.shaper", "Shaper.many"),
    ("payload: orjson", "hub.app", "JSON.render"),
]


class Clock:
    """Time spent per label during the current request."""

    def __init__(self) -> None:
        self.now: dict[str, float] = defaultdict(float)
        self.requests: dict[str, list[float]] = defaultdict(list)

    def close_request(self) -> None:
        for label, seconds in self.now.items():
            self.requests[label].append(seconds)
        self.now.clear()

    def median_ms(self, label: str, count: int) -> float:
        samples = self.requests.get(label, [])
        padded = samples + [0.0] * (count - len(samples))
        return statistics.median(padded) * 1000 if padded else 0.0


def _resolve(module: str, path: str) -> tuple[Any, str] | None:
    try:
        owner: Any = __import__(module, fromlist=["_"])
    except ImportError:
        return None
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent, None)
    return (owner, name) if owner is not None and hasattr(owner, name) else None


def _timed(clock: Clock, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
    if asyncio.iscoroutinefunction(function):

        @functools.wraps(function)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                clock.now[label] += time.perf_counter() - start

        return timed_async

    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            clock.now[label] += time.perf_counter() - start

    return timed


@contextmanager
def instrumented(clock: Clock) -> Iterator[list[str]]:
    """Wrap each part's function in a timer, and time the collector by generation."""
    missing: list[str] = []
    undo: list[tuple[Any, str, Any]] = []
    for label, module, path in PARTS:
        found = _resolve(module, path)
        if found is None:
            missing.append(f"{module}.{path}")
            continue
        owner, name = found
        original = vars(owner).get(name)
        if not inspect.isfunction(original):  # inherited, or a static or class method
            missing.append(f"{module}.{path}")
            continue
        undo.append((owner, name, original))
        setattr(owner, name, _timed(clock, label, original))
    started: list[float] = []

    def collector(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            label = f"garbage collector, generation {info['generation']}"
            clock.now[label] += time.perf_counter() - started.pop()
            clock.now[f"{label} (collections)"] += 0.001  # shown x1000 as a count

    gc.callbacks.append(collector)
    try:
        yield missing
    finally:
        gc.callbacks.remove(collector)
        for owner, name, original in reversed(undo):
            setattr(owner, name, original)


async def profile(token: str, requests: int, freeze: bool, cprofile: Path | None) -> None:
    from hub.app import create_app
    from hub.config import load_settings
    from hub.services import build_services

    app = create_app(build_services(load_settings(os.environ)))
    headers = {"Authorization": f"Bearer {token}", "X-Hub-Purpose": PURPOSE}
    clock = Clock()
    totals: list[float] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub", timeout=60) as client:

            async def send() -> None:
                response = await client.post("/graphql", json={"query": QUERY}, headers=headers)
                if response.status_code != 200 or b'"errors"' in response.content[:200]:
                    raise SystemExit(f"the hub answered HTTP {response.status_code}: {response.text[:500]}")

            for _ in range(WARMUPS):
                await send()
            if freeze:
                gc.collect()
                gc.freeze()
            profiler = cProfile.Profile() if cprofile else None
            with instrumented(clock) as missing:
                for _ in range(requests):
                    start = time.perf_counter()
                    if profiler:
                        profiler.enable()
                    await send()
                    if profiler:
                        profiler.disable()
                    totals.append(time.perf_counter() - start)
                    clock.close_request()
            if profiler and cprofile:
                profiler.dump_stats(cprofile)
    report(clock, totals, requests, freeze, missing)


def report(clock: Clock, totals: list[float], requests: int, freeze: bool, missing: list[str]) -> None:
    total = statistics.median(totals) * 1000
    print(f"W1 in process: {requests} requests after {WARMUPS} warm-ups; gc.freeze() {'on' if freeze else 'off'}")
    print(f"{'part':<48}{'median ms':>10}{'share':>8}")
    print(f"{'whole request (ASGI, no socket)':<48}{total:>10.1f}{100:>7.0f}%  (min {min(totals) * 1000:.1f})")
    for label, _, _ in PARTS:
        if label in clock.requests:
            value = clock.median_ms(label, requests)
            print(f"{label:<48}{value:>10.1f}{value / total * 100:>7.0f}%")
    for generation in range(3):
        label = f"garbage collector, generation {generation}"
        seconds = clock.requests.get(label, [])
        counts = clock.requests.get(f"{label} (collections)", [])
        mean = sum(seconds) / requests * 1000
        per_request = sum(counts) * 1000 / requests
        print(f"{label:<48}{mean:>10.1f}{mean / total * 100:>7.0f}%  (mean; {per_request:.1f} collections a request)")
    if missing:
        print(f"not timed (not found): {', '.join(missing)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_w1", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30, help="timed requests (default 30)")
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() after the warm-ups")
    parser.add_argument("--cprofile", type=Path, help="also write a cProfile of the timed requests here")
    args = parser.parse_args(argv)
    prepare_database()
    with tempfile.TemporaryDirectory(prefix="hub-profile-") as tmp:
        manifests, database_url = prepare_hub(Path(tmp))
        token = asyncio.run(register_app(database_url))
        os.environ.update(
            {
                "HUB_DATABASE_URL": database_url.render_as_string(hide_password=False),
                "HUB_MANIFESTS": str(manifests),
                URL_ENV: bench_url().render_as_string(hide_password=False),
                **hub_env(),
            }
        )
        asyncio.run(profile(token, args.requests, args.freeze, args.cprofile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
