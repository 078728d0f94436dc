"""What holds the hub's event loop: every callback timed, in wall time and in the loop thread's
CPU time (issue 13's fairness).

Runs `hub demo` in this process with asyncio's `Handle._run` wrapped: each callback the loop
runs (a task's step, a transport's read, a timer) is timed by `time.perf_counter` and by
`time.thread_time`, the CPU the loop's own thread spent. A callback whose wall time is far above
its CPU time was waiting: for a CPU (a loaded machine), or for the GIL held by another thread of
the hub (aiosqlite's workers building rows). One whose CPU time is high is the hub's own
synchronous work, which pacing (connectors/pacing.py) is meant to cut. On SIGTERM or Ctrl-C the
hub stops and the probe writes `--out` (JSON): the count and the wall and CPU percentiles of
every callback, the slowest 40 by wall and by CPU with what they ran, and the gaps between two
callbacks (the loop waiting in `select`, or for the GIL on return).

    .venv/bin/python -m bench.loop_probe --data-dir DIR --port N --out FILE

Measure with `python -m bench.fairness --base-url http://127.0.0.1:N --tokens DIR/demo-tokens.json`
against it. With `--postgresql sqlite|postgresql` it serves the bench database on PostgreSQL
through `hub serve` (as `bench.fairness --database postgresql` does; the hub's own database on
the one named) and writes the callers' tokens to DIR/demo-tokens.json. The wrapping costs about
a microsecond per callback.
"""

from __future__ import annotations

import argparse
import asyncio
import asyncio.events
import gc
import json
import os
import signal
import sqlite3
import sys
import threading
import time
import types
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Callbacks slower than this (wall or CPU) are kept with what they ran; the rest only counted.
KEEP_S = 0.005
# The lag sampler's sleep.
LAG_S = 0.005


