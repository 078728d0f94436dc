"""Fairness (issue 13): other callers' lookups by key while the heaviest allowed request runs.

A client process sends one lookup by key every 100 ms, as `civil-affairs-app` (one service
delivery of civil affairs by its key, the department and table the heavy request reads), open
loop: each lookup is sent at its time whether or not the one before has been answered, and its
latency counts from that time, so a stalled hub cannot hide behind a client that waited too.
Each round has two phases of `--seconds` each: lookups alone ("quiet"), then lookups while a
second process sends the heavy request back to back as the auditor ("heavy"). It prints p50,
p99 and the slowest lookup of each phase over all rounds, and the heavy requests' times.

The heavy request is the heaviest the hub's bounds answer (bench/heavy_request.py): by default
eight aliases of 10,000 service deliveries by all 12 fields (960,000 values, 26.8 MB; the value
budget is one million), or `--heavy widest` (every district, a hundred residents each, and
under each resident its district's residents twice: 11.7 MB). The run stops if the hub refuses
it: a bound changed, and the query must follow.

    .venv/bin/python -m bench.fairness [--database sqlite|postgresql] [--hub-database sqlite|postgresql]
        [--rounds 3] [--seconds 20]

`--database sqlite` (the default) serves `hub demo` over its SQLite departments (made on the
first run in `--data-dir`, about a minute); `postgresql` serves `hub serve` over the bench
database at 127.0.0.1:5432 (loaded as for W1), with the hub's own database (its access trail
among it) on SQLite or, with `--hub-database postgresql`, in a fresh PostgreSQL database
`hub_bench_fairness` (HUB_TEST_DB_SUFFIX appended), as in production. `--base-url URL --tokens FILE` measures a hub
already running instead (a token file as `hub demo` writes it). Target (issue 13): p99 under
100 ms while the heavy request runs. Writes `bench/results/fairness-<UTC>.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.heavy_request import WIDE_LISTS, WIDEST_ALLOWED

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
HEAVY = {"wide lists": WIDE_LISTS, "widest": WIDEST_ALLOWED}
LOOKUP = "query ($key: ID!) { civilAffairsServiceDelivery(key: $key) { deliveryId serviceType amount status } }"
LOOKUP_CALLER, LOOKUP_PURPOSE = "civil-affairs-app", "social_assistance"
HEAVY_CALLER, HEAVY_PURPOSE = "auditor", "audit"
# Service deliveries CASD000001 ... CASD010000 exist in the demo data; lookups walk them.
KEYS = 10_000
PERIOD_S = 0.1


@dataclass
class Phase:
    name: str
    latencies_ms: list[float]
    heavy_seconds: list[float]

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _lookups(base: str, token: str, seconds: float, first_key: int) -> list[float]:
    """One lookup every PERIOD_S for `seconds`, each sent on its own schedule (open loop)."""
    headers = {"Authorization": f"Bearer {token}", "X-Hub-Purpose": LOOKUP_PURPOSE}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits, trust_env=False) as client:
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def one(n: int) -> float:
            due = start + n * PERIOD_S
            await asyncio.sleep(max(0.0, due - loop.time()))
            key = f"CASD{(first_key + n) % KEYS + 1:06d}"
            response = await client.post("/graphql", json={"query": LOOKUP, "variables": {"key": key}})
            # From when it was due: a lookup sent late because the client waited counts too.
            latency = loop.time() - due
            body = response.json()
            if response.status_code != 200 or body.get("errors") or not body["data"]["civilAffairsServiceDelivery"]:
                raise SystemExit(f"the lookup of {key} failed: {response.status_code} {response.text[:300]}")
            return latency * 1000

        return list(await asyncio.gather(*(one(n) for n in range(int(seconds / PERIOD_S)))))


def _heavy_loop(base: str, token: str, query: str, stop_at: float, out: multiprocessing.SimpleQueue[float]) -> None:
    """The heavy request back to back until `stop_at` (time.time()), in a process of its own:
    receiving 27 MB must not hold up the lookups' client."""
    headers = {"Authorization": f"Bearer {token}", "X-Hub-Purpose": HEAVY_PURPOSE}
    with httpx.Client(base_url=base, headers=headers, timeout=600, trust_env=False) as client:
        while time.time() < stop_at:
            began = time.perf_counter()
            response = client.post("/graphql", json={"query": query})
            if response.status_code != 200:
                raise SystemExit(f"the heavy request failed: {response.status_code} {response.text[:300]}")
            out.put(time.perf_counter() - began)


def _check_heavy(base: str, token: str, query: str) -> str:
    """The heavy request's answer, once: answered with data (not refused), and its size."""
    headers = {"Authorization": f"Bearer {token}", "X-Hub-Purpose": HEAVY_PURPOSE}
    response = httpx.post(f"{base}/graphql", json={"query": query}, headers=headers, timeout=600, trust_env=False)
    body = response.json()
    if response.status_code != 200 or body.get("data") is None:
        raise SystemExit(f"the hub refused the heavy request: {response.status_code} {response.text[:400]}")
    return f"answered, {len(response.content) / 1e6:.1f} MB"


