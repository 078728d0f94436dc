"""What the access trail costs: W6 (one delivery by key, 32 clients, wrk) and W1 (10,000 rows,
each a person touched) on two hubs serving the same data, one with the trail on and one with it
off (HUB_AUDIT=off, a bench-only setting), each on a hub database of its own: SQLite (default)
or PostgreSQL (`--hub-database postgresql`: databases hub_bench_audit_on / _off).

    .venv/bin/python -m bench.audit_cost [--workload w6|w1|both] [--hub-database sqlite|postgresql]

W6 runs are interleaved round by round (bench/load_wrk.py), W1's requests too (bench/measure.py),
so a slow spell of the shared machine falls on both alike. Beside requests per second (W6) and
latency (W1), each hub's CPU time (/proc/PID/stat, user + system, with its child processes':
the trail's writer process that `hub serve` starts) over the timed runs is divided by the
requests it served: the CPU per request, which survives noise better; it is also split by
thread (/proc/PID/task: the event loop's thread, and the others: aiosqlite's, the executor's,
the trail's writer thread with HUB_AUDIT_WRITER=thread), the writer process, and into user and
system time, so the trail's CPU can be placed. The load average is printed with each number.
Both hubs have the lookup quota off, so only the trail differs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy.engine import URL

from bench import w6
from bench.database import bench_url
from bench.hub_setup import prepare_hub, register_app
from bench.load_wrk import WrkTarget, measure_wrk
from bench.measure import Contender, measure
from bench.run import REPO, _hub_env, _hub_serve, prepare_database, say
from bench.servers import Server, start, stop, wait_ready
from bench.w1 import QUERY as W1_QUERY
from bench.w1 import hub_contender

T = TypeVar("T")
NAMES = ("trail on", "trail off")
ENVS = ({"HUB_AUDIT": "on", "HUB_LOOKUP_QUOTA": "off"}, {"HUB_AUDIT": "off", "HUB_LOOKUP_QUOTA": "off"})
# The trail-on hub's further settings (HUB_AUDIT_LINGER_MS, ...), as `--on-env NAME=VALUE`.
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(server: Server) -> float:
    """The hub's CPU seconds, user and system, with its child processes' (the trail's writer
    process, hub/audit/flush_process.py): the trail's cost wherever it runs."""
    return sum(_own_cpu(pid) for pid in _tree(server.process.pid))


def _own_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # a process that ended meanwhile
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                queue.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return found


def thread_cpu(server: Server) -> dict[str, float]:
    """CPU seconds of the event loop's thread and of the process's other threads, user and system."""
    pid = server.process.pid
    split = dict.fromkeys(("loop_user", "loop_system", "threads_user", "threads_system", "children"), 0.0)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # a thread that ended meanwhile
            continue
        where = "loop" if task.name == str(pid) else "threads"
        split[f"{where}_user"] += int(fields[11]) / TICKS
        split[f"{where}_system"] += int(fields[12]) / TICKS
    # The trail's writer process, user and system together.
    split["children"] = sum(_own_cpu(child) for child in _tree(pid)[1:])
    return split


def per_request(before: dict[str, float], after: dict[str, float], requests: float, unit: float) -> dict[str, float]:
    """The split's growth per request, in `unit`s of a second (1e6: µs). A thread that ended
    between the two readings takes its CPU with it: the split is a lower bound per part."""
    return {name: round((after[name] - value) * unit / requests, 1) for name, value in before.items()}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def with_cpu(hubs: list[Server], work: Callable[[], T]) -> tuple[T, list[float], list[list[dict[str, float]]]]:
    """`work()`, each hub's CPU seconds over it, and each hub's thread split before and after."""
    before = [cpu_seconds(h) for h in hubs]
    split_before = [thread_cpu(h) for h in hubs]
    result = work()
    splits = [[b, thread_cpu(h)] for h, b in zip(hubs, split_before, strict=True)]
    return result, [cpu_seconds(h) - b for h, b in zip(hubs, before, strict=True)], splits


def start_hubs(
    folder: Path, servers: list[Server], database: str, on_env: dict[str, str]
) -> list[tuple[Server, str, URL]]:
    hubs = []
    for name, env in zip(NAMES, (ENVS[0] | on_env, ENVS[1]), strict=True):
        sub = folder / name.replace(" ", "-")
        sub.mkdir()
        url = None
        if database == "postgresql":
            from tests.servers import fresh_database

            url = fresh_database("postgresql", f"hub_bench_audit_{name.split()[-1]}")
        manifests, database_url = prepare_hub(sub, database_url=url)
        token = asyncio.run(register_app(database_url))
        hub = start(f"hub ({name})", _hub_serve(), {**_hub_env(manifests, database_url), **env}, sub / "hub.log", REPO)
        servers.append(hub)
        wait_ready(hub, "/healthz")
        hubs.append((hub, token, database_url))
    return hubs


