"""The lineage workloads: traces over HTTP on the PostgreSQL copy of the demo.

`.venv/bin/python -m bench.lineage [--scale N] [--runs R]` from the repository root.

Two traces, asked by the demo's auditor (role `auditor`, purpose `audit`), each selecting per
node its `ref`, per edge its kind and ends, and per record its key and three fields:

- `budget-line-down`: 4 hops DOWNSTREAM from budget line BL2026-CA-01 (its expenditures, the
  deliveries they paid, then the cases, persons, requests and feedback behind those), maxNodes
  10,000. Budget lines are shared by every copy of a scaled demo, so this trace's nodes grow
  with `--scale`.
- `request-up`: 3 hops UPSTREAM from the first answered request (its deliveries, their
  expenditures, the budget lines): the same few nodes at every scale, so its time shows what the size of the
  databases alone costs a trace.

Three warm-ups, then `--runs` timed requests (default 15): median, min and max; the hub's CPU
time per request (from /proc) and the load average beside them. The data: database
`bench_lineage` (scale 1) or `bench_lineage_x<N>`, loaded if missing, under keys of its own
(~/.cache/hub-bench-lineage).
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

from bench.aggregates import cpu_seconds, ensure_scaled_data
from bench.database import bench_url
from bench.hub_setup import URL_ENV, hub_env, prepare_hub, register_app
from bench.measure import Contender, measure
from bench.servers import HOST, Server, start, stop, wait_ready
from hub.demo.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent
DATABASE = "bench_lineage"
KEYS = Workspace(Path.home() / ".cache" / "hub-bench-lineage")
WARMUPS = 3
CALLER = ("lineage-bench", "audit", ("auditor",))
LINE = "finance:BudgetLine:BL2026-CA-01"

TRACE = """query Trace($from: String!, $direction: TraceDirection!, $depth: Int!) {
  trace(from: $from, direction: $direction, depth: $depth, maxNodes: 10000) {
    truncated
    nodes { ref record {
      ... on FinanceBudgetLine { lineId program fiscalYear approvedAt }
      ... on FinanceExpenditure { expenditureId amount paidAt purpose }
      ... on CivilAffairsServiceDelivery { deliveryId serviceType deliveredAt status }
      ... on HumanResourcesServiceDelivery { deliveryId serviceType deliveredAt status }
      ... on EducationServiceDelivery { deliveryId serviceType deliveredAt status }
      ... on CivilAffairsAssistanceCase { caseId assistanceType startDate districtCode }
      ... on HotlineRequest { requestId category receivedAt channel }
      ... on HotlineFeedback { feedbackId satisfaction submittedAt deliveryRef }
      ... on PopulationPerson { idNumber name birthDate householdId } } }
    edges { kind from to } } }"""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def answered_request(http: httpx.Client, url: str, headers: dict[str, str]) -> str:
    """The first request (in key order: the same at every scale) that a delivery answered."""
    query = "{ hotlineRequests(first: 1, filter: {civilAffairsDeliveries: {some: {}}}) { nodes { ref } } }"
    answer = http.post(url, headers=headers, json={"query": query}).json()
    return str(answer["data"]["hotlineRequests"]["nodes"][0]["ref"])


def run(scale: int, runs: int) -> list[dict[str, Any]]:
    url = bench_url(DATABASE if scale == 1 else f"{DATABASE}_x{scale}")
    ensure_scaled_data(url, scale, KEYS)
    servers: list[Server] = []
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-lineage-") as tmp:
        folder = Path(tmp)
        try:
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
            servers.append(hub)
            wait_ready(hub, "/healthz")
            headers = {"Authorization": f"Bearer {token}", "X-Hub-Purpose": "audit"}
            endpoint = f"{hub.base_url}/graphql"
            with httpx.Client(trust_env=False, timeout=120) as http:
                request = answered_request(http, endpoint, headers)
                workloads = {
                    "budget-line-down": {"from": LINE, "direction": "DOWNSTREAM", "depth": 4},
                    "request-up": {"from": request, "direction": "UPSTREAM", "depth": 3},
                }
                for name, variables in workloads.items():
                    body = {"query": TRACE, "variables": variables}
                    got = http.post(endpoint, headers=headers, json=body).json()
                    if got.get("data", {}).get("trace") is None:
                        raise RuntimeError(f"the hub failed {name}: {str(got)[:500]}")
                    found = got["data"]["trace"]
                    nodes, edges = len(found["nodes"]), len(found["edges"])
                    say(f"{name}: {nodes} nodes, {edges} edges; {WARMUPS} warm-ups then {runs} runs")
                    contender = Contender("hub", "POST", endpoint, headers, body)
                    measure([contender], WARMUPS, 0)
                    load_before = os.getloadavg()
                    cpu_before = cpu_seconds(hub.process.pid)
                    (timed,) = measure([contender], 0, runs)
                    cpu_after = cpu_seconds(hub.process.pid)
                    results.append(
                        {
                            "workload": name,
                            "scale": scale,
                            "nodes": nodes,
                            "edges": edges,
                            "truncated": found["truncated"],
                            "runs": runs,
                            "ms": {"median": timed.median_ms, "min": timed.min_ms, "max": timed.max_ms},
                            "cpu_ms_per_request": (cpu_after - cpu_before) * 1000 / runs,
                            "body_bytes": timed.body_bytes,
                            "loadavg": {"before": load_before, "after": os.getloadavg()},
                        }
                    )
        finally:
            for server in reversed(servers):
                stop(server)
    return results


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| workload | scale | nodes | edges | ms median (min-max) | hub CPU ms/request | load avg (1 min) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r["ms"]
        lines.append(
            f"| {r['workload']} | {r['scale']} | {r['nodes']}{' (cut)' if r['truncated'] else ''} | {r['edges']} "
            f"| {m['median']:.1f} ({m['min']:.1f}-{m['max']:.1f}) | {r['cpu_ms_per_request']:.1f} "
            f"| {r['loadavg']['before'][0]:.2f} -> {r['loadavg']['after'][0]:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1, help="the demo's scale (every department N times over)")
    parser.add_argument("--runs", type=int, default=15, help="timed requests per workload")
    args = parser.parse_args()
    results = run(args.scale, args.runs)
    print(table(results))
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