class Probe:
    def __init__(self) -> None:
        # When the running callback began (0.0 between callbacks), for the sampler.
        self.began = 0.0
        self.loop_thread = threading.get_ident()
        self.samples: Counter[str] = Counter()
        # Stacks of the trail's flush thread and of the loop while a flush runs past 10 ms.
        self.flush_samples: Counter[str] = Counter()
        self.flush_began = 0.0
        self.flush_thread = 0
        self.walls: list[float] = []
        self.cpus: list[float] = []
        # (wall s, CPU s, what, wall s of collections within, when)
        self.slow: list[tuple[float, float, str, float, float]] = []
        self.last_end = 0.0
        self.gaps: list[float] = []
        # Every collection: (generation, wall s, objects walked after, when) from gc.callbacks.
        self.collections: list[tuple[int, float, int, float]] = []
        self._gc_began = 0.0
        # Wall time spent collecting so far, to tell a callback's own work from its collections.
        self.gc_total = 0.0
        self.started = time.perf_counter()
        # The loop's lag: how late a task asking to sleep LAG_S wakes up.
        self.lags: list[float] = []
        self.lagging: asyncio.AbstractEventLoop | None = None
        # Lags of 30 ms or more: (lag s, when the sleep was asked for).
        self.long_lags: list[tuple[float, float]] = []
        self.lag_task: asyncio.Task[None] | None = None
        # Timed spans of the hub's own (the trail's flushes): (name, wall s, when, rows).
        self.spans: list[tuple[str, float, float, int]] = []
        # With --count-full: the objects of the oldest generation at each full collection, and when.
        self.count_full = False
        self.full_sizes: list[tuple[int, float]] = []
        # The memory give-back after each large answer: (wall s, when).
        self.give_backs: list[tuple[float, float]] = []

    def install(self) -> None:
        run = asyncio.events.Handle._run
        probe = self

        def timed(handle: asyncio.events.Handle) -> None:
            # `hub demo` runs loops before the server's (the demo data): sample the lag of each.
            loop = asyncio.get_running_loop()
            if probe.lagging is not loop:
                probe.lagging = loop
                probe.lag_task = loop.create_task(probe.lag())
            wall, cpu, collecting = time.perf_counter(), time.thread_time(), probe.gc_total
            probe.began = wall
            if probe.last_end:
                probe.gaps.append(wall - probe.last_end)
            try:
                run(handle)
            finally:
                end = time.perf_counter()
                probe.began = 0.0
                spent_wall, spent_cpu = end - wall, time.thread_time() - cpu
                probe.last_end = end
                probe.walls.append(spent_wall)
                probe.cpus.append(spent_cpu)
                if spent_wall >= KEEP_S or spent_cpu >= KEEP_S:
                    probe.slow.append((spent_wall, spent_cpu, _what(handle), probe.gc_total - collecting, wall))

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]

        def collected(phase: str, info: dict[str, int]) -> None:
            now = time.perf_counter()
            if phase == "start":
                if probe.count_full and info["generation"] == 2:
                    # What a full collection walks: the objects of the oldest generation (the
                    # younger ones are merged into it), counted before the clock starts.
                    probe.full_sizes.append((len(gc.get_objects(2)), now - probe.started))
                    now = time.perf_counter()
                probe._gc_began = now
            elif probe._gc_began:
                probe.collections.append((info["generation"], now - probe._gc_began, info["collected"], now))
                probe.gc_total += now - probe._gc_began
                if threading.get_ident() != probe.loop_thread:
                    where = "the trail's thread" if threading.get_ident() == probe.flush_thread else "another thread"
                    probe.spans.append(
                        (f"gen {info['generation']} collection on {where}", now - probe._gc_began, probe._gc_began, 0)
                    )
                probe._gc_began = 0.0

        gc.callbacks.append(collected)

    async def lag(self) -> None:
        """Samples the loop's lag for as long as the loop runs."""
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(LAG_S)
            self.lags.append(time.perf_counter() - asked - LAG_S)
            if self.lags[-1] >= 0.03:
                self.long_lags.append((self.lags[-1], asked))

    def sample(self, every_s: float) -> None:
        """Samples, from a thread of its own, where the loop thread is in every callback that
        has run longer than KEEP_S: the stacks that hold the loop, weighted by time."""

        def run() -> None:
            while True:
                time.sleep(every_s)
                began = self.began
                if began and time.perf_counter() - began >= KEEP_S:
                    frame = sys._current_frames().get(self.loop_thread)
                    if frame is not None:
                        self.samples[_stack(frame)] += 1
                # A flush running long: where its thread is, and what the loop runs meanwhile.
                flushing = self.flush_began
                if flushing and time.perf_counter() - flushing >= 0.01:
                    frames = sys._current_frames()
                    flush = frames.get(self.flush_thread)
                    loop = frames.get(self.loop_thread)
                    if flush is not None:
                        self.flush_samples["flush: " + _stack(flush)] += 1
                    if loop is not None:
                        self.flush_samples["loop: " + _stack(loop)] += 1

        threading.Thread(target=run, name="loop probe sampler", daemon=True).start()

    def _row(self, slow: tuple[float, float, str, float, float]) -> dict[str, Any]:
        return {
            "wall_ms": round(slow[0] * 1000, 2),
            "cpu_ms": round(slow[1] * 1000, 2),
            "gc_ms": round(slow[3] * 1000, 2),
            "at": round(slow[4] - self.started, 3),
            "what": slow[2],
        }

    def report(self) -> dict[str, Any]:
        def percentiles(values: list[float]) -> dict[str, float]:
            ordered = sorted(values)
            if not ordered:
                return {}
            at = lambda p: ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]  # noqa: E731
            return {f"p{p}": round(at(p) * 1000, 3) for p in (50, 99, 99.9)} | {"max": round(ordered[-1] * 1000, 3)}

        return {
            "callbacks": len(self.walls),
            "wall_ms": percentiles(self.walls),
            "cpu_ms": percentiles(self.cpus),
            "gap_ms": percentiles(self.gaps),
            "over_5ms_wall": sum(w >= KEEP_S for w in self.walls),
            "over_5ms_cpu": sum(c >= KEEP_S for c in self.cpus),
            "over_20ms_wall": sum(w >= 0.02 for w in self.walls),
            "over_20ms_cpu": sum(c >= 0.02 for c in self.cpus),
            "cpu_total_s": round(sum(self.cpus), 3),
            "lag_ms": percentiles(self.lags),
            "lags_over_50ms": sum(lag >= 0.05 for lag in self.lags),
            "long_lags": [
                {"lag_ms": round(g[0] * 1000, 1), "at": round(g[1] - self.started, 3)} for g in self.long_lags
            ],
            "give_backs": [{"ms": round(g[0] * 1000, 1), "at": round(g[1] - self.started, 3)} for g in self.give_backs],
            "spans": {
                name: percentiles([x[1] for x in self.spans if x[0] == name])
                | {"count": sum(1 for x in self.spans if x[0] == name)}
                for name in sorted({x[0] for x in self.spans})
            },
            "slowest_spans": [
                {
                    "what": x[0],
                    "ms": round(x[1] * 1000, 1),
                    "at": round(x[2] - self.started, 3),
                    "events and persons": x[3],
                }
                for name in sorted({x[0] for x in self.spans})
                for x in sorted((x for x in self.spans if x[0] == name), key=lambda x: -x[1])[:12]
            ],
            "give_back_ms": percentiles([g[0] for g in self.give_backs]) | {"count": len(self.give_backs)},
            "collections": {
                str(generation): {
                    "count": sum(1 for c in self.collections if c[0] == generation),
                    **percentiles([c[1] for c in self.collections if c[0] == generation]),
                    "total_ms": round(sum(c[1] for c in self.collections if c[0] == generation) * 1000, 1),
                }
                for generation in (0, 1, 2)
            },
            "slowest_collections": [
                {"generation": c[0], "wall_ms": round(c[1] * 1000, 2), "at": round(c[3] - c[1] - self.started, 3)}
                for c in sorted(self.collections, key=lambda c: -c[1])[:60]
            ],
            "slowest_wall": [self._row(s) for s in sorted(self.slow, key=lambda s: -s[0])[:60]],
            "slowest_cpu": [self._row(s) for s in sorted(self.slow, key=lambda s: -s[1])[:40]],
            "long_callback_samples": self.samples.most_common(60),
            # Everything timed, for lining a slow lookup up with what it waited on.
            "all_spans": [(x[0], round(x[1] * 1000, 3), round(x[2] - self.started, 4), x[3]) for x in self.spans],
            "all_collections": [
                (c[0], round(c[1] * 1000, 3), round(c[3] - c[1] - self.started, 4)) for c in self.collections if c[0]
            ],
            "all_slow": [self._row(s) for s in self.slow],
            "full_collection_objects": [(n, round(at, 3)) for n, at in self.full_sizes],
            "long_flush_samples": self.flush_samples.most_common(60),
        }


