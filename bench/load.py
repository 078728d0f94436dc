"""Load: 100 concurrent clients on a mixed read workload, all departments up, then one down
(issue 13's number).

    .venv/bin/python -m bench.load [--clients 100] [--seconds 60] [--rounds 3] [--warmup 10]
                                   [--down finance] [--port N]

Serves the bench database on PostgreSQL with `hub serve` in its own process (one uvicorn
worker, as deployed), one department (`--down`, finance by default) reached through a TCP proxy
in a third process (bench/load_proxy.py). From this process, `--clients` clients send the mix
of bench/load_client.py, closed loop, for `--warmup` seconds (not counted), then in each of
`--rounds` rounds: `--seconds / --rounds` with all departments up, then as long right after
the proxy has cut the department (reset every connection, closed each new one on arrival): the
hub sees a real outage, and each slice down includes the moments before its breaker opens.
Then the proxy relays again and the run waits until the department is served again. Phases
alternate so that a machine shared with other work weighs on both alike.

It prints, per kind of request and phase, requests, outcomes (ok, DEPARTMENT_UNAVAILABLE,
failed), requests per second, p50, p95, p99 and max latency, and the targets (see
bench/load_stats.py's `judge`). It also gives this client's own CPU (it shares the machine's
cores with the hub and PostgreSQL), the hub's CPU per request and its time runnable but waiting
for a CPU, and the load average. Per-caller rate and concurrency limits are lifted for the run
(bench/hub_setup.py's `hub_env`); everything else is the hub's default (breaker: 5 failures,
10 s cooldown; 5 connections per department). Writes bench/results/load-<UTC>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from bench import load_client
from bench.database import HOST as PG_HOST
from bench.database import PORT as PG_PORT
from bench.database import bench_url
from bench.hub_setup import prepare_hub, register_app
from bench.load_proxy import Proxy
from bench.load_stats import KindSummary, Outcome, Sample, classify, judge, percentile, summarise, table, verdict_lines
from bench.machine import revision
from bench.run import REPO, RESULTS, _hub_env, _hub_serve, _show_logs, prepare_database, say
from bench.servers import Server, ServerError, start, stop, wait_ready
from bench.w1 import Mismatch
from bench.w2 import cpu_seconds

PROXIED_URL_ENV = "HUB_LOAD_PROXIED_URL"
RECOVERY_TIMEOUT_S = 60.0
# The first seconds after the cut, reported apart: the breaker opens after 5 failed reads.
ONSET_S = 2.0


def _route_through(manifests: Path, department: str) -> None:
    """Point `department`'s manifest at the proxy's URL, read from PROXIED_URL_ENV."""
    path = manifests / f"{department}.yaml"
    if not path.exists():
        raise SystemExit(f"no manifest for department {department!r} in the demo")
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["connection"]["url_env"] = PROXIED_URL_ENV
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _check(base_url: str, token: str, work: load_client.Workload) -> None:
    """The first request of each kind answers data without an error before anything is timed."""
    with httpx.Client(base_url=base_url, headers=load_client.headers(token), timeout=30, trust_env=False) as http:
        for kind, bodies in work.bodies.items():
            response = http.post("/graphql", content=bodies[0])
            body = response.json()
            found = next(iter((body.get("data") or {}).values()), None)
            if classify(response.status_code, body) is not Outcome.OK or not found:
                raise Mismatch(f"{kind}: the hub answered {response.status_code}: {response.text[:500]}")
            if isinstance(found, dict) and "nodes" in found and len(found["nodes"]) != load_client.ROWS:
                raise Mismatch(f"{kind}: {len(found['nodes'])} nodes, not {load_client.ROWS}")


def _department_state(base_url: str, department: str) -> str:
    response = httpx.get(f"{base_url}/readyz", timeout=10, trust_env=False)
    state = response.json().get("departments", {}).get(department, {})
    return f"{state.get('state')}, circuit {state.get('circuit')}"


def _wait_recovered(base_url: str, token: str, body: bytes) -> float:
    """Seconds until a request reading the department is answered in full again."""
    began = time.monotonic()
    with httpx.Client(base_url=base_url, headers=load_client.headers(token), timeout=30, trust_env=False) as http:
        while time.monotonic() - began < RECOVERY_TIMEOUT_S:
            response = http.post("/graphql", content=body)
            if classify(response.status_code, response.json()) is Outcome.OK:
                return time.monotonic() - began
            time.sleep(0.25)
    raise Mismatch(f"the department was not served again within {RECOVERY_TIMEOUT_S:.0f} s of the proxy's return")


def _waited_s(pid: int) -> float:
    """Seconds process `pid` has spent runnable but waiting for a CPU (Linux schedstat): on a
    shared machine, what tells a hub starved of CPU from one waiting on its databases."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


