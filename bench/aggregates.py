"""The aggregate workloads: the hub's group-by over HTTP against its limit, in the same run.

`.venv/bin/python -m bench.aggregates [--scale N] [--runs R] [--hub-database postgresql]
[--trail-off-too]` from the repository root.

Two workloads: civil affairs' service deliveries by district and month (count and sum of
amounts), and finance's expenditures by budget line. The hub is asked by a civil affairs app
(which reads its own deliveries plain, so nothing is suppressed and the hub runs one statement
per workload, as the limit does); the limit (bench/aggregates_limit.py) runs the hub's own
statement raw through asyncpg and serialises the groups with orjson. Rounds interleave the
contenders; besides the wall-clock medians, the servers' CPU time per request is read from
/proc/PID/stat over the timed rounds, which survives a shared machine's noise better.

`--trail-off-too` (a diagnostic) starts a second hub beside the first, the same in every way
but its access trail (HUB_AUDIT=off, a bench-only setting), and times it in the same rounds:
the difference between the two hubs is the trail's share of the ratio. A hub serving callers
never runs without its trail.

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


def run(scale: int, runs: int, hub_db: str = "sqlite", trail_off_too: bool = False) -> list[dict[str, Any]]:
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
            quiet: Server | None = None
            if trail_off_too:
                # The same hub without its trail, on the same database and data (a diagnostic).
                quiet = start("hub-trail-off", hub_cmd, {**env, "HUB_AUDIT": "off"}, folder / "quiet.log", REPO)
                servers.append(quiet)
            limit_cmd = [sys.executable, "-m", "uvicorn", "--factory", "bench.aggregates_limit:create_app"]
            limit_env = {LIMIT_URL_ENV: url.render_as_string(hide_password=False)}
            limit = start("limit", [*limit_cmd, *LIMIT_OPTIONS], limit_env, folder / "limit.log", REPO)
            servers.append(limit)
            wait_ready(hub, "/healthz")
            wait_ready(limit, "/ready")
            if quiet is not None:
                wait_ready(quiet, "/healthz")
            headers = {"Authorization": f"Bearer {token}"}
            for name, workload in WORKLOADS.items():
                body = {"query": workload.query}
                hub_c = Contender("hub", "POST", f"{hub.base_url}/graphql", headers, body)
                limit_c = Contender("limit", "GET", f"{limit.base_url}/agg/{name}")
                contenders = [hub_c, limit_c]
                if quiet is not None:
                    contenders.append(Contender("hub-trail-off", "POST", f"{quiet.base_url}/graphql", headers, body))
                with httpx.Client(trust_env=False, timeout=60) as http:
                    want = http.get(limit_c.url)
                    for contender in (c for c in contenders if c is not limit_c):
                        got = http.post(contender.url, headers=headers, json=contender.json)
                        if got.status_code != 200 or "errors" in got.json():
                            raise RuntimeError(f"{contender.name} failed {name}: {got.text[:500]}")
                        if groups_of(got.content) != groups_of(want.content):
                            raise RuntimeError(f"{contender.name}'s and the limit's groups differ for {name}")
                groups = len(groups_of(want.content))
                say(f"{name}: {groups} groups, the same from all; timing {WARMUPS} warm-ups then {runs} rounds")
                measure(contenders, WARMUPS, 0)
                processes = [hub, limit, *([quiet] if quiet is not None else [])]
                load_before = os.getloadavg()
                cpu_before = [cpu_seconds(server.process.pid) for server in processes]
                timings = measure(contenders, 0, runs)
                cpu_after = [cpu_seconds(server.process.pid) for server in processes]
                cpu = [(after - before) * 1000 / runs for before, after in zip(cpu_before, cpu_after, strict=True)]
                result = _result(workload.name, scale, groups, timings, cpu, runs, load_before)
                results.append({**result, "hub_database": hub_db})
        finally:
            for server in reversed(servers):
                stop(server)
    return results


def _timings(timings: Timings) -> dict[str, float]:
    return {"median": timings.median_ms, "min": timings.min_ms, "max": timings.max_ms}


def _per_round(hub: Timings, limit: Timings) -> dict[str, float]:
    ratios = [h / max(li, 1e-9) for h, li in zip(hub.samples_ms, limit.samples_ms, strict=True)]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def _result(
    name: str,
    scale: int,
    groups: int,
    timings: list[Timings],
    cpu_ms: list[float],
    runs: int,
    load_before: tuple[float, float, float],
) -> dict[str, Any]:
    """One workload's numbers: `timings` and `cpu_ms` are the hub's, the limit's, then (with
    --trail-off-too) the trail-off hub's."""
    hub_t, limit_t = timings[0], timings[1]
    result: dict[str, Any] = {
        "workload": name,
        "scale": scale,
        "groups": groups,
        "runs": runs,
        "hub_ms": _timings(hub_t),
        "limit_ms": _timings(limit_t),
        "ratio_of_medians": hub_t.median_ms / limit_t.median_ms,
        "ratio_per_round": _per_round(hub_t, limit_t),
        "cpu_ms_per_request": {"hub": cpu_ms[0], "limit": cpu_ms[1]},
        "loadavg": {"before": load_before, "after": os.getloadavg()},
    }
    if len(timings) > 2:
        off = timings[2]
        result["trail_off"] = {
            "hub_ms": _timings(off),
            "ratio_of_medians": off.median_ms / limit_t.median_ms,
            "ratio_per_round": _per_round(off, limit_t),
            "cpu_ms_per_request": cpu_ms[2],
            # The trail's share of the hub's median time: what turning it off took away.
            "trail_share": (hub_t.median_ms - off.median_ms) / hub_t.median_ms,
        }
    return result


