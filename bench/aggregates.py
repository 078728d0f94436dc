"""The aggregate workloads: the hub's group-by over HTTP against its limit, in the same run.

`.venv/bin/python -m bench.aggregates [--scale N] [--runs R]` from the repository root.

Two workloads: civil affairs' service deliveries by district and month (count and sum of
amounts), and finance's expenditures by budget line. The hub is asked by a civil affairs app
(which reads its own deliveries plain, so nothing is suppressed and the hub runs one statement
per workload, as the limit does); the limit (bench/aggregates_limit.py) runs the hub's own
statement raw through asyncpg and serialises the groups with orjson. Rounds interleave the
contenders; besides the wall-clock medians, the servers' CPU time per request is read from
/proc/PID/stat over the timed rounds, which survives a shared machine's noise better.

The data: the demo loaded into PostgreSQL at 127.0.0.1:5432, database `bench_agg` at scale 1 or
`bench_agg_x<N>` for `--scale N` (every department N times over: hub.demo.scale), loaded if
missing, under keys of its own (~/.cache/hub-bench-agg): the other benchmarks' `bench` database
and keys are left to them, so a run here never reloads data another benchmark is reading.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy.engine import URL

from bench.aggregates_limit import URL_ENV as LIMIT_URL_ENV
from bench.aggregates_limit import WORKLOADS
from bench.database import bench_url, ensure_database, table_counts
from bench.hub_setup import URL_ENV, bench_keyring, hub_env, prepare_hub, register_app
from bench.measure import Contender, Timings, measure
from bench.servers import HOST, Server, start, stop, wait_ready
from hub.demo.generate import generate
from hub.demo.load import load_demo
from hub.demo.scale import SHARED_TABLES
from hub.demo.workspace import DEPARTMENTS, Workspace

REPO = Path(__file__).resolve().parent.parent
# BENCH_AGG_SUFFIX gives a checkout data and keys of its own, where several checkouts of
# different code (whose demo data or hub migrations differ) share one PostgreSQL server.
SUFFIX = os.environ.get("BENCH_AGG_SUFFIX", "")
if not SUFFIX.replace("_", "").isalnum() and SUFFIX:
    raise SystemExit("BENCH_AGG_SUFFIX takes letters, digits and underscores")
DATABASE = f"bench_agg{SUFFIX.lower()}"
KEYS = Workspace(Path.home() / ".cache" / f"hub-bench-agg{SUFFIX.lower()}")
WARMUPS = 5
CALLER = ("agg-bench", "civil_affairs", ("department_app",))
LIMIT_OPTIONS = ("--host", HOST, "--port", "{port}", "--log-level", "warning", "--no-access-log")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def database_for(scale: int) -> URL:
    return bench_url(DATABASE if scale == 1 else f"{DATABASE}_x{scale}")


def ensure_scaled_data(url: URL, scale: int, keys: Workspace = KEYS) -> None:
    """The demo at `scale` in `url`, loaded (under `keys`) unless every table already holds its rows."""
    if asyncio.run(ensure_database(str(url.database))):
        say(f"created database {url.database}")
    expected = {
        table: len(rows) * (1 if table in SHARED_TABLES else scale)
        for tables in generate().values()
        for table, rows in tables.items()
    }
    counts = asyncio.run(table_counts(url, sorted(expected)))
    if all(counts[t] == n for t, n in expected.items()):
        return
    say(f"loading the demo at scale {scale} into {url.database} ({sum(expected.values())} rows)")
    keyring = bench_keyring(keys)
    target = url.render_as_string(hide_password=False)
    asyncio.run(load_demo(dict.fromkeys(DEPARTMENTS, target), keyring, scale=scale))


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def groups_of(body: bytes) -> Any:
    data = orjson.loads(body)["data"]
    return next(iter(data.values()))["groups"]


def hub_database(kind: str) -> URL | None:
    """The hub's own database (its access trail among it): None for SQLite in the run's
    folder, or a fresh PostgreSQL database `hub_bench_agg`, as in production."""
    if kind == "sqlite":
        return None
    from tests.servers import fresh_database

    return fresh_database("postgresql", f"hub_bench_agg{SUFFIX.lower()}")


def run(scale: int, runs: int, hub_db: str = "sqlite") -> list[dict[str, Any]]:
    url = database_for(scale)
    ensure_scaled_data(url, scale)
    servers: list[Server] = []
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-agg-") as tmp:
        folder = Path(tmp)
        try:
            manifests, database_url = prepare_hub(folder, KEYS, hub_database(hub_db))
            token = asyncio.run(register_app(database_url, *CALLER))
            env = {
                "HUB_DATABASE_URL": database_url.render_as_string(hide_password=False),
                "HUB_MANIFESTS": str(manifests),
                URL_ENV: url.render_as_string(hide_password=False),
                **hub_env(KEYS),
            }
            hub_cmd = [str(Path(sys.executable).parent / "hub"), "serve", "--host", HOST, "--port", "{port}"]
            hub = start("hub", hub_cmd, env, folder / "hub.log", REPO)
            servers.append(hub)
            limit_cmd = [sys.executable, "-m", "uvicorn", "--factory", "bench.aggregates_limit:create_app"]
            limit_env = {LIMIT_URL_ENV: url.render_as_string(hide_password=False)}
            limit = start("limit", [*limit_cmd, *LIMIT_OPTIONS], limit_env, folder / "limit.log", REPO)
            servers.append(limit)
            wait_ready(hub, "/healthz")
            wait_ready(limit, "/ready")
            headers = {"Authorization": f"Bearer {token}"}
            for name, workload in WORKLOADS.items():
                hub_c = Contender("hub", "POST", f"{hub.base_url}/graphql", headers, {"query": workload.query})
                limit_c = Contender("limit", "GET", f"{limit.base_url}/agg/{name}")
                with httpx.Client(trust_env=False, timeout=60) as http:
                    got = http.post(hub_c.url, headers=headers, json=hub_c.json)
                    want = http.get(limit_c.url)
                if got.status_code != 200 or "errors" in got.json():
                    raise RuntimeError(f"the hub failed {name}: {got.text[:500]}")
                if groups_of(got.content) != groups_of(want.content):
                    raise RuntimeError(f"the hub's and the limit's groups differ for {name}")
                groups = len(groups_of(got.content))
                say(f"{name}: {groups} groups, the same from both; timing {WARMUPS} warm-ups then {runs} rounds")
                measure([hub_c, limit_c], WARMUPS, 0)
                load_before = os.getloadavg()
                cpu_before = (cpu_seconds(hub.process.pid), cpu_seconds(limit.process.pid))
                hub_t, limit_t = measure([hub_c, limit_c], 0, runs)
                cpu_after = (cpu_seconds(hub.process.pid), cpu_seconds(limit.process.pid))
                result = _result(workload.name, scale, groups, hub_t, limit_t, cpu_before, cpu_after, runs, load_before)
                results.append({**result, "hub_database": hub_db})
        finally:
            for server in reversed(servers):
                stop(server)
    return results


def _result(
    name: str,
    scale: int,
    groups: int,
    hub_t: Timings,
    limit_t: Timings,
    cpu_before: tuple[float, float],
    cpu_after: tuple[float, float],
    runs: int,
    load_before: tuple[float, float, float],
) -> dict[str, Any]:
    per_round = [h / max(limit, 1e-9) for h, limit in zip(hub_t.samples_ms, limit_t.samples_ms, strict=True)]
    return {
        "workload": name,
        "scale": scale,
        "groups": groups,
        "runs": runs,
        "hub_ms": {"median": hub_t.median_ms, "min": hub_t.min_ms, "max": hub_t.max_ms},
        "limit_ms": {"median": limit_t.median_ms, "min": limit_t.min_ms, "max": limit_t.max_ms},
        "ratio_of_medians": hub_t.median_ms / limit_t.median_ms,
        "ratio_per_round": {"median": statistics.median(per_round), "min": min(per_round), "max": max(per_round)},
        "cpu_ms_per_request": {
            "hub": (cpu_after[0] - cpu_before[0]) * 1000 / runs,
            "limit": (cpu_after[1] - cpu_before[1]) * 1000 / runs,
        },
        "loadavg": {"before": load_before, "after": os.getloadavg()},
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| workload | scale | groups | hub ms median (min-max) | limit ms median (min-max) | hub/limit "
        "(per-round median, min-max) | CPU ms/request hub / limit | load avg (1 min) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        h, li, pr, cpu = r["hub_ms"], r["limit_ms"], r["ratio_per_round"], r["cpu_ms_per_request"]
        lines.append(
            f"| {r['workload']} | {r['scale']} | {r['groups']} | {h['median']:.1f} ({h['min']:.1f}-{h['max']:.1f}) "
            f"| {li['median']:.1f} ({li['min']:.1f}-{li['max']:.1f}) | {r['ratio_of_medians']:.2f}x "
            f"({pr['median']:.2f}, {pr['min']:.2f}-{pr['max']:.2f}) | {cpu['hub']:.1f} / {cpu['limit']:.1f} "
            f"| {r['loadavg']['before'][0]:.2f} -> {r['loadavg']['after'][0]:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1, help="the demo's scale (every department N times over)")
    parser.add_argument("--runs", type=int, default=30, help="timed rounds per workload")
    parser.add_argument(
        "--hub-database", choices=("sqlite", "postgresql"), default="sqlite", help="the hub's own database"
    )
    args = parser.parse_args()
    results = run(args.scale, args.runs, args.hub_database)
    print(table(results))
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
