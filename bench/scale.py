"""Scale (issue 18): several `hub serve` instances on one PostgreSQL hub database.

    .venv/bin/python -m bench.scale [--edits 100] [--duration 8] [--runs 3]

1. Policy propagation: `--edits` policy edits, each through the next instance in turn; after
   each, the time until both other instances answer under the new version (a W6 request's
   `extensions.access.policyVersion`), measured from the edit's answer. Median and max.
2. W6 (one record by key, 32 clients, wrk) through a loopback haproxy in front of 1, 2 and 3
   instances, the three set-ups interleaved round by round; the CPU seconds of the instances
   and of haproxy per request.
3. The hub database's bytes per audit event, from the events the runs wrote.

The set-up installs haproxy and wrk from Debian's packages when they are missing (`apt-get
install -y haproxy wrk`, as root), not CI. Results: bench/results/scale-*.json and stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from bench import w6
from bench.database import bench_url, ensure_database, ensure_demo_data, expected_counts
from bench.hub_setup import KEYS, URL_ENV, bench_keyring, hub_env, prepare_hub, register_app
from bench.load_wrk import WrkTarget, process_cpu_s, run_wrk
from bench.run import REPO, RESULTS, _hub_serve, say
from bench.servers import HOST, Server, free_port, start, stop, wait_ready
from hub.demo.workspace import Workspace
from hub.migrate import upgrade

HUB_DATABASE = "bench_hub_scale"
# A copy of the bench's keys (the same master key and wrapped keys) in a hub database at this
# tree's revision: the shared ~/.cache/hub-bench/hub.db may have been migrated by another
# checkout to a revision this one does not know, and is only read here, never migrated.
OWN_KEYS = Workspace(Path.home() / ".cache" / "hub-bench-scale")
ADMIN = ("bench-admin", "platform", ("admin",))
# The edit toggled: a rule for a role the bench's caller does not hold, so W6's answers stay
# the same while the version moves.
RULE = {
    "role": "district_office",
    "domain": "*",
    "object": "civil_affairs.AssistanceCase.assistanceType",
    "action": "read",
    "effect": "deny",
}
CHANGE = (
    "mutation($edits: [PolicyEditInput!]!, $reason: String!) "
    "{ changePolicy(edits: $edits, reason: $reason) { version } }"
)
AUDIT_TABLES = (
    "hub_audit_event",
    "hub_audit_person",
    "hub_audit_person_backlog",
    "hub_audit_anonymous",
    "hub_audit_node",
    "hub_audit_tree_head",
)


def ensure_tools() -> None:
    missing = [tool for tool in ("haproxy", "wrk") if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"{', '.join(missing)} missing: run `apt-get install -y haproxy wrk` as root")
    say(f"installing {', '.join(missing)} from Debian's packages")
    subprocess.run(["apt-get", "install", "-y", "haproxy", "wrk"], check=True, capture_output=True)


def own_keys() -> Workspace:
    if OWN_KEYS.master_key_file.exists():
        return OWN_KEYS
    if not KEYS.master_key_file.exists():
        return KEYS  # no bench keys yet: the first run makes them (bench.run's way)
    OWN_KEYS.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copy2(KEYS.master_key_file, OWN_KEYS.master_key_file)
    upgrade(OWN_KEYS.hub_database)
    source = sqlite3.connect(f"file:{KEYS.hub_database.database}?mode=ro", uri=True)
    target = sqlite3.connect(str(OWN_KEYS.hub_database.database))
    try:
        wanted = [row[1] for row in target.execute("PRAGMA table_info(hub_key)")]
        present = {row[1] for row in source.execute("PRAGMA table_info(hub_key)")}
        columns = [c for c in wanted if c in present]
        rows = source.execute(f"SELECT {', '.join(columns)} FROM hub_key").fetchall()  # noqa: S608 (column names read from the schema)
        marks = ", ".join("?" for _ in columns)
        target.executemany(f"INSERT INTO hub_key ({', '.join(columns)}) VALUES ({marks})", rows)  # noqa: S608
        target.commit()
    finally:
        source.close()
        target.close()
    return OWN_KEYS


def prepare_data(keys: Workspace) -> None:
    url = bench_url()
    if asyncio.run(ensure_database()):
        say(f"created database {url.database}")
    say("checking the demo data (generating the expected row counts)")
    if asyncio.run(ensure_demo_data(url, expected_counts(), bench_keyring(keys))):
        say(f"loaded the demo data into {url.render_as_string()}")


async def fresh_hub_database() -> URL:
    base = bench_url()
    engine = create_async_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(sa.text(f"DROP DATABASE IF EXISTS {HUB_DATABASE}"))
            await connection.execute(sa.text(f"CREATE DATABASE {HUB_DATABASE}"))
    finally:
        await engine.dispose()
    return base.set(database=HUB_DATABASE)


def haproxy(folder: Path, backends: list[Server], name: str) -> Server:
    port = free_port()
    servers = "\n".join(f"    server h{i} {HOST}:{b.port} maxconn 64" for i, b in enumerate(backends))
    config = folder / f"{name}.cfg"
    config.write_text(
        f"""global
    maxconn 4096
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
frontend hubs
    bind {HOST}:{port}
    default_backend instances