def _time_trail(probe: Probe) -> None:
    """Times the trail's flushes on SQLite: each on its thread (`_write`), as the loop awaits it
    (`write`), and each WAL checkpoint."""
    from hub.audit.sqlite_writer import SqliteFlusher

    def timing(name: str, method: Any, asynchronous: bool) -> Any:
        if asynchronous:

            async def timed_async(*args: Any) -> Any:
                began = time.perf_counter()
                try:
                    return await method(*args)
                finally:
                    probe.spans.append((name, time.perf_counter() - began, began, _persons(args[1])))

            return timed_async

        def timed(*args: Any) -> Any:
            began, cpu = time.perf_counter(), time.thread_time()
            if name == "flush on its thread":
                probe.flush_began, probe.flush_thread = began, threading.get_ident()
            try:
                return method(*args)
            finally:
                probe.flush_began = 0.0
                size = _persons(args[1]) if len(args) > 1 else 0
                probe.spans.append((name, time.perf_counter() - began, began, size))
                probe.spans.append((name + ", its CPU", time.thread_time() - cpu, began, size))

        return timed

    from hub.audit.writer import Pending
    from hub.health.guard import GuardedConnector

    wait = Pending.wait

    async def timed_wait(pending: Pending) -> int:
        began = time.perf_counter()
        try:
            return await wait(pending)
        finally:
            probe.spans.append(("trail wait", time.perf_counter() - began, began, len(pending.staged.persons)))

    Pending.wait = timed_wait  # type: ignore[method-assign]
    fetch = GuardedConnector.fetch

    async def timed_fetch(connector: GuardedConnector, query: Any) -> Any:
        began = time.perf_counter()
        page = None
        try:
            page = await fetch(connector, query)
            return page
        finally:
            rows = -1 if page is None else page.count
            probe.spans.append(("small read" if rows <= 1 else "read", time.perf_counter() - began, began, rows))

    GuardedConnector.fetch = timed_fetch  # type: ignore[method-assign]
    from hub.quota.counter import LookupCounter

    admit = LookupCounter.admit

    async def timed_admit(counter: LookupCounter, principal: Any, supplied: Any) -> Any:
        began = time.perf_counter()
        try:
            return await admit(counter, principal, supplied)
        finally:
            probe.spans.append(("lookup quota", time.perf_counter() - began, began, len(supplied)))

    LookupCounter.admit = timed_admit  # type: ignore[method-assign]

    class TimedConnection(sqlite3.Connection):
        # The flusher's BEGIN IMMEDIATE (a wait for the database's write lock) and COMMIT.
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql not in ("BEGIN IMMEDIATE", "COMMIT"):
                return super().execute(sql, *args)
            began = time.perf_counter()
            try:
                return super().execute(sql, *args)
            finally:
                probe.spans.append((sql.lower(), time.perf_counter() - began, began, 0))

    import hub.audit.sqlite_writer as sqlite_writer

    shim = types.SimpleNamespace(**vars(sqlite3))
    shim.connect = lambda *args, **kwargs: sqlite3.connect(*args, factory=TimedConnection, **kwargs)
    sqlite_writer.sqlite3 = shim  # type: ignore[assignment]
    SqliteFlusher.write = timing("flush awaited", SqliteFlusher.write, True)  # type: ignore[method-assign]
    SqliteFlusher._write = timing("flush on its thread", SqliteFlusher._write, False)  # type: ignore[method-assign]
    SqliteFlusher._wal_checkpoint = timing("checkpoint", SqliteFlusher._wal_checkpoint, False)  # type: ignore[method-assign]