@dataclass
class Phase:
    """One phase (all up, or one department down) over every round."""

    title: str
    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0
    client_cpu_s: float = 0.0
    hub_cpu_s: float = 0.0
    hub_waited_s: float = 0.0
    loads: list[float] = field(default_factory=list)  # the 1-minute load average before each slice

    def measure(self, hub: Server, token: str, work: load_client.Workload, clients: int, seconds: float) -> None:
        """One slice of the phase: `seconds` of load, added to what the phase holds."""
        self.loads.append(os.getloadavg()[0])
        cpu, waited = cpu_seconds(hub.process.pid), _waited_s(hub.process.pid)
        run = load_client.run(hub.base_url, token, work, clients, seconds)
        self.hub_cpu_s += cpu_seconds(hub.process.pid) - cpu
        self.hub_waited_s += _waited_s(hub.process.pid) - waited
        self.samples += run.samples
        self.seconds += run.seconds
        self.client_cpu_s += run.client_cpu_s

    def rows(self) -> list[KindSummary]:
        return summarise(self.samples, self.seconds, load_client.KINDS)

    def text(self) -> str:
        total = len(self.samples)
        return "\n".join(
            [
                table(self.title, self.rows()),
                f"  this client: {self.client_cpu_s:.1f} s of CPU in {self.seconds:.1f} s "
                f"({self.client_cpu_s / self.seconds:.0%} of a core, {1e6 * self.client_cpu_s / total:.0f} µs a "
                f"request); the hub: {self.hub_cpu_s:.1f} s ({self.hub_cpu_s / self.seconds:.0%} of a core, "
                f"{1e6 * self.hub_cpu_s / total:.0f} µs a request), and {self.hub_waited_s:.1f} s runnable "
                "but waiting for a CPU",
                "  load average (1 min) before each slice: " + ", ".join(f"{load:.2f}" for load in self.loads),
            ]
        )

    def onset(self, kinds: Sequence[str], seconds: float = ONSET_S) -> str:
        """The p99 of `kinds` sent in each slice's first `seconds` (the department just cut, its
        breaker not yet open) and after."""
        early = sorted(s.latency_ms for s in self.samples if s.kind in kinds and s.at_s < seconds)
        late = sorted(s.latency_ms for s in self.samples if s.kind in kinds and s.at_s >= seconds)
        return (
            f"  {', '.join(kinds)}: in each slice's first {seconds:g} s {len(early):,} requests, p50 "
            f"{percentile(early, 50):.1f} ms, p99 {percentile(early, 99):.1f} ms; after, {len(late):,}, p50 "
            f"{percentile(late, 50):.1f} ms, p99 {percentile(late, 99):.1f} ms"
        )

    def record(self) -> dict[str, Any]:
        return {
            "rows": [r.as_dict() for r in self.rows()],
            "seconds": self.seconds,
            "client_cpu_s": self.client_cpu_s,
            "hub_cpu_s": self.hub_cpu_s,
            "hub_waited_s": self.hub_waited_s,
            "loads": self.loads,
        }