backend instances
    balance roundrobin
    http-reuse always
    option httpchk GET /readyz
{servers}
""",
        encoding="utf-8",
    )
    return start(name, ["haproxy", "-db", "-f", str(config)], {}, folder / f"{name}.log", REPO, port)


def policy_version(client: httpx.Client, base: str, headers: dict[str, str], key: str) -> str:
    body = client.post(f"{base}/graphql", json=w6._hub_body(key, None), headers=headers).json()
    return str(body["extensions"]["access"]["policyVersion"])


def propagation(hubs: list[Server], token: str, admin: str, key: str, edits: int) -> list[float]:
    """Seconds from each edit's answer until both other instances decide on its version."""
    headers = w6._hub_headers(token)
    admin_headers = {"Authorization": f"Bearer {admin}"}
    times: list[float] = []
    op = "ADD_RULE"
    with httpx.Client(timeout=30) as client:
        for n in range(edits):
            by = n % len(hubs)
            variables = {"edits": [{"op": op, "rule": RULE}], "reason": "bench: propagation"}
            answer = client.post(
                f"{hubs[by].base_url}/graphql", json={"query": CHANGE, "variables": variables}, headers=admin_headers
            ).json()
            made = str(answer["data"]["changePolicy"]["version"])
            began = time.monotonic()
            waiting = [h for i, h in enumerate(hubs) if i != by]
            while waiting:
                waiting = [h for h in waiting if policy_version(client, h.base_url, headers, key) != made]
                if time.monotonic() - began > 30:
                    raise RuntimeError(f"edit {n}: version {made} did not reach every instance within 30 s")
            times.append(time.monotonic() - began)
            op = "REMOVE_RULE" if op == "ADD_RULE" else "ADD_RULE"
    return times


def w6_rounds(
    folder: Path,
    balancers: dict[int, Server],
    hubs: list[Server],
    token: str,
    keys: list[str],
    duration: float,
    runs: int,
) -> dict[int, list[dict[str, Any]]]:
    body = [("/graphql", orjson.dumps(w6._hub_body(k, None)).decode()) for k in keys]
    files: dict[int, Path] = {}
    targets: dict[int, WrkTarget] = {}
    for count, balancer in balancers.items():
        targets[count] = WrkTarget(f"{count} instance(s)", balancer.base_url, "POST", body, w6._hub_headers(token))
        files[count] = folder / f"requests-{count}.tsv"
        files[count].write_text("".join(f"{p}\t{b}\n" for p, b in body), encoding="utf-8")
    results: dict[int, list[dict[str, Any]]] = {count: [] for count in balancers}
    order = sorted(balancers)
    for count in order:  # one warm-up each
        run_wrk(targets[count], files[count], duration, w6.CONNECTIONS, w6.THREADS, 5.0)
    for round_no in range(runs):
        shift = round_no % len(order)
        for count in order[shift:] + order[:shift]:
            pids = [h.process.pid for h in hubs[:count]]
            before = [process_cpu_s(pid) for pid in pids]
            proxy_before = process_cpu_s(balancers[count].process.pid)
            load = os.getloadavg()[0]
            run = run_wrk(targets[count], files[count], duration, w6.CONNECTIONS, w6.THREADS, 5.0)
            hub_cpu = sum(process_cpu_s(pid) - b for pid, b in zip(pids, before, strict=True))
            proxy_cpu = process_cpu_s(balancers[count].process.pid) - proxy_before
            results[count].append(
                {
                    "rps": run.rps,
                    "p50_ms": run.latency_ms["p50"],
                    "p99_ms": run.latency_ms["p99"],
                    "hub_cpu_us_per_request": 1e6 * hub_cpu / run.requests,
                    "haproxy_cpu_us_per_request": 1e6 * proxy_cpu / run.requests,
                    "load_1min_before": load,
                }
            )
            p99 = run.latency_ms["p99"]
            say(f"round {round_no + 1}/{runs}: {count} instance(s) {run.rps:,.0f} req/s, p99 {p99:.1f} ms")
    return results


