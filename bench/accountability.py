"""The accountability reports over HTTP: `budgetLineAccountability` over every budget line, and
`accountabilityGaps` of each kind, as the demo's auditor (purpose `audit`) asks them.

`.venv/bin/python -m bench.accountability [--scale N] [--runs R]` from the repository root.

The data: the demo in PostgreSQL at 127.0.0.1:5432, the aggregates benchmark's database
(`bench_agg`, or `bench_agg_x<N>` for `--scale N`), loaded if missing. Each workload: 3 warm-ups,
then R timed requests (15 by default); medians with min and max, the hub's CPU time per request
(from /proc/PID/stat over the timed rounds) and the load average beside them. No baseline here:
the target is absolute (the full report under 300 ms, bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.aggregates import KEYS, cpu_seconds, database_for, ensure_scaled_data
from bench.hub_setup import URL_ENV, hub_env, prepare_hub, register_app
from bench.measure import Contender, measure
from bench.servers import HOST, start, stop, wait_ready

REPO = Path(__file__).resolve().parent.parent
WARMUPS = 3
CALLER = ("accountability-bench", "audit", ("auditor",))
AS_OF = "2026-06-30T18:00:00+08:00"
LINES = (
    '{ budgetLineAccountability(first: 10000, filter: {asOf: "' + AS_OF + '"}) { totalCount nodes { lineId '
    "allocated spent expenditures servicesDelivered services { department serviceType deliveries amount } "
    "districts requestsAnswered requestsUnanswered feedbackCount meanSatisfaction costPerAnsweredRequest "
    "medianResponseHours p90ResponseHours gaps { spendWithoutService serviceWithoutBasis overdueUnanswered } "
    "suppressed withheld } } }"
)
GAPS = (
    '{ accountabilityGaps(kind: KIND, first: 10000, filter: {asOf: "' + AS_OF + '"}) { totalCount nodes { kind ref '
    "group { department serviceType category districtCode } figures { name value } } } }"
)
KINDS = (
    "SPEND_WITHOUT_SERVICE",
    "SERVICE_WITHOUT_BASIS",
    "OVERDUE_UNANSWERED",
    "SERVICE_WITHOUT_FEEDBACK",
    "LOW_SATISFACTION",
    "DEMAND_WITHOUT_BUDGET",
)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def workloads() -> dict[str, str]:
    out = {"budgetLineAccountability (every line)": LINES}
    out.update({f"accountabilityGaps {kind}": GAPS.replace("KIND", kind) for kind in KINDS})
    return out


def run(scale: int, runs: int) -> list[dict[str, Any]]:
    url = database_for(scale)
    ensure_scaled_data(url, scale)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-acc-") as tmp:
        folder = Path(tmp)
        manifests, database_url = prepare_hub(folder, KEYS)
        token = asyncio.run(register_app(database_url, *CALLER))
        env = {
            "HUB_DATABASE_URL": database_url.render_as_string(hide_password=False),
            "HUB_MANIFESTS": str(manifests),
            URL_ENV: url.render_as_string(hide_password=False),
            **hub_env(KEYS),
        }
        hub_cmd = [str(Path(sys.executable).parent / "hub"), "serve", "--host", HOST, "--port", "{port}"]
        hub = start("hub", hub_cmd, env, folder / "hub.log", REPO)
        try:
            wait_ready(hub, "/healthz")
            headers = {"Authorization": f"Bearer {token}", "X-Hub-Purpose": "audit"}
            for name, query in workloads().items():
                contender = Contender("hub", "POST", f"{hub.base_url}/graphql", headers, {"query": query})
                with httpx.Client(trust_env=False, timeout=120) as http:
                    got = http.post(contender.url, headers=headers, json=contender.json)
                body = orjson.loads(got.content)
                if got.status_code != 200 or "errors" in body:
                    say(f"{name}: refused or failed: {got.text[:300]}")
                    results.append({"workload": name, "scale": scale, "failed": body.get("errors", [{}])[0]})
                    continue
                items = next(iter(body["data"].values()))["totalCount"]
                measure([contender], WARMUPS, 0)
                load = os.getloadavg()
                before = cpu_seconds(hub.process.pid)
                (timings,) = measure([contender], 0, runs)
                cpu = (cpu_seconds(hub.process.pid) - before) / runs * 1000
                results.append(
                    {
                        "workload": name,
                        "scale": scale,
                        "items": items,
                        "median_ms": timings.median_ms,
                        "min_ms": timings.min_ms,
                        "max_ms": timings.max_ms,
                        "cpu_ms": cpu,
                        "load": load,
                    }
                )
                say(f"{name}: {items} items, median {timings.median_ms:.1f} ms")
        finally:
            stop(hub)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    rows = run(args.scale, args.runs)
    print(f"| workload (scale {args.scale}) | items | median ms (min-max) | hub CPU ms/request | load (1, 5, 15 min) |")
    print("|---|---|---|---|---|")
    for r in rows:
        if "failed" in r:
            code = r["failed"].get("extensions", {}).get("code")
            print(f"| {r['workload']} | - | {code}: {r['failed'].get('message', '')} | - | - |")
            continue
        load = ", ".join(f"{x:.2f}" for x in r["load"])
        print(
            f"| {r['workload']} | {r['items']} | {r['median_ms']:.1f} ({r['min_ms']:.1f}-{r['max_ms']:.1f}) "
            f"| {r['cpu_ms']:.1f} | {load} |"
        )


if __name__ == "__main__":
    main()
