"""W6-quota in process: the lookup counter's CPU per request, without HTTP (issue 11's number: the
counter costs under 3%).

`python -m bench.w6_quota_cpu [--rounds 20] [--requests 4000]`. Two child processes build the hub
as `hub serve` does (settings from the environment, `build_services`, `create_app`, its
lifespan) on one hub database: one with the counter on and department apps' quota above the
run's keys, one with `HUB_LOOKUP_QUOTA=off`, as W6-quota's two hubs. Each asks for W6-quota's
1,000 ID numbers as the registry's app (in process), sends every key once, one request at a
time (a value's first request writes to the hub database; that is the priming pass of
W6-quota), then warms up with 32 concurrent tasks. Rounds of one window each, the order
alternating: 32 tasks send the health app's by-key reads straight to the ASGI app, and the child
reports its process's CPU seconds. The cost is the counted child's CPU per request over the
other's, as the ratio of the medians and round by round.

Where wrk's requests per second and even the server's CPU per request under wrk swing with the
machine's other work, this measure has no HTTP server, client or socket in it: what differs
between the two children is the counter alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import w6_cpu, w6_quota

WARMUP = 3_000
MODULE = "bench.w6_quota_cpu"


async def _keys(app: Any, registry_token: str) -> list[str]:
    """W6-quota's keys, as `w6_quota.person_ids` reads them, in process."""
    query = "{ populationPersons(first: 10000) { nodes { idNumber } } }"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as client:
        response = await client.post(
            "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {registry_token}"}
        )
    ids = [str(n["idNumber"]) for n in response.json()["data"]["populationPersons"]["nodes"]]
    return [ids[i * len(ids) // w6_quota.KEYS] for i in range(w6_quota.KEYS)]


async def _child(config: dict[str, Any]) -> None:
    """Serves windows of timed requests as the parent asks on standard input (`run N`, `quit`),
    one JSON line of CPU and wall seconds on standard output for each."""
    from hub.app import create_app
    from hub.config import load_settings
    from hub.services import build_services

    app = create_app(build_services(load_settings(os.environ)))
    headers = [
        (b"authorization", f"Bearer {config['token']}".encode()),
        (b"x-hub-purpose", w6_quota.PURPOSE.encode()),
        (b"content-type", b"application/json"),
    ]
    async with app.router.lifespan_context(app):
        keys = await _keys(app, config["registry"])
        bodies = [json.dumps({"query": w6_quota.QUERY, "variables": {"key": k}}).encode() for k in keys]
        # One at a time: each value's first request counts it in the (SQLite) hub database.
        await w6_cpu._drive(app, bodies, headers, len(bodies), clients=1)
        await w6_cpu._drive(app, bodies, headers, WARMUP)
        print("ready", flush=True)
        while True:
            command = (await asyncio.to_thread(sys.stdin.readline)).split()
            if not command or command[0] == "quit":
                break
            count = int(command[1])
            cpu, wall = time.process_time(), time.perf_counter()
            await w6_cpu._drive(app, bodies, headers, count)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(json.dumps({"cpu_s": cpu, "wall_s": wall, "requests": count}), flush=True)


def _parent(rounds: int, requests: int) -> int:
    from bench.hub_setup import prepare_hub, register_app
    from bench.machine import revision
    from bench.run import REPO, RESULTS, _hub_env, prepare_database, say

    prepare_database()
    names = w6_quota.NAMES
    cpu: dict[str, list[float]] = {name: [] for name in names}
    children: list[w6_cpu.Child] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-quota-cpu-") as tmp:
        manifests, database_url = prepare_hub(Path(tmp))
        token = asyncio.run(register_app(database_url, *w6_quota.HEALTH_APP))
        registry = asyncio.run(register_app(database_url, *w6_quota.REGISTRY_APP))
        env = _hub_env(manifests, database_url)
        config = {"token": token, "registry": registry}
        load_before = os.getloadavg()
        try:
            # One after the other: the first start seeds the policy into the new hub database.
            for extra in (w6_quota.COUNTED_ENV, w6_quota.UNCOUNTED_ENV):
                children.append(w6_cpu.Child(Path(sys.executable), {**env, **extra}, config, MODULE))
            for number in range(rounds):
                order = [0, 1] if number % 2 == 0 else [1, 0]
                for index in order:
                    window = children[index].window("run", requests)
                    cpu[names[index]].append(1e6 * window["cpu_s"] / window["requests"])
                if (number + 1) % 5 == 0 or number + 1 == rounds:
                    say(f"W6-quota-cpu: {number + 1}/{rounds} rounds")
        finally:
            for child in children:
                child.stop()
        load_after = os.getloadavg()
    counted, off = (cpu[name] for name in names)
    paired = sorted(a / b for a, b in zip(counted, off, strict=True))
    cost = statistics.median(counted) / statistics.median(off) - 1
    quartiles = statistics.quantiles(paired, n=4)
    lines = [
        f"W6-quota in process: µs of each hub process's CPU per request, windows of {requests:,} requests "
        f"from {w6_cpu.CLIENTS} concurrent tasks, {rounds} rounds (order alternating), hub {revision(REPO)}",
        "load average (1, 5, 15 min): before "
        + "/".join(f"{x:.2f}" for x in load_before)
        + ", after "
        + "/".join(f"{x:.2f}" for x in load_after),
        "",
    ]
    for name, used in cpu.items():
        lines.append(f"{name:<24} {statistics.median(used):>8.0f} ({min(used):.0f}-{max(used):.0f})")
    lines += [
        "",
        f"counted / counter off: CPU per request {cost * 100:+.1f}% (medians); per round median "
        f"{(statistics.median(paired) - 1) * 100:+.1f}%, middle half {(quartiles[0] - 1) * 100:+.1f}% to "
        f"{(quartiles[2] - 1) * 100:+.1f}% (target under +{w6_quota.TARGET_COST * 100:.0f}%: "
        f"{'met' if cost < w6_quota.TARGET_COST else 'NOT met'})",
    ]
    print("\n".join(lines), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"w6-quota-cpu-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    record = {"revision": revision(REPO), "cpu_us": cpu, "load_average": {"before": load_before, "after": load_after}}
    path.write_text(json.dumps(record, indent=2))
    say(f"wrote {path.relative_to(REPO)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=4_000, help="requests per window")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        asyncio.run(_child(json.loads(args.child)))
        return 0
    return _parent(args.rounds, args.requests)


if __name__ == "__main__":
    sys.exit(main())
