"""Workload W6-quota: what the lookup quota's counter costs on W6's kind of request.

One person by key (`populationPerson(key:)`), asked by a health app, to which the person's ID
number is masked but searchable: every request supplies one identifier value the quota counts.
Two hubs serve the same data from the same hub database: one with the counter on and the
department apps' quota raised above the run's key count (so no request is refused), one with
the counter off (HUB_LOOKUP_QUOTA=off, a bench-only setting). wrk drives both, 32 clients, in
alternating runs, so a slow spell of the machine falls on both alike; the ratio is the counted
hub's median requests per second over the uncounted one's. Beside it, each timed run reads each
hub process's CPU time (/proc/PID/stat): the counted hub's CPU per request over the other's, a
measure that holds on a machine shared with other work, where requests per second swing.

Each key is new to the counter on its first request only, which counts it in the hub database;
every later request finds its value in the instance's cache of the window. So before wrk, both
hubs are sent every key once, one request at a time (the priming pass, timed on its own: what the
first sight of a value costs), and the timed runs measure the counter as it runs all hour.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL

from bench.load_report import _series
from bench.load_wrk import WrkRun, WrkSeries, WrkTarget
from bench.servers import Server
from bench.w1 import Mismatch
from hub.db.engine import hub_engine

FIELD = "populationPerson"
QUERY = f"query PersonByKey($key: ID!) {{ {FIELD}(key: $key) {{ idNumber name gender birthDate districtCode }} }}"
KEYS = 1_000
SAMPLE_EVERY = 40
CONNECTIONS = 32
THREADS = 1
# Timed rounds: each one run of each hub, the first alternating.
RUNS = 10
WARMUPS = 1

HEALTH_APP = ("bench-health", "health", ("department_app",))
PURPOSE = "health_care"
# An app that reads the registry's persons plain: it lists the keys W6-quota asks for.
REGISTRY_APP = ("bench-registry", "population", ("department_app",))

COUNTED_ENV = {"HUB_LOOKUP_QUOTA": "on", "HUB_LOOKUP_QUOTAS": "department_app=100000"}
UNCOUNTED_ENV = {"HUB_LOOKUP_QUOTA": "off"}
NAMES = ("hub, lookups counted", "hub, counter off")


def person_ids(hub_url: str, registry_token: str, count: int = KEYS) -> list[str]:
    """`count` registered ID numbers, evenly spread over the first 10,000 persons in key order,
    as the registry's own app reads them (plain)."""
    query = "{ populationPersons(first: 10000) { nodes { idNumber } } }"
    headers = {"Authorization": f"Bearer {registry_token}"}
    with httpx.Client(base_url=hub_url, trust_env=False, timeout=60) as client:
        body = client.post("/graphql", json={"query": query}, headers=headers).json()
    if body.get("errors"):
        raise Mismatch(f"the registry app could not list persons: {body['errors']}")
    ids = [str(n["idNumber"]) for n in body["data"]["populationPersons"]["nodes"]]
    if len(ids) < count:
        raise Mismatch(f"the bench database holds {len(ids)} persons, fewer than W6-quota's {count} keys")
    return [ids[i * len(ids) // count] for i in range(count)]


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Hub-Purpose": PURPOSE, "Content-Type": "application/json"}


def _body(key: str) -> dict[str, Any]:
    return {"query": QUERY, "variables": {"key": key}}


def targets(counted: Server, uncounted: Server, token: str, keys: Sequence[str]) -> list[WrkTarget]:
    """The two hubs as wrk's targets, each naming its process, whose CPU time each run reads."""
    requests = [("/graphql", orjson.dumps(_body(k)).decode()) for k in keys]
    headers = _headers(token)
    return [
        WrkTarget(NAMES[0], counted.base_url, "POST", requests, headers, counted.process.pid),
        WrkTarget(NAMES[1], uncounted.base_url, "POST", requests, headers, uncounted.process.pid),
    ]


def prime(base_url: str, token: str, keys: Sequence[str]) -> float:
    """Send every key once, one request at a time; the mean milliseconds per request."""
    headers = _headers(token)
    with httpx.Client(base_url=base_url, trust_env=False, timeout=30) as client:
        began = time.perf_counter()
        for key in keys:
            response = client.post("/graphql", json=_body(key), headers=headers)
            if response.status_code != 200:
                raise Mismatch(f"{base_url} answered {response.status_code} for key {key}: {response.text[:500]}")
        return (time.perf_counter() - began) * 1000 / len(keys)


async def counted_values(database_url: URL, principal: str = HEALTH_APP[0]) -> int:
    """The values counted for `principal` in the hub database, over all windows."""
    engine = hub_engine(database_url)
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(
                sa.text("SELECT coalesce(sum(count), 0) FROM hub_lookup_window WHERE principal = :p"),
                {"p": principal},
            )
            return int(found or 0)
    finally:
        await engine.dispose()


def verify(counted_url: str, uncounted_url: str, token: str, keys: Sequence[str]) -> dict[str, Any]:
    """Both hubs send the same data for every SAMPLE_EVERY-th key: the person, ID number masked,
    and no errors. Returns the keys checked."""
    sample = list(keys[::SAMPLE_EVERY])
    headers = _headers(token)
    with (
        httpx.Client(base_url=counted_url, trust_env=False, timeout=30) as counted,
        httpx.Client(base_url=uncounted_url, trust_env=False, timeout=30) as uncounted,
    ):
        for key in sample:
            one, other = (c.post("/graphql", json=_body(key), headers=headers) for c in (counted, uncounted))
            for name, response in zip(NAMES, (one, other), strict=True):
                if response.status_code != 200 or response.json().get("errors"):
                    raise Mismatch(f"{name} answered {response.status_code} for key {key}: {response.text[:500]}")
            record = one.json()["data"][FIELD]
            if record is None or record["idNumber"] == key or "*" not in record["idNumber"]:
                raise Mismatch(f"{NAMES[0]} sent {record!r} for key {key}, not the person with the ID masked")
            if one.json()["data"] != other.json()["data"]:
                raise Mismatch(f"the two hubs send different data for key {key}")
    return {"keys": sample}


# The target (issue 11): the counter costs under 3% of the requests per second.
TARGET_COST = 0.03


def report(
    counted: WrkSeries, uncounted: WrkSeries, header: list[str], setup: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The printed table and the JSON record of one W6-quota run."""
    ratio = counted.rps[0] / uncounted.rps[0]
    # The same ratio round by round (the runs of a round are back to back): drift cancels.
    paired = sorted(a.rps / b.rps for a, b in zip(counted.runs, uncounted.runs, strict=True))
    cpu = [_cpu(s) for s in (counted, uncounted)]
    cpu_ratio = cpu[0][0] / cpu[1][0]
    # CPU per request is a cost, so its ratio reads the other way round: above 1 costs.
    cpu_paired = sorted(_cpu_run(a) / _cpu_run(b) for a, b in zip(counted.runs, uncounted.runs, strict=True))
    width = max(len(s.name) for s in (counted, uncounted))
    lines = [
        "W6-quota: one population person by key as the health app (ID masked, lookup counted), "
        f"{CONNECTIONS} concurrent clients",
        *header,
        "",
        f"{'contender':<{width}}  {'req/s median (min-max)':>24}  {'p50 ms':>7}  {'p99 ms':>7}  "
        f"{'CPU µs/request median (min-max)':>32}",
    ]
    for s, used in zip((counted, uncounted), cpu, strict=True):
        median, low, high = s.rps
        span = f"{median:,.0f} ({low:,.0f}-{high:,.0f})"
        cpu_span = f"{used[0]:.0f} ({used[1]:.0f}-{used[2]:.0f})"
        lines.append(
            f"{s.name:<{width}}  {span:>24}  {s.latency_ms('p50'):>7.1f}  {s.latency_ms('p99'):>7.1f}  {cpu_span:>32}"
        )
    cost = 1 - ratio
    cpu_cost = cpu_ratio - 1
    lines += [
        "",
        f"req/s: counted / counter off = {ratio:.3f} (median of runs); per round: median "
        f"{statistics.median(paired):.3f}, range {paired[0]:.3f}-{paired[-1]:.3f}",
        f"CPU per request: counted / counter off = {cpu_ratio:.3f} (medians); per round: median "
        f"{statistics.median(cpu_paired):.3f}, range {cpu_paired[0]:.3f}-{cpu_paired[-1]:.3f}",
        f"the counter's cost: {cost * 100:.1f}% of req/s ({_verdict(cost)}), {cpu_cost * 100:+.1f}% CPU per request "
        f"({_verdict(cpu_cost)}; target under {TARGET_COST * 100:.0f}%)",
        "load average (1, 5, 15 min) around the timed runs: before "
        + "/".join(f"{x:.2f}" for x in setup["load_average"]["before"])
        + ", after "
        + "/".join(f"{x:.2f}" for x in setup["load_average"]["after"]),
        f"counted in the hub database: {setup['counted_after']:,} values for {setup['keys']:,} keys "
        "(each once, however often it was asked)",
        f"priming pass (every key once, sequential; the counted hub writes each to its SQLite hub database): "
        f"{setup['prime_ms'][0]:.2f} ms a request counted, {setup['prime_ms'][1]:.2f} ms with the counter off",
    ]
    record = {
        "workload": "W6-quota",
        "query": QUERY,
        "counted": _series(counted),
        "uncounted": _series(uncounted),
        "ratio": ratio,
        "ratio_per_round": paired,
        "cpu_ratio": cpu_ratio,
        "cpu_ratio_per_round": cpu_paired,
        "target_cost": TARGET_COST,
        **setup,
    }
    return "\n".join(lines), record


def _verdict(cost: float) -> str:
    return "met" if cost < TARGET_COST else "NOT met"


def _cpu(series: WrkSeries) -> tuple[float, float, float]:
    found = series.cpu_us
    if found is None:
        raise Mismatch(f"{series.name}: its runs did not read the hub process's CPU time")
    return found


def _cpu_run(run: WrkRun) -> float:
    found = run.cpu_us_per_request
    if found is None:
        raise Mismatch("a run did not read the hub process's CPU time")
    return found