def _time_postgresql(probe: Probe) -> None:
    """Times the trail on a PostgreSQL hub database (each flush as the loop awaits it, the
    backlog mover's statements) and the waits for a department's connection (hub/health/share.py)."""
    import hub.audit.backlog as backlog
    from hub.audit.postgres_writer import PostgresFlusher
    from hub.health.share import Share

    write = PostgresFlusher.write

    async def timed_write(flusher: PostgresFlusher, staged: Any, edge: Any) -> Any:
        began = time.perf_counter()
        try:
            return await write(flusher, staged, edge)
        finally:
            size = _persons(staged)
            name = "pg flush, a heavy event in it" if size > len(staged) + 64 else "pg flush"
            probe.spans.append((name, time.perf_counter() - began, began, size))

    PostgresFlusher.write = timed_write  # type: ignore[method-assign]
    move_some = backlog.move_some

    async def timed_move(connection: Any) -> int:
        began = time.perf_counter()
        moved = 0
        try:
            moved = await move_some(connection)
            return moved
        finally:
            probe.spans.append(("backlog move", time.perf_counter() - began, began, moved))

    backlog.move_some = timed_move  # type: ignore[assignment]

    # Each /graphql request from the trail's begin to its end (its answer sent or refused).
    from hub.audit.trail import Trail
    from hub.audit.writer import TrailWriter

    begin, end = Trail.begin, Trail.end

    def timed_begin(trail: Trail, request: Any) -> None:
        request.scope["probe.began"] = time.perf_counter()
        begin(trail, request)

    def timed_end(trail: Trail, request: Any) -> None:
        end(trail, request)
        began = request.scope.pop("probe.began", None)
        if began is not None:
            probe.spans.append(("request", time.perf_counter() - began, began, 0))

    Trail.begin, Trail.end = timed_begin, timed_end  # type: ignore[method-assign]
    gather = TrailWriter._gather

    async def timed_gather(writer: TrailWriter) -> None:
        began = time.perf_counter()
        try:
            await gather(writer)
        finally:
            probe.spans.append(("trail gathering", time.perf_counter() - began, began, 0))

    TrailWriter._gather = timed_gather  # type: ignore[method-assign]

    for name in ("wait", "wait_claim"):
        method = getattr(Share, name)

        def timing(method: Any, name: str) -> Any:
            async def timed(share: Share, owner: Any) -> None:
                began = time.perf_counter()
                try:
                    await method(share, owner)
                finally:
                    probe.spans.append((f"share.{name}", time.perf_counter() - began, began, 0))

            return timed

        setattr(Share, name, timing(method, name))