async def audit_bytes(url: URL) -> dict[str, Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            events = int(await connection.scalar(sa.text("SELECT count(*) FROM hub_audit_event")) or 0)
            sizes = {}
            for table in AUDIT_TABLES:
                size = await connection.scalar(
                    sa.text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": table}
                )
                sizes[table] = int(size or 0)
    finally:
        await engine.dispose()
    total = sum(sizes.values())
    return {"events": events, "bytes": sizes, "bytes_per_event": total / events if events else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ensure_tools()
    keys_ = own_keys()
    prepare_data(keys_)
    keys = asyncio.run(w6.delivery_ids(bench_url()))
    started = datetime.now().astimezone()
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-scale-") as tmp:
        folder = Path(tmp)
        try:
            url = asyncio.run(fresh_hub_database())
            manifests, url = prepare_hub(folder, keys_, database_url=url)
            token = asyncio.run(register_app(url))
            admin = asyncio.run(register_app(url, *ADMIN))
            env = {
                "HUB_DATABASE_URL": url.render_as_string(hide_password=False),
                "HUB_MANIFESTS": str(manifests),
                URL_ENV: bench_url().render_as_string(hide_password=False),
                **hub_env(keys_),
            }
            hubs = [start(f"hub{i}", _hub_serve(), env, folder / f"hub{i}.log", REPO) for i in range(3)]
            servers.extend(hubs)
            for hub in hubs:
                wait_ready(hub, "/readyz")
            balancers = {count: haproxy(folder, hubs[:count], f"haproxy{count}") for count in (1, 2, 3)}
            servers.extend(balancers.values())
            for balancer in balancers.values():
                wait_ready(balancer, "/readyz")
            say(f"propagation: {args.edits} edits through 3 instances in turn (load {os.getloadavg()[0]:.2f})")
            times = propagation(hubs, token, admin, keys[0], args.edits)
            load_after_edits = os.getloadavg()[0]
            say(f"W6 through haproxy: 1, 2 and 3 instances, {args.runs} rounds of {args.duration:g} s")
            rounds = w6_rounds(folder, balancers, hubs, token, keys, args.duration, args.runs)
            audit = asyncio.run(audit_bytes(url))
        finally:
            for server in reversed(servers):
                stop(server)
    result = {
        "started": started.isoformat(),
        "cpus": os.cpu_count(),
        "propagation_ms": {
            "edits": len(times),
            "median": 1000 * statistics.median(times),
            "p90": 1000 * sorted(times)[int(0.9 * len(times)) - 1],
            "max": 1000 * max(times),
            "load_1min_after": load_after_edits,
        },
        "w6": {
            str(count): {
                "rps_median": statistics.median(r["rps"] for r in runs),
                "p99_ms_median": statistics.median(r["p99_ms"] for r in runs),
                "hub_cpu_us_per_request": statistics.median(r["hub_cpu_us_per_request"] for r in runs),
                "haproxy_cpu_us_per_request": statistics.median(r["haproxy_cpu_us_per_request"] for r in runs),
                "runs": runs,
            }
            for count, runs in rounds.items()
        },
        "audit": audit,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"scale-{started:%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(
        json.dumps(
            {k: v for k, v in result.items() if k != "w6"}
            | {"w6": {c: {k: round(v, 1) for k, v in r.items() if k != "runs"} for c, r in result["w6"].items()}},
            indent=2,
        )
    )
    say(f"written to {path}")


if __name__ == "__main__":
    sys.exit(main())