def run(clients: int, seconds: float, rounds: int, warmup: float, down: str, hub_port: int, proxy_port: int) -> int:
    started = datetime.now(UTC)
    touching = [kind for kind, reads in load_client.READS.items() if down in reads]
    prepare_database()
    work = asyncio.run(load_client.workload(bench_url()))
    servers: list[Server] = []
    proxy: Proxy | None = None
    up, cut = Phase("all departments up"), Phase(f"{down} down (cut at the proxy at the start of each slice)")
    states: list[str] = []
    recoveries: list[float] = []
    piece = seconds / rounds
    with tempfile.TemporaryDirectory(prefix="hub-bench-load-") as tmp:
        folder = Path(tmp)
        try:
            manifests, database_url = prepare_hub(folder)
            _route_through(manifests, down)
            token = asyncio.run(register_app(database_url))
            proxy = Proxy(proxy_port, (PG_HOST, PG_PORT))
            env = {
                **_hub_env(manifests, database_url),
                PROXIED_URL_ENV: bench_url().set(port=proxy_port).render_as_string(hide_password=False),
            }
            hub = start("hub", _hub_serve(), env, folder / "hub.log", REPO, port=hub_port)
            servers.append(hub)
            wait_ready(hub, "/healthz")
            _check(hub.base_url, token, work)
            say(f"load: {clients} clients, closed loop: {warmup:g} s of warm-up")
            load_client.run(hub.base_url, token, work, clients, warmup)
            for number in range(rounds):
                say(f"load: round {number + 1}/{rounds}: {piece:g} s all up, then {piece:g} s with {down} cut")
                up.measure(hub, token, work, clients, piece)
                proxy.drop()
                cut.measure(hub, token, work, clients, piece)
                states.append(_department_state(hub.base_url, down))
                proxy.restore()
                if touching:
                    recoveries.append(_wait_recovered(hub.base_url, token, work.bodies[touching[0]][0]))
        except (Mismatch, ServerError):
            _show_logs(servers)
            raise
        finally:
            for server in servers:
                stop(server)
            if proxy is not None:
                proxy.close()
    verdicts = judge(up.rows(), cut.rows(), touching)
    header = (
        f"Load: {clients} concurrent clients, closed loop, mix {load_client.MIX} (lists of {load_client.ROWS}); "
        f"{started:%Y-%m-%d %H:%M} UTC, hub {revision(REPO)}; {warmup:g} s warm-up, then {rounds} rounds of "
        f"{piece:g} s all up and {piece:g} s with {down} down ({seconds:g} s per phase)"
    )
    text = "\n\n".join(
        [
            header,
            up.text(),
            cut.text() + ("\n" + cut.onset(touching) if touching else ""),
            f"/readyz for {down} at the end of each slice down: {'; '.join(states)}\n"
            f"served again after the proxy relayed again: {', '.join(f'{r:.1f}' for r in recoveries)} s\n"
            f"targets with {down} down:\n{verdict_lines(verdicts)}",
        ]
    )
    print(text, flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {
        "workload": "load",
        "started": started.isoformat(),
        "revision": revision(REPO),
        "clients": clients,
        "seconds": seconds,
        "rounds": rounds,
        "warmup": warmup,
        "down": down,
        "mix": load_client.MIX,
        "phases": {"up": up.record(), "down": cut.record()},
        "readyz_down": states,
        "recovered_s": recoveries,
        "verdicts": [v.__dict__ for v in verdicts],
    }
    path = RESULTS / f"load-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    say(f"wrote {path.relative_to(REPO)}")
    return 0 if all(v.met for v in verdicts) else 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0, help="of each phase, over all rounds (default: 60)")
    parser.add_argument("--rounds", type=int, default=3, help="up and down phases alternate this often (default: 3)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of load before the first phase")
    parser.add_argument("--down", default="finance", help="the department taken down (default: finance)")
    parser.add_argument("--port", type=int, default=0, help="the hub's port (default: one the kernel picks)")
    parser.add_argument("--proxy-port", type=int, default=0, help="the proxy's port (default: the hub's + 1)")
    args = parser.parse_args(argv)
    from bench.servers import free_port

    hub_port = args.port or free_port()
    proxy_port = args.proxy_port or (hub_port + 1 if args.port else free_port())
    try:
        return run(args.clients, args.seconds, args.rounds, args.warmup, args.down, hub_port, proxy_port)
    except (Mismatch, ServerError) as error:
        say(f"error: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
