"""W6-observe: what observability costs on W6 (issue 13's number: /metrics on and tracing off
cost under 5%).

`python -m bench.w6_observe --before DIR [--duration 5] [--rounds 6]`, where DIR is a checkout of
the code before observability (say `git worktree add --detach ../base 8473171`, main just before
the observe merge, then `make install` there): its own `.venv/bin/hub` serves the baseline.
Three hubs serve W6 from one hub database, one after the other under wrk (32 connections, 1,000
keys), in rounds whose order rotates so that a slow spell of the machine falls on all alike:

- **before**: DIR's hub;
- **after**: this tree's hub as deployed by default: metrics counted, the access log written
  (to its log file, as `hub serve` writes it to standard output), tracing off;
- **after, no access log**: the same with HUB_ACCESS_LOG=off, to tell the log's share.

Each is sent W6's operation as text (the normal path) and as a trusted document. Before timing,
every 40th key is checked to get the same data from all three. Two measures per run: requests per
second, and the hub process's CPU time per request (from /proc/PID/stat around the run). On a
machine shared with other work the first swings by half from run to run; the second holds within
a few percent, since other processes' load delays a request without making it cost more CPU. The
cost is the after/before ratio of the medians, also given round by round (where drift cancels).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import httpx
import orjson

from bench import w6
from bench.database import bench_url
from bench.hub_setup import prepare_hub, register_app
from bench.load_report import _machine, _path, _series
from bench.load_wrk import (
    LoadFailed,
    WrkRun,
    WrkSeries,
    WrkTarget,
    _requests_file,
    process_cpu_s,
    run_wrk,
    wrk_version,
)
from bench.machine import describe, revision
from bench.run import REPO, RESULTS, _hub_env, _hub_serve, _show_logs, prepare_database, say
from bench.servers import Server, ServerError, start, stop, wait_ready
from bench.w1 import Mismatch

TARGET_COST = 0.05
WARMUPS = 1  # per target, before the rounds
HUBS = ("before", "after", "after, no access log")
ADMIN = ("bench-monitor", "platform", ("admin",))


def _targets(hubs: dict[str, Server], token: str, document_id: str, keys: list[str]) -> list[WrkTarget]:
    headers = {"Authorization": f"Bearer {token}", "X-Hub-Purpose": w6.PURPOSE, "Content-Type": "application/json"}
    targets = []
    for label, server in hubs.items():
        for kind, body in (("text", None), ("trusted", document_id)):
            requests = [("/graphql", orjson.dumps(w6._hub_body(k, body)).decode()) for k in keys]
            targets.append(WrkTarget(f"{label} ({kind})", server.base_url, "POST", requests, headers))
    return targets


def _check(hubs: dict[str, Server], token: str, document_id: str, keys: list[str]) -> None:
    """Every 40th key: the same data, without errors, from every hub, as text and as document."""
    headers = {"Authorization": f"Bearer {token}", "X-Hub-Purpose": w6.PURPOSE}
    with httpx.Client(trust_env=False, timeout=30) as client:
        for key in keys[:: w6.SAMPLE_EVERY]:
            answers = []
            for server in hubs.values():
                for body in (w6._hub_body(key, None), w6._hub_body(key, document_id)):
                    response = client.post(f"{server.base_url}/graphql", json=body, headers=headers)
                    found = response.json()
                    if response.status_code != 200 or found.get("errors"):
                        raise Mismatch(f"{server.name} answered {response.status_code}: {response.text[:500]}")
                    answers.append(found["data"])
            if any(a != answers[0] for a in answers) or answers[0][w6.FIELD]["deliveryId"] != key:
                raise Mismatch(f"the hubs send different data for key {key}")


def _measure(
    targets: list[WrkTarget], pids: dict[str, int], rounds: int, duration_s: float
) -> tuple[list[WrkSeries], dict[str, list[float]]]:
    """One warm-up run of each target, then `rounds` rounds of one run each, the first rotating;
    each run's requests per second, and its hub's CPU µs per request."""
    cpu: dict[str, list[float]] = {t.name: [] for t in targets}
    runs: dict[str, list[WrkRun]] = {t.name: [] for t in targets}
    with tempfile.TemporaryDirectory(prefix="hub-bench-wrk-") as tmp:
        files = {t.name: _requests_file(Path(tmp), i, t) for i, t in enumerate(targets)}
        for target in targets:
            run_wrk(target, files[target.name], duration_s, w6.CONNECTIONS, w6.THREADS, 5.0)
        for number in range(rounds):
            shift = number % len(targets)
            for target in targets[shift:] + targets[:shift]:
                pid = pids[target.name]
                before = process_cpu_s(pid)
                run = run_wrk(target, files[target.name], duration_s, w6.CONNECTIONS, w6.THREADS, 5.0)
                cpu[target.name].append(1e6 * (process_cpu_s(pid) - before) / run.requests)
                runs[target.name].append(run)
            say(
                f"W6-observe: round {number + 1}/{rounds}: req/s, CPU µs a request: "
                + ", ".join(f"{name} {r[-1].rps:,.0f} {cpu[name][-1]:.0f}" for name, r in runs.items())
            )
    return [WrkSeries(name, tuple(r)) for name, r in runs.items()], cpu


def _counted(server: Server, token: str) -> float:
    """hub_requests_total of `server`, from its /metrics."""
    with httpx.Client(trust_env=False, timeout=30) as client:
        page = client.get(f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {token}"}).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in page.splitlines() if line.startswith("hub_requests_total{"))


def _report(series: list[WrkSeries], cpu: dict[str, list[float]], header: list[str]) -> tuple[str, dict[str, object]]:
    by_name = {s.name: s for s in series}
    width = max(len(s.name) for s in series)
    lines = [
        "W6-observe: W6 (one service delivery by key, 32 clients) before and after observability",
        *header,
        "",
        f"{'contender':<{width}}  {'req/s median (min-max)':>24}  {'p50 ms':>7}  {'p99 ms':>7}  "
        f"{'CPU µs/request median (min-max)':>32}",
    ]
    for s in series:
        median, low, high = s.rps
        span = f"{median:,.0f} ({low:,.0f}-{high:,.0f})"
        used = cpu[s.name]
        cpu_span = f"{statistics.median(used):.0f} ({min(used):.0f}-{max(used):.0f})"
        lines.append(
            f"{s.name:<{width}}  {span:>24}  {s.latency_ms('p50'):>7.1f}  {s.latency_ms('p99'):>7.1f}  {cpu_span:>32}"
        )
    lines.append("")
    costs: dict[str, object] = {}
    for kind in ("text", "trusted"):
        before = f"before ({kind})"
        for label in HUBS[1:]:
            after = f"{label} ({kind})"
            rps = by_name[after].rps[0] / by_name[before].rps[0]
            paired_rps = sorted(a.rps / b.rps for a, b in zip(by_name[after].runs, by_name[before].runs, strict=True))
            cpu_ratio = statistics.median(cpu[after]) / statistics.median(cpu[before])
            paired_cpu = sorted(a / b for a, b in zip(cpu[after], cpu[before], strict=True))
            verdict = "met" if cpu_ratio - 1 < TARGET_COST else "NOT met"
            lines.append(
                f"{label} / before, {kind}: CPU per request {(cpu_ratio - 1) * 100:+.1f}% (medians; per round "
                f"median {(statistics.median(paired_cpu) - 1) * 100:+.1f}%), target under +{TARGET_COST * 100:.0f}%: "
                f"{verdict}; req/s {(rps - 1) * 100:+.1f}% (per round median "
                f"{(statistics.median(paired_rps) - 1) * 100:+.1f}%, range {(paired_rps[0] - 1) * 100:+.0f}% to "
                f"{(paired_rps[-1] - 1) * 100:+.0f}%)"
            )
            costs[after] = {
                "cpu_ratio": cpu_ratio,
                "cpu_per_round": paired_cpu,
                "rps_ratio": rps,
                "rps_per_round": paired_rps,
            }
    record = {"series": [_series(s) for s in series], "cpu_us_per_request": cpu, "costs": costs}
    return "\n".join(lines), record


def run(before: Path, duration_s: float, rounds: int) -> int:
    before_hub = before / ".venv" / "bin" / "hub"
    if not before_hub.exists():
        say(f"error: {before_hub} is missing: run `make install` in {before}")
        return 1
    started = datetime.now().astimezone()
    wrk = wrk_version()
    code = revision(REPO)
    prepare_database()
    machine = asyncio.run(describe(bench_url()))
    keys = asyncio.run(w6.delivery_ids(bench_url()))
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        folder = Path(tmp)
        try:
            manifests, database_url = prepare_hub(folder)
            token = asyncio.run(register_app(database_url))
            admin = asyncio.run(register_app(database_url, *ADMIN))
            document_id = asyncio.run(w6.register_query(database_url, w6.QUERY))
            env = _hub_env(manifests, database_url)
            commands = {
                "before": ([str(before_hub), *_hub_serve()[1:]], env),
                "after": (_hub_serve(), env),
                "after, no access log": (_hub_serve(), {**env, "HUB_ACCESS_LOG": "off"}),
            }
            hubs: dict[str, Server] = {}
            for number, (label, (command, environ)) in enumerate(commands.items()):
                # One after the other: the first start seeds the policy into the new hub database.
                hubs[label] = start(label, command, environ, folder / f"hub-{number}.log", REPO)
                servers.append(hubs[label])
                wait_ready(hubs[label], "/healthz")
            say(f"W6-observe: checking all three send the same data (every {w6.SAMPLE_EVERY}th of {len(keys):,} keys)")
            _check(hubs, token, document_id, keys)
            say(f"W6-observe: wrk, {w6.CONNECTIONS} connections, {duration_s:g} s a run, {rounds} rounds")
            targets = _targets(hubs, token, document_id, keys)
            pids = {t.name: hubs[t.name.rsplit(" (", 1)[0]].process.pid for t in targets}
            series, cpu = _measure(targets, pids, rounds, duration_s)
            counted = _counted(hubs["after"], admin)
            logged = sum(1 for line in hubs["after"].log.read_text().splitlines() if line.startswith('{"time"'))
        except (Mismatch, LoadFailed, ServerError):
            _show_logs(servers)
            raise
        finally:
            for server in reversed(servers):
                stop(server)
    header = [
        *_machine(started, machine, code),
        f"before:  {revision(before)} ({before})",
        f"load:    {wrk}: {w6.THREADS} thread, {w6.CONNECTIONS} connections, {duration_s:g} s per run; "
        f"{WARMUPS} warm-up, then {rounds} rounds of one run each, rotating who goes first",
    ]
    text, record = _report(series, cpu, header)
    text += f"\nthe 'after' hub counted {counted:,.0f} requests in hub_requests_total and logged {logged:,} lines"
    print(text, flush=True)
    record.update(
        workload="W6-observe",
        started=started.isoformat(),
        machine=machine.as_dict(),
        revision=code,
        before=revision(before),
        counted=counted,
        logged=logged,
        duration_s=duration_s,
        rounds=rounds,
    )
    path = _path(RESULTS, "w6-observe", started)
    path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    say(f"wrote {path.relative_to(REPO)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.w6_observe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the code to compare with")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default: 5)")
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds (default: 6)")
    args = parser.parse_args(argv)
    try:
        return run(args.before.resolve(), args.duration, args.rounds)
    except (Mismatch, LoadFailed, ServerError) as error:
        say(f"error: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
