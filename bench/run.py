"""Run the benchmarks: `.venv/bin/python -m bench.run [--workload w1|w1-access|all]` from the
repository root (default: all, W1 then W1-access).

Sets up the bench database; then, per workload, a throw-away hub and its contenders as uvicorn
subprocesses on loopback, checks their answers, times them and reports. Progress goes to
stderr, the tables to stdout, one record per workload to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from types import FrameType

from sqlalchemy.engine import URL

from bench import w1_access
from bench.database import bench_url, ensure_database, ensure_demo_data, expected_counts
from bench.hub_setup import URL_ENV, bench_keyring, hub_env, prepare_hub, register_app
from bench.limit_app import URL_ENV as LIMIT_URL_ENV
from bench.machine import Machine, describe, revision
from bench.measure import RequestFailed, measure
from bench.report import AccessResult, Result, access_table, table, write_access_json, write_json
from bench.servers import HOST, Server, ServerError, start, stop, wait_ready
from bench.w1 import QUERY, ROWS, Mismatch, hub_contender, limit_contenders, verify
from hub.catalog import load_catalog

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


def start_servers(folder: Path, servers: list[Server]) -> tuple[Server, Server, str]:
    """W1: start the hub and the limit app, appending each to `servers` as soon as it exists
    so that the caller stops it whatever happens next."""
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
    wait_ready(hub, "/healthz")
    wait_ready(limit, "/ready")
    return hub, limit, token


def _show_logs(servers: list[Server]) -> None:
    # The servers' own account (a hub traceback) dies with the temporary folder.
    for server in servers:
        say(f"--- the last lines of the {server.name} log ---\n{server.log_tail(80)}")


def run_w1(code: str, machine: Machine) -> Result:
    started = datetime.now().astimezone()
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        try:
            say("W1: starting the hub and the limit app")
            hub, limit, token = start_servers(Path(tmp), servers)
            hub_c = hub_contender(hub.base_url, token)
            limit_cs = limit_contenders(limit.base_url)
            say("W1: checking that both send the same data")
            members = verify(hub_c, limit_cs)
            say(f"W1: timing: {WARMUPS} warm-ups, then {RUNS} runs each")
            hub_t, *limit_ts = measure([hub_c, *limit_cs], WARMUPS, RUNS)
        except (Mismatch, RequestFailed):
            _show_logs(servers)
            raise
        finally:
            for server in reversed(servers):
                stop(server)
    return Result(started, machine, code, QUERY, ROWS, WARMUPS, RUNS, hub_t, tuple(limit_ts), members)


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


WORKLOADS = ("w1", "w1-access")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description="Run the hub's benchmarks.")
    parser.add_argument(
        "--workload", choices=(*WORKLOADS, "all"), default="all", help="which workload to run (default: all)"
    )
    args = parser.parse_args(argv)
    chosen = WORKLOADS if args.workload == "all" else (args.workload,)
    signal.signal(signal.SIGTERM, _terminate)
    # Explicitly, since a shell starting this in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # Taken before the servers start: the code they run is the code as of now.
        code = revision(REPO)
        prepare_database()
        machine = asyncio.run(describe(bench_url()))
        for number, workload in enumerate(chosen):
            if number:
                print()
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
    except (ServerError, Mismatch, RequestFailed, w1_access.PolicySetupError) as error:
        say(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