def _phase(base: str, tokens: dict[str, str], query: str | None, seconds: float, first_key: int) -> Phase:
    if query is None:
        return Phase("quiet", asyncio.run(_lookups(base, tokens[LOOKUP_CALLER], seconds, first_key)), [])
    results: multiprocessing.SimpleQueue[float] = multiprocessing.SimpleQueue()
    # The heavy requests start a little before the lookups and end with them.
    heavy = multiprocessing.Process(
        target=_heavy_loop, args=(base, tokens[HEAVY_CALLER], query, time.time() + seconds + 0.5, results)
    )
    heavy.start()
    try:
        time.sleep(0.5)
        latencies = asyncio.run(_lookups(base, tokens[LOOKUP_CALLER], seconds, first_key))
    finally:
        heavy.join(timeout=600)
    times = []
    while not results.empty():
        times.append(results.get())
    return Phase("heavy", latencies, times)


@contextmanager
def _demo_hub(data_dir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    from bench.heavy_request import _start, _wait_ready
    from bench.servers import free_port

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # `hub demo` as bench/heavy_request.py starts it: the environment's HUB_* settings left out.
    process = _start(data_dir, port)
    try:
        _wait_ready(base, process)  # the first run makes the demo data (about a minute)
        yield base, json.loads((data_dir / "demo-tokens.json").read_text())
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def _running(base: str, tokens: Path) -> Iterator[tuple[str, dict[str, str]]]:
    yield base, json.loads(tokens.read_text())


@contextmanager
def postgresql_setup(hub_database: str, folder: Path) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """The environment `hub serve` needs to serve the bench database (the hub's own database
    on SQLite in `folder`, or fresh on PostgreSQL), and the callers' tokens. Also used by
    bench/loop_probe.py, which serves the same hub in its own process."""
    from bench.database import bench_url
    from bench.hub_setup import URL_ENV, hub_env, prepare_hub, register_app
    from bench.run import prepare_database

    prepare_database()
    own = None
    if hub_database == "postgresql":
        from tests.servers import fresh_database

        own = fresh_database("postgresql", "hub_bench_fairness")
    manifests, database_url = prepare_hub(folder, database_url=own)
    tokens = {
        HEAVY_CALLER: asyncio.run(register_app(database_url)),
        LOOKUP_CALLER: asyncio.run(register_app(database_url, "ca", "civil_affairs", ("department_app",))),
    }
    env = {
        "HUB_DATABASE_URL": database_url.render_as_string(hide_password=False),
        "HUB_MANIFESTS": str(manifests),
        URL_ENV: bench_url().render_as_string(hide_password=False),
        **hub_env(),
    }
    yield env, tokens


@contextmanager
def _postgresql_hub(hub_database: str) -> Iterator[tuple[str, dict[str, str]]]:
    from bench.servers import start, stop, wait_ready

    with (
        tempfile.TemporaryDirectory(prefix="hub-fairness-") as tmp,
        postgresql_setup(hub_database, Path(tmp)) as (env, tokens),
    ):
        command = [str(Path(sys.executable).with_name("hub")), "serve", "--port", "{port}"]
        server = start("hub serve", command, env, Path(tmp) / "hub.log", REPO)
        try:
            wait_ready(server, "/healthz")
            yield server.base_url, tokens
        finally:
            stop(server)


def _row(phase: Phase) -> str:
    heavy = ""
    if phase.heavy_seconds:
        heavy = f"  heavy requests: {len(phase.heavy_seconds)}, median {statistics.median(phase.heavy_seconds):.2f} s"
    return (
        f"{phase.name:<6} n={len(phase.latencies_ms):<5} p50 {phase.percentile(50):7.1f} ms   "
        f"p99 {phase.percentile(99):7.1f} ms   max {max(phase.latencies_ms):7.1f} ms{heavy}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--hub-database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="with --database postgresql: the hub's own database",
    )
    parser.add_argument("--heavy", choices=["wide lists", "widest"], default="wide lists")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0, help="of each phase, per round")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "hub-bench-demo")
    parser.add_argument("--base-url", help="measure the hub running here instead of starting one")
    parser.add_argument("--tokens", type=Path, help="with --base-url: the callers' tokens (demo-tokens.json)")
    args = parser.parse_args(argv)
    if (args.base_url is None) != (args.tokens is None):
        parser.error("--base-url and --tokens go together")
    query = HEAVY[args.heavy]
    if args.base_url is not None:
        hub = _running(args.base_url, args.tokens)
    else:
        hub = _demo_hub(args.data_dir.resolve()) if args.database == "sqlite" else _postgresql_hub(args.hub_database)
    started = datetime.now(UTC)
    with hub as (base, tokens):
        answer = _check_heavy(base, tokens[HEAVY_CALLER], query)
        print(f"heavy request ({args.heavy}): {answer}; {args.rounds} rounds of {args.seconds:.0f} s per phase")
        quiet, heavy = Phase("quiet", [], []), Phase("heavy", [], [])
        for round_ in range(args.rounds):
            for total, phase_query in ((quiet, None), (heavy, query)):
                phase = _phase(base, tokens, phase_query, args.seconds, round_ * 1000)
                print(f"round {round_ + 1}: {_row(phase)}")
                total.latencies_ms += phase.latencies_ms
                total.heavy_seconds += phase.heavy_seconds
    print("all rounds:")
    print(f"  {_row(quiet)}")
    print(f"  {_row(heavy)}")
    print(
        f"target: p99 under 100 ms while the heavy request runs: {'met' if heavy.percentile(99) < 100 else 'NOT met'}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {
        "started": started.isoformat(),
        "database": args.database if args.base_url is None else args.base_url,
        "hub_database": args.hub_database if args.database == "postgresql" else "sqlite",
        "heavy": args.heavy,
        "answer": answer,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "phases": [asdict(quiet), asdict(heavy)],
    }
    out = RESULTS / f"fairness-{started:%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(record))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