def _persons(staged: Any) -> int:
    """The rows a flush writes to the log and its person index: a heavy request's event has
    1,331 persons (their blind indexes, 32 bytes each, travel as one run of bytes)."""
    return len(staged) + sum(len(run) // 32 for one in staged for _, run in one.persons)


def _stack(frame: Any) -> str:
    """The innermost frames of the hub's own code and the libraries under it, innermost first."""
    parts = []
    while frame is not None and len(parts) < 8:
        name = frame.f_code.co_filename
        if "asyncio" in name:
            break
        parts.append(f"{name.rsplit('/', 2)[-2]}/{name.rsplit('/', 1)[-1]}:{frame.f_lineno} {frame.f_code.co_name}")
        frame = frame.f_back
    return " < ".join(parts)


def _what(handle: asyncio.events.Handle) -> str:
    callback = getattr(handle, "_callback", None)
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        frame = getattr(coro, "cr_frame", None)
        where = "" if frame is None else f" at {frame.f_code.co_filename.rsplit('/', 3)[-1]}:{frame.f_lineno}"
        return f"task {getattr(coro, '__qualname__', coro)}{where}"
    if owner is not None and hasattr(owner, "get_protocol"):
        # A transport's read or write: which protocol it feeds (asyncpg's, uvicorn's, ...).
        protocol = owner.get_protocol()
        feeds = f"{type(protocol).__module__}.{type(protocol).__qualname__}"
        return f"{getattr(callback, '__name__', callback)} of {type(owner).__name__} for {feeds}"
    return repr(callback)[:160]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loop_probe", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sample", type=float, help="sample long callbacks' stacks every this many seconds")
    parser.add_argument("--gc-threshold", help="gc.set_threshold for the hub: three integers, comma-separated")
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval for the hub, in seconds")
    parser.add_argument("--count-full", action="store_true", help="count what each full collection walks (slow)")
    parser.add_argument(
        "--postgresql",
        choices=["sqlite", "postgresql"],
        help="serve the bench database on PostgreSQL with `hub serve` (as bench.fairness --database "
        "postgresql does), the hub's own database on this; --data-dir then receives demo-tokens.json",
    )
    args = parser.parse_args(argv)
    if args.switch_interval is not None:
        # `hub demo` sets the interval from its settings (hub/interpreter.py).
        os.environ["HUB_SWITCH_INTERVAL_MS"] = repr(args.switch_interval * 1000)
    if args.gc_threshold is not None:
        gc.set_threshold(*(int(value) for value in args.gc_threshold.split(",")))
    probe = Probe()
    probe.count_full = args.count_full
    probe.install()
    if args.sample is not None:
        probe.sample(args.sample)
    # uvicorn raises SIGTERM again once it has shut down: here that ends `hub` normally, and
    # the report is written.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    import hub.large_answer as large_answer
    from hub.cli.main import main as hub

    give_back = large_answer.give_back

    def timed_give_back() -> object:
        began = time.perf_counter()
        try:
            return give_back()
        finally:
            probe.give_backs.append((time.perf_counter() - began, began))

    large_answer.give_back = timed_give_back  # type: ignore[assignment]
    _time_trail(probe)
    _time_postgresql(probe)

    try:
        if args.postgresql is None:
            hub(["demo", "--data-dir", str(args.data_dir), "--port", str(args.port)], standalone_mode=False)
        else:
            from bench.fairness import postgresql_setup

            args.data_dir.mkdir(parents=True, exist_ok=True)
            with postgresql_setup(args.postgresql, args.data_dir) as (env, tokens):
                (args.data_dir / "demo-tokens.json").write_text(json.dumps(tokens))
                os.environ.update(env)
                hub(["serve", "--port", str(args.port)], standalone_mode=False)
    finally:
        args.out.write_text(json.dumps(probe.report(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