def table(results: list[dict[str, Any]]) -> str:
    off = any("trail_off" in r for r in results)
    head = (
        "| workload | scale | groups | hub ms median (min-max) | limit ms median (min-max) | hub/limit "
        "(per-round median, min-max) | CPU ms/request hub / limit | load avg (1 min) |"
    )
    rule = "|---|---|---|---|---|---|---|---|"
    if off:
        head += " trail off: hub ms median (min-max) | trail off: hub/limit | trail off: CPU ms | trail's share |"
        rule += "---|---|---|---|"
    lines = [head, rule]
    for r in results:
        h, li, pr, cpu = r["hub_ms"], r["limit_ms"], r["ratio_per_round"], r["cpu_ms_per_request"]
        line = (
            f"| {r['workload']} | {r['scale']} | {r['groups']} | {h['median']:.1f} ({h['min']:.1f}-{h['max']:.1f}) "
            f"| {li['median']:.1f} ({li['min']:.1f}-{li['max']:.1f}) | {r['ratio_of_medians']:.2f}x "
            f"({pr['median']:.2f}, {pr['min']:.2f}-{pr['max']:.2f}) | {cpu['hub']:.1f} / {cpu['limit']:.1f} "
            f"| {r['loadavg']['before'][0]:.2f} -> {r['loadavg']['after'][0]:.2f} |"
        )
        if "trail_off" in r:
            q = r["trail_off"]
            qh = q["hub_ms"]
            line += (
                f" {qh['median']:.1f} ({qh['min']:.1f}-{qh['max']:.1f}) | {q['ratio_of_medians']:.2f}x "
                f"| {q['cpu_ms_per_request']:.1f} | {q['trail_share']:.0%} |"
            )
        elif off:
            line += " - | - | - | - |"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1, help="the demo's scale (every department N times over)")
    parser.add_argument("--runs", type=int, default=30, help="timed rounds per workload")
    parser.add_argument(
        "--hub-database", choices=("sqlite", "postgresql"), default="sqlite", help="the hub's own database"
    )
    parser.add_argument(
        "--trail-off-too",
        action="store_true",
        help="also time the same hub with its access trail off (HUB_AUDIT=off), to show the trail's share",
    )
    args = parser.parse_args()
    results = run(args.scale, args.runs, args.hub_database, args.trail_off_too)
    print(table(results))
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
