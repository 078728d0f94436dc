"""Where the access trail's CPU goes on W6, in process: the trail on against off, by thread, and
cProfile of the event loop's thread and of the SQLite writer's flushes.

    .venv/bin/python -m bench.trail_profile [--hub-database sqlite|postgresql] [--rounds 6]
        [--requests 3000] [--profile 6000]

Two child hubs (bench/w6_cpu.py's driver: 32 tasks send W6's lookup by key as text straight to
the ASGI app), one with the trail on and one with `HUB_AUDIT=off`, each on a hub database of its
own (SQLite files, or PostgreSQL databases `hub_bench_profile_on` / `_off`), both with the
lookup quota off, as `bench.audit_cost` runs them. Rounds alternate the two; each window
reports the process's CPU per request and its event loop thread's (time.thread_time), so the
rest is the other threads' (the trail's SQLite writer, aiosqlite's, the executor's). Then, with
`--profile N`, the trail-on hub profiles N requests: cProfile of the loop's thread, and of each
flush on the writer's thread (SQLite: `SqliteFlusher._write` run under a profiler of its own),
printing the functions of hub/audit and the top of the rest by own time. The profiler inflates
call-heavy code: read its shares, not its microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHILD = "bench.trail_profile"
NAMES = ("trail on", "trail off")
ENVS = ({"HUB_AUDIT": "on", "HUB_LOOKUP_QUOTA": "off"}, {"HUB_AUDIT": "off", "HUB_LOOKUP_QUOTA": "off"})
WARMUP = 3_000


# --- the child: one hub, in process ------------------------------------------------------------


class _Writer:
    """Every SQLite flush of this process run under one profiler (on the writer's thread)."""

    def __init__(self) -> None:
        self.profiler = cProfile.Profile()
        self.flushes = 0


def _profile_writer() -> _Writer:
    from hub.audit import sqlite_writer

    writer = _Writer()
    original = sqlite_writer.SqliteFlusher._write

    def profiled(self: Any, staged: Any, edge: Any) -> Any:
        writer.flushes += 1
        return writer.profiler.runcall(original, self, staged, edge)

    sqlite_writer.SqliteFlusher._write = profiled  # type: ignore[method-assign]
    return writer


def _report(profiler: cProfile.Profile, title: str, requests: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    total = stats.total_tt  # type: ignore[attr-defined]
    out.write(f"=== {title}: {total * 1e6 / requests:.1f} profiled µs per request ===\n")
    stats.sort_stats("cumulative").print_stats("hub/audit", 40)
    stats.sort_stats("tottime").print_stats(30)
    return out.getvalue()


async def _child(config: dict[str, Any]) -> None:
    from bench.w6_cpu import _drive
    from hub.app import create_app
    from hub.config import load_settings
    from hub.services import build_services

    writer = _profile_writer() if config.get("profile") else None
    settings = load_settings(os.environ)
    services = build_services(settings)
    app = create_app(services)
    trail_writer = None if services.trail is None else services.trail.writer
    headers = [
        (b"authorization", f"Bearer {config['token']}".encode()),
        (b"x-hub-purpose", config["purpose"].encode()),
        (b"content-type", b"application/json"),
    ]
    bodies = [json.dumps({"query": config["query"], "variables": {"key": k}}).encode() for k in config["keys"]]
    async with app.router.lifespan_context(app):
        await _drive(app, bodies, headers, WARMUP)
        print("ready", flush=True)
        while True:
            command = (await asyncio.to_thread(sys.stdin.readline)).split()
            if not command or command[0] == "quit":
                break
            count = int(command[1])
            if command[0] == "profile":
                loop_profiler = cProfile.Profile()
                if writer is not None:
                    writer.profiler = cProfile.Profile()
                    writer.flushes = 0
                loop_profiler.enable()
                await _drive(app, bodies, headers, count)
                loop_profiler.disable()
                text = _report(loop_profiler, "event loop thread", count)
                loop_profiler.dump_stats(f"{command[2]}.loop.prof")
                if writer is not None and writer.flushes:
                    text += _report(writer.profiler, f"SQLite writer thread ({writer.flushes} flushes)", count)
                    writer.profiler.dump_stats(f"{command[2]}.writer.prof")
                await asyncio.to_thread(Path(command[2]).write_text, text)
                print(json.dumps({"written": command[2]}), flush=True)
                continue
            flushes = 0 if trail_writer is None else trail_writer.flushes
            cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
            await _drive(app, bodies, headers, count)
            cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
            wall = time.perf_counter() - wall
            flushes = 0 if trail_writer is None else trail_writer.flushes - flushes
            window = {"cpu_s": cpu, "loop_s": loop_cpu, "wall_s": wall, "requests": count, "flushes": flushes}
            print(json.dumps(window), flush=True)


# --- the parent: two hubs, rounds, report ------------------------------------------------------


def _parent(database: str, rounds: int, requests: int, profile: int, dump: Path | None) -> int:
    from bench import w6
    from bench.database import bench_url
    from bench.hub_setup import prepare_hub, register_app
    from bench.run import REPO, _hub_env, prepare_database, say
    from bench.w6_cpu import Child

    prepare_database()
    keys = asyncio.run(w6.delivery_ids(bench_url()))
    results: dict[str, list[dict[str, float]]] = {name: [] for name in NAMES}
    children: dict[str, Child] = {}
    with tempfile.TemporaryDirectory(prefix="hub-bench-trail-profile-") as tmp:
        try:
            for name, env in zip(NAMES, ENVS, strict=True):
                sub = Path(tmp) / name.replace(" ", "-")
                sub.mkdir()
                url = None
                if database == "postgresql":
                    from tests.servers import fresh_database

                    url = fresh_database("postgresql", f"hub_bench_profile_{name.split()[-1]}")
                manifests, database_url = prepare_hub(sub, database_url=url)
                token = asyncio.run(register_app(database_url))
                config = {
                    "token": token,
                    "purpose": w6.PURPOSE,
                    "query": w6.QUERY,
                    "keys": keys,
                    "profile": bool(profile) and name == NAMES[0],
                }
                environ = {**_hub_env(manifests, database_url), **env, "HUB_ACCESS_LOG": "off"}
                children[name] = Child(Path(sys.executable), environ, config, module=CHILD)
                say(f"trail-profile: {name} started")
            for number in range(rounds):
                order = NAMES if number % 2 == 0 else NAMES[::-1]
                for name in order:
                    results[name].append(children[name].window("text", requests))
            lines = [
                f"W6 in process, hub database {database}: µs of CPU per request, {rounds} windows of "
                f"{requests:,} requests each (alternating); load average now {os.getloadavg()[0]:.2f}",
                "",
                f"{'hub':<10} {'process':>22} {'event loop':>22} {'other threads':>22} {'req/s':>8}"
                f" {'events/flush':>13}",
            ]
            for name, runs in results.items():
                cpu = [1e6 * r["cpu_s"] / r["requests"] for r in runs]
                loop = [1e6 * r["loop_s"] / r["requests"] for r in runs]
                rest = [c - o for c, o in zip(cpu, loop, strict=True)]
                rps = statistics.median(r["requests"] / r["wall_s"] for r in runs)
                cells = [f"{statistics.median(x):.0f} ({min(x):.0f}-{max(x):.0f})" for x in (cpu, loop, rest)]
                flushes = sum(r.get("flushes", 0) for r in runs)
                group = f"{sum(r['requests'] for r in runs) / flushes:.1f}" if flushes else "-"
                lines.append(f"{name:<10} {cells[0]:>22} {cells[1]:>22} {cells[2]:>22} {rps:>8,.0f} {group:>13}")
            print("\n".join(lines), flush=True)
            if profile:
                folder = Path(dump or tmp)
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"profile-{database}.txt"
                child = children[NAMES[0]]
                assert child.process.stdin is not None
                child.process.stdin.write(f"profile {profile} {path}\n")
                child.process.stdin.flush()
                child._expect("")
                print(path.read_text(), flush=True)
        finally:
            for child in children.values():
                child.stop()
    say(f"{REPO.name}: done")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.trail_profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hub-database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=6, help="windows per hub")
    parser.add_argument("--requests", type=int, default=3_000, help="requests per window")
    parser.add_argument("--profile", type=int, default=6_000, help="requests profiled afterwards (0: none)")
    parser.add_argument("--dump", type=Path, help="a folder to keep the profiles in (.prof files, pstats)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        asyncio.run(_child(json.loads(args.child)))
        return 0
    return _parent(args.hub_database, args.rounds, args.requests, args.profile, args.dump)


if __name__ == "__main__":
    sys.exit(main())
