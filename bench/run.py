"""Run the benchmarks: `.venv/bin/python -m bench.run [--workload w1|w1-access|w2|w6|w6-quota|trail|all]`
from the repository root (default: all, W1, W1-access, W2, W6, W6-quota, then trail: W6 and W1 with
the access trail on and off, the hub database on SQLite and on PostgreSQL).

Sets up the bench database; then, per workload, a throw-away hub and its contenders as uvicorn
subprocesses on loopback, checks their answers, times them and reports. Progress goes to
stderr, the tables to stdout, one record per workload to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import FrameType

import orjson
from sqlalchemy.engine import URL

from bench import w1_access, w2, w6, w6_quota
from bench.database import bench_url, ensure_database, ensure_demo_data, expected_counts
from bench.hub_setup import URL_ENV, bench_keyring, hub_env, prepare_hub, register_app
from bench.limit_app import URL_ENV as LIMIT_URL_ENV
from bench.load_report import W2Result, W6Result, _machine, _path, w2_table, w6_table, write_w2_json, write_w6_json
from bench.load_wrk import LoadFailed, measure_wrk, wrk_version
from bench.machine import POSTGRAPHILE, Machine, describe, postgraphile_version, revision
from bench.measure import RequestFailed, measure
from bench.open_loop import OpenLoopFailed, OpenLoopRun, parse_rates
from bench.report import AccessResult, Result, access_table, table, write_access_json, write_json
from bench.servers import HOST, Server, ServerError, start, stop, wait_ready
from bench.w1 import (
    POSTGRAPHILE_OPTIONS,
    POSTGRAPHILE_QUERY,
    QUERY,
    ROWS,
    Mismatch,
    ensure_postgraphile,
    hub_contender,
    limit_contenders,
    postgraphile_contender,
    postgraphile_server,
    verify,
    wait_graphql,
)
from hub.catalog import load_catalog
from hub.quota.counter import WINDOW_SECONDS

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
WARMUPS = 3
RUNS = 15
# uvicorn's defaults otherwise, as `hub serve` uses them: one worker, asyncio loop, h11.
LIMIT_OPTIONS = ("--host", HOST, "--port", "{port}", "--log-level", "warning", "--no-access-log")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # A SIGTERM takes the same way out as Ctrl-C, so the servers are stopped on the way.
    raise KeyboardInterrupt


def prepare_database() -> None:
    url = bench_url()
    if asyncio.run(ensure_database()):
        say(f"created database {url.database}")
    keyring = bench_keyring()
    say("checking the demo data (generating the expected row counts)")
    if asyncio.run(ensure_demo_data(url, expected_counts(), keyring)):
        say(f"loaded the demo data into {url.render_as_string()}")


def _hub_env(manifests: Path, database_url: URL) -> dict[str, str]:
    return {
        "HUB_DATABASE_URL": database_url.render_as_string(hide_password=False),
        "HUB_MANIFESTS": str(manifests),
        URL_ENV: bench_url().render_as_string(hide_password=False),
        **hub_env(),
    }


def _hub_serve() -> list[str]:
    # The hub exactly as deployed: its own command line, one uvicorn worker.
    return [str(Path(sys.executable).parent / "hub"), "serve", "--host", HOST, "--port", "{port}"]


def start_servers(folder: Path, servers: list[Server]) -> tuple[Server, Server, Server, str]:
    """W1: start the hub, the limit app and PostGraphile, appending each to `servers` as soon
    as it exists so that the caller stops it whatever happens next."""
    manifests, database_url = prepare_hub(folder)
    token = asyncio.run(register_app(database_url))
    hub = start("hub", _hub_serve(), _hub_env(manifests, database_url), folder / "hub.log", REPO)
    servers.append(hub)
    limit = start(
        "limit",
        [sys.executable, "-m", "uvicorn", "--factory", "bench.limit_app:create_app", *LIMIT_OPTIONS],
        {LIMIT_URL_ENV: bench_url().render_as_string(hide_password=False)},
        folder / "limit.log",
        REPO,
    )
    servers.append(limit)
    command, env = postgraphile_server(bench_url())
    postgraphile = start("PostGraphile", command, env, folder / "postgraphile.log", POSTGRAPHILE)
    servers.append(postgraphile)
    wait_ready(hub, "/healthz")
    wait_ready(limit, "/ready")
    wait_graphql(postgraphile)
    return hub, limit, postgraphile, token


def _show_logs(servers: list[Server]) -> None:
    # The servers' own account (a hub traceback) dies with the temporary folder.
    for server in servers:
        say(f"--- the last lines of the {server.name} log ---\n{server.log_tail(80)}")


def run_w1(code: str, machine: Machine) -> Result:
    started = datetime.now().astimezone()
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        try:
            if ensure_postgraphile():
                say(f"W1: installed PostGraphile {postgraphile_version()} (npm ci in bench/postgraphile)")
            machine = replace(machine, postgraphile=postgraphile_version())
            say("W1: starting the hub, the limit app and PostGraphile")
            hub, limit, postgraphile, token = start_servers(Path(tmp), servers)
            hub_c = hub_contender(hub.base_url, token)
            limit_cs = limit_contenders(limit.base_url)
            postgraphile_c = postgraphile_contender(postgraphile.base_url)
            say("W1: checking that all send the same data")
            members = verify(hub_c, limit_cs, postgraphile_c)
            say(f"W1: timing: {WARMUPS} warm-ups, then {RUNS} runs each")
            hub_t, *limit_ts, postgraphile_t = measure([hub_c, *limit_cs, postgraphile_c], WARMUPS, RUNS)
        except (Mismatch, RequestFailed):
            _show_logs(servers)
            raise
        finally:
            for server in reversed(servers):
                stop(server)
    return Result(
        started,
        machine,
        code,
        QUERY,
        ROWS,
        WARMUPS,
        RUNS,
        hub_t,
        tuple(limit_ts),
        members,
        postgraphile_t,
        POSTGRAPHILE_QUERY,
        POSTGRAPHILE_OPTIONS,
    )


def start_access_servers(folder: Path, servers: list[Server]) -> tuple[Server, Server, str, str, Path]:
    """W1-access: the hub as deployed (`hub serve`, the live policy) and the same hub with
    access checks off (bench/hub_open_server.py), over the same hub database, manifests and
    data; returns both, the measured caller's token, the admin's token and the manifests."""
    manifests, database_url = prepare_hub(folder)
    token = asyncio.run(register_app(database_url, w1_access.APP_NAME, w1_access.APP_DEPARTMENT, (w1_access.ROLE,)))
    admin = asyncio.run(
        register_app(database_url, w1_access.ADMIN_NAME, w1_access.ADMIN_DEPARTMENT, (w1_access.ADMIN_ROLE,))
    )
    env = _hub_env(manifests, database_url)
    on = start("hub", _hub_serve(), env, folder / "hub.log", REPO)
    servers.append(on)
    open_server = [sys.executable, "-m", "bench.hub_open_server", "--host", HOST, "--port", "{port}"]
    off = start("hub with access checks off", open_server, env, folder / "hub-open.log", REPO)
    servers.append(off)
    wait_ready(on, "/healthz")
    wait_ready(off, "/healthz")
    return on, off, token, admin, manifests


def run_w1_access(code: str, machine: Machine) -> AccessResult:
    started = datetime.now().astimezone()
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        try:
            say("W1-access: starting the hub and the hub with access checks off")
            on, off, token, admin, manifests = start_access_servers(Path(tmp), servers)
            version = w1_access.apply_policy(on.base_url, admin)
            w1_access.check_decisions(w1_access.decisions(on.base_url, admin))
            say(
                f"W1-access: policy version {version} is live; {w1_access.APP_NAME} gets "
                f"{', '.join(w1_access.MASKED)} masked and {w1_access.WITHHELD} withheld"
            )
            on_c, off_c = w1_access.contenders(on.base_url, off.base_url, token)
            say("W1-access: checking that the answers differ exactly as the policy says")
            check = w1_access.verify(on_c, off_c, w1_access.mask_expectations(load_catalog(manifests)))
            say(f"W1-access: timing: {WARMUPS} warm-ups, then {RUNS} runs each")
            on_t, off_t = measure([on_c, off_c], WARMUPS, RUNS)
        except (Mismatch, RequestFailed, w1_access.PolicySetupError):
            _show_logs(servers)
            raise
        finally:
            for server in reversed(servers):
                stop(server)
    caller = (
        f"app {w1_access.APP_NAME} ({w1_access.APP_DEPARTMENT}), role {w1_access.ROLE}: department_app "
        f"and a deny of {w1_access.WITHHELD}'s mask; no purpose"
    )
    return AccessResult(started, machine, code, QUERY, ROWS, WARMUPS, RUNS, caller, on_t, off_t, check)


def start_load_servers(
    folder: Path, servers: list[Server], document: str | None = None
) -> tuple[Server, Server, str, str | None]:
    """W2 and W6: the hub (`hub serve`) with W1's caller, and the limit app. `document`, if
    given, is registered as a trusted document before the hub starts; returns its id."""
    manifests, database_url = prepare_hub(folder)
    token = asyncio.run(register_app(database_url))
    document_id = None if document is None else asyncio.run(w6.register_query(database_url, document))
    hub = start("hub", _hub_serve(), _hub_env(manifests, database_url), folder / "hub.log", REPO)
    servers.append(hub)
    limit_app = [sys.executable, "-m", "uvicorn", "--factory", "bench.limit_app:create_app", *LIMIT_OPTIONS]
    limit_env = {LIMIT_URL_ENV: bench_url().render_as_string(hide_password=False)}
    limit = start("limit", limit_app, limit_env, folder / "limit.log", REPO)
    servers.append(limit)
    wait_ready(hub, "/healthz")
    wait_ready(limit, "/ready")
    return hub, limit, token, document_id


def run_w6(code: str, machine: Machine, duration_s: float) -> W6Result:
    started = datetime.now().astimezone()
    wrk = wrk_version()  # before anything starts: without wrk there is nothing to measure
    keys = asyncio.run(w6.delivery_ids(bench_url()))
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        try:
            say("W6: starting the hub (W6's operation registered as a trusted document) and the limit app")
            hub, limit, token, document_id = start_load_servers(Path(tmp), servers, w6.QUERY)
            assert document_id is not None
            say(f"W6: checking that all three send the same data (every {w6.SAMPLE_EVERY}th of {len(keys):,} keys)")
            check = w6.verify(limit.base_url, hub.base_url, token, document_id, keys)
            targets = w6.targets(limit.base_url, hub.base_url, token, document_id, keys)
            say(f"W6: wrk, {w6.CONNECTIONS} connections, {duration_s:g} s a run, {WARMUPS} warm-ups + {RUNS} runs each")
            bare, normal, trusted = measure_wrk(
                targets, WARMUPS, RUNS, duration_s, w6.CONNECTIONS, w6.THREADS, progress=lambda m: say(f"W6: {m}")
            )
        except (Mismatch, LoadFailed):
            _show_logs(servers)
            raise
        finally:
            for server in reversed(servers):
                stop(server)
    return W6Result(
        started,
        machine,
        code,
        w6.QUERY,
        document_id,
        len(keys),
        wrk,
        w6.CONNECTIONS,
        w6.THREADS,
        duration_s,
        WARMUPS,
        RUNS,
        bare,
        normal,
        trusted,
        check,
    )


def _same_window(duration_s: float) -> None:
    """Waits for the next hourly quota window when the priming pass and the timed runs would
    not fit in the current one: at a window's start every key is new again and written to the
    hub database, which would land on a few rounds of the counted hub only."""
    needed = 60 + (w6_quota.WARMUPS + w6_quota.RUNS) * 2 * (duration_s + 1.5)
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < needed:
        say(f"W6-quota: {left:.0f} s left in the quota's hourly window, {needed:.0f} s needed: waiting for the next")
        time.sleep(left + 2)


def run_w6_quota(code: str, machine: Machine, duration_s: float) -> Path:
    """W6-quota: the hub with the lookup counter on against the same hub with it off, on one
    hub database, alternating wrk runs; prints the table, writes the record, returns its path."""
    started = datetime.now().astimezone()
    wrk = wrk_version()
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        folder = Path(tmp)
        try:
            say("W6-quota: starting the hub with the lookup counter on and the hub with it off")
            manifests, database_url = prepare_hub(folder)
            token = asyncio.run(register_app(database_url, *w6_quota.HEALTH_APP))
            registry = asyncio.run(register_app(database_url, *w6_quota.REGISTRY_APP))
            env = _hub_env(manifests, database_url)
            counted = start("hub (counted)", _hub_serve(), {**env, **w6_quota.COUNTED_ENV}, folder / "on.log", REPO)
            servers.append(counted)
            # One after the other: the first start seeds the policy into the new hub database.
            wait_ready(counted, "/healthz")
            off = start("hub (counter off)", _hub_serve(), {**env, **w6_quota.UNCOUNTED_ENV}, folder / "off.log", REPO)
            servers.append(off)
            wait_ready(off, "/healthz")
            keys = w6_quota.person_ids(off.base_url, registry)
            say(f"W6-quota: checking both send the same data (every {w6_quota.SAMPLE_EVERY}th of {len(keys):,} keys)")
            check = w6_quota.verify(counted.base_url, off.base_url, token, keys)
            checked = asyncio.run(w6_quota.counted_values(database_url))
            if checked != len(check["keys"]):
                raise Mismatch(f"the counter counted {checked} values for {len(check['keys'])} keys checked")
            _same_window(duration_s)
            say("W6-quota: priming: every key once to each hub, one request at a time")
            prime_ms = (
                w6_quota.prime(counted.base_url, token, keys),
                w6_quota.prime(off.base_url, token, keys),
            )
            say(
                f"W6-quota: wrk, {w6_quota.CONNECTIONS} connections, {duration_s:g} s a run, "
                f"{w6_quota.WARMUPS} warm-ups + {w6_quota.RUNS} alternating runs each"
            )
            load_before = os.getloadavg()
            on_s, off_s = measure_wrk(
                w6_quota.targets(counted, off, token, keys),
                w6_quota.WARMUPS,
                w6_quota.RUNS,
                duration_s,
                w6_quota.CONNECTIONS,
                w6_quota.THREADS,
                progress=lambda m: say(f"W6-quota: {m}"),
            )
            load_after = os.getloadavg()
            after = asyncio.run(w6_quota.counted_values(database_url))
        except (Mismatch, LoadFailed):
            _show_logs(servers)
            raise
        finally:
            for server in reversed(servers):
                stop(server)
    header = [
        *_machine(started, machine, code),
        f"load:    {wrk}: {w6_quota.THREADS} thread, {w6_quota.CONNECTIONS} connections, {duration_s:g} s per run; "
        f"{w6_quota.WARMUPS} warm-ups, then {w6_quota.RUNS} rounds of one run each, alternating who goes first",
    ]
    setup = {
        "keys": len(keys),
        "counted_after": after,
        "prime_ms": prime_ms,
        "load_average": {"before": load_before, "after": load_after},
        "duration_s": duration_s,
        "wrk": wrk,
        "check": check,
    }
    text, record = w6_quota.report(on_s, off_s, header, setup)
    print(text, flush=True)
    path = _path(RESULTS, "w6-quota", started)
    record.update(started=started.isoformat(), machine=machine.as_dict(), revision=code)
    path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    return path


def run_w2(code: str, machine: Machine, rates: tuple[float, ...], warmup_s: float, duration_s: float) -> W2Result:
    started = datetime.now().astimezone()
    pages = asyncio.run(w2.pages(bench_url()))
    servers: list[Server] = []
    runs: list[tuple[OpenLoopRun, OpenLoopRun]] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        try:
            say("W2: starting the hub and the limit app (whose /static route checks the generator)")
            hub, limit, token, _ = start_load_servers(Path(tmp), servers)
            say(f"W2: checking the {len(pages)} pages")
            check = w2.verify(hub.base_url, token, pages)
            for rate in rates:
                say(f"W2: {rate:g} req/s, {warmup_s:g} s warm-up + {duration_s:g} s: the hub, then the generator check")
                jobs = w2.jobs(hub.port, limit.port, token, pages, rate, warmup_s, duration_s, check["check_bytes"])
                hub_run, check_run = w2.run_jobs(hub, jobs, REPO, say)
                say(f"W2: {rate:g} req/s: hub p99 {hub_run.latency(99):.1f} ms, {hub_run.errors} errors")
                runs.append((hub_run, check_run))
        except (Mismatch, OpenLoopFailed):
            _show_logs(servers)
            raise
        finally:
            for server in reversed(servers):
                stop(server)
    connections = w2.CONNECTIONS
    return W2Result(started, machine, code, w2.QUERY, len(pages), connections, warmup_s, duration_s, tuple(runs), check)


def run_load_workload(workload: str, code: str, machine: Machine, args: argparse.Namespace) -> Path:
    """W2, W6 or W6-quota: run it, print its table and write its record; the record's path."""
    if workload == "w6-quota":
        return run_w6_quota(code, machine, args.duration)
    if workload == "w6":
        w6_result = run_w6(code, machine, args.duration)
        print(w6_table(w6_result), flush=True)
        return write_w6_json(w6_result, RESULTS)
    w2_result = run_w2(code, machine, args.rates, args.warmup, args.rate_duration)
    print(w2_table(w2_result), flush=True)
    return write_w2_json(w2_result, RESULTS)