def run_w6(hubs: list[tuple[Server, str, URL]], duration_s: float, runs: int) -> dict[str, Any]:
    keys = asyncio.run(w6.delivery_ids(bench_url()))
    targets = [
        WrkTarget(
            name,
            hub.base_url,
            "POST",
            [("/graphql", orjson.dumps(w6._hub_body(k, None)).decode()) for k in keys],
            w6._hub_headers(token),
        )
        for name, (hub, token, _) in zip(NAMES, hubs, strict=True)
    ]
    say(f"W6: {load()}; wrk, {w6.CONNECTIONS} connections, {duration_s:g} s a run, 1 warm-up + {runs} rounds")
    series, cpu, splits = with_cpu(
        [h for h, _, _ in hubs],
        lambda: measure_wrk(targets, 1, runs, duration_s, w6.CONNECTIONS, w6.THREADS, progress=say),
    )
    on, off = series
    # CPU over warm-ups and timed runs alike; requests likewise (warm-up requests are not in
    # the series), so the per-request figure counts the timed runs' requests only: an upper bound.
    requests = [sum(r.requests for r in s.runs) for s in series]
    paired = sorted(a.rps / b.rps for a, b in zip(on.runs, off.runs, strict=True))
    return {
        "rps": {NAMES[0]: on.rps, NAMES[1]: off.rps},
        "ratio": on.rps[0] / off.rps[0],
        "ratio_per_round": paired,
        "cpu_us_per_request": {n: c * 1e6 / r for n, c, r in zip(NAMES, cpu, requests, strict=True)},
        "cpu_us_per_request_by_thread": {
            n: per_request(b, a, r, 1e6) for n, (b, a), r in zip(NAMES, splits, requests, strict=True)
        },
        "load": load(),
    }


def run_w1(hubs: list[tuple[Server, str, URL]], runs: int) -> dict[str, Any]:
    contenders = [
        Contender(name, "POST", c.url, c.headers, c.json)
        for name, c in ((n, hub_contender(h.base_url, t)) for n, (h, t, _) in zip(NAMES, hubs, strict=True))
    ]
    say(f"W1: {load()}; {runs} runs each, interleaved")
    timings, cpu, splits = with_cpu([h for h, _, _ in hubs], lambda: measure(contenders, 2, runs))
    medians = [statistics.median(t.samples_ms) for t in timings]
    return {
        "median_ms": dict(zip(NAMES, medians, strict=True)),
        "ratio": medians[0] / medians[1],
        "cpu_ms_per_request": {n: c * 1000 / (runs + 2) for n, c in zip(NAMES, cpu, strict=True)},
        "cpu_ms_per_request_by_thread": {
            n: per_request(b, a, runs + 2, 1e3) for n, (b, a) in zip(NAMES, splits, strict=True)
        },
        "load": load(),
        "query": W1_QUERY,
    }


def measure_trail(database: str, workload: str, duration_s: float, runs: int, on_env: dict[str, str]) -> dict[str, Any]:
    """W6 and/or W1 with the trail on and off, same run, hub database on `database`."""
    servers: list[Server] = []
    results: dict[str, Any] = {"hub_database": database, "on_env": on_env}
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        try:
            hubs = start_hubs(Path(tmp), servers, database, on_env)
            if workload in ("w6", "both"):
                results["w6"] = run_w6(hubs, duration_s, runs)
            if workload in ("w1", "both"):
                results["w1"] = run_w1(hubs, 3 * runs)
        except Exception:
            for server in servers:
                say(f"--- {server.name} ---\n{server.log_tail(40)}")
            raise
        finally:
            for server in reversed(servers):
                stop(server)
    return results


def trail_workload(code: str, machine: dict[str, Any], duration_s: float, folder: Path, runs: int = 8) -> Path:
    """`bench.run --workload trail`: W6 and W1 with the trail on and off, same run, the hub
    database on SQLite and then on PostgreSQL; the record's path (bench/results/trail-*.json).
    Eight W6 rounds: with four, one slow spell of the shared machine moved the ratio by 0.1-0.2.
    Beside the ratio of the medians, the median of the rounds' own ratios (each round runs both
    hubs back to back), which a drift of the machine's speed over the run moves less."""
    started = datetime.now(UTC)
    record: dict[str, Any] = {
        "workload": "trail",
        "started": started.isoformat(),
        "machine": machine,
        "revision": code,
        "runs": {db: measure_trail(db, "both", duration_s, runs, {}) for db in ("sqlite", "postgresql")},
    }
    for db, result in record["runs"].items():
        w6_cpu, w1_cpu = result["w6"]["cpu_us_per_request"], result["w1"]["cpu_ms_per_request"]
        writer = result["w6"]["cpu_us_per_request_by_thread"][NAMES[0]]["children"]
        say(
            f"trail, hub database {db}: W6 req/s on/off {result['w6']['ratio']:.2f} (rounds' median "
            f"{statistics.median(result['w6']['ratio_per_round']):.2f}), CPU per request "
            f"{w6_cpu[NAMES[0]]:.0f} / {w6_cpu[NAMES[1]]:.0f} µs (writer process {writer:.0f}); "
            "W1 median latency on/off "
            f"{result['w1']['ratio']:.2f}, CPU per request {w1_cpu[NAMES[0]]:.0f} / {w1_cpu[NAMES[1]]:.0f} ms"
        )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"trail-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit_cost")
    parser.add_argument("--workload", choices=("w6", "w1", "both"), default="both")
    parser.add_argument("--hub-database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--duration", type=float, default=5.0, help="W6: seconds per wrk run")
    parser.add_argument("--runs", type=int, default=6, help="W6 rounds; W1 runs are 3x this")
    parser.add_argument("--on-env", action="append", default=[], help="NAME=VALUE for the trail-on hub")
    args = parser.parse_args()
    on_env = dict(item.split("=", 1) for item in args.on_env)
    prepare_database()
    results = measure_trail(args.hub_database, args.workload, args.duration, args.runs, on_env)
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