LOAD_ERRORS = (LoadFailed, OpenLoopFailed, w6.TrustedDocumentsMissing)
WORKLOADS = ("w1", "w1-access", "w2", "w6", "w6-quota", "trail")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description="Run the hub's benchmarks.")
    parser.add_argument(
        "--workload", choices=(*WORKLOADS, "all"), default="all", help="which workload to run (default: all)"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="W6, W6-quota: seconds per wrk run (default: 5)")
    parser.add_argument(
        "--rates",
        type=parse_rates,
        default=(50.0, 100.0, 200.0),
        help="W2: rates, comma-separated (default: 50,100,200)",
    )
    parser.add_argument("--rate-duration", type=float, default=15.0, help="W2: timed seconds per rate (default: 15)")
    parser.add_argument("--warmup", type=float, default=3.0, help="W2: warm-up seconds per rate (default: 3)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.rate_duration <= 0 or args.warmup < 0:
        parser.error("--duration and --rate-duration must be positive, --warmup not negative")
    chosen = WORKLOADS if args.workload == "all" else (args.workload,)
    signal.signal(signal.SIGTERM, _terminate)
    # Explicitly, since a shell starting this in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # Taken before the servers start: the code they run is the code as of now.
        code = revision(REPO)
        if {"w6", "w6-quota", "trail"} & set(chosen):
            wrk_version()  # W6 cannot run without wrk: say so before the other workloads run
        prepare_database()
        machine = asyncio.run(describe(bench_url()))
        for number, workload in enumerate(chosen):
            if number:
                print()
            if workload == "trail":
                # W6 and W1 with the access trail on and off (bench/audit_cost.py); imported here,
                # as it builds on this module.
                from bench.audit_cost import trail_workload

                path = trail_workload(code, machine.as_dict(), args.duration, RESULTS)
                say(f"\nwrote {path.relative_to(REPO)}")
                continue
            if workload in ("w2", "w6", "w6-quota"):
                say(f"\nwrote {run_load_workload(workload, code, machine, args).relative_to(REPO)}")
                continue
            if workload == "w1":
                result = run_w1(code, machine)
                print(table(result), flush=True)
                path = write_json(result, RESULTS)
            else:
                access = run_w1_access(code, machine)
                print(access_table(access), flush=True)
                path = write_access_json(access, RESULTS)
            say(f"\nwrote {path.relative_to(REPO)}")
    except KeyboardInterrupt:
        say("interrupted; the servers were stopped")
        return 130
    except (ServerError, Mismatch, RequestFailed, w1_access.PolicySetupError, *LOAD_ERRORS) as error:
        say(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
