"""Run W1: `.venv/bin/python -m bench.run` from the repository root.

Sets up the bench database and a throw-away hub, starts the hub and the limit app as
uvicorn subprocesses on loopback, checks they send the same data, times them and reports.
Progress goes to stderr, the table to stdout, the record to bench/results/.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from types import FrameType

from bench.database import bench_url, ensure_database, ensure_demo_data, expected_counts
from bench.hub_setup import URL_ENV, prepare_hub, register_app
from bench.limit_app import URL_ENV as LIMIT_URL_ENV
from bench.machine import describe, revision
from bench.measure import RequestFailed, measure
from bench.report import Result, table, write_json
from bench.servers import HOST, Server, ServerError, start, stop, wait_ready
from bench.w1 import QUERY, ROWS, Mismatch, hub_contender, limit_contenders, verify

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
    say("checking the demo data (generating the expected row counts)")
    if asyncio.run(ensure_demo_data(url, expected_counts())):
        say(f"loaded the demo data into {url.render_as_string()}")


def start_servers(folder: Path, servers: list[Server]) -> tuple[Server, Server, str]:
    """Start the hub and the limit app, appending each to `servers` as soon as it exists so
    that the caller stops it whatever happens next."""
    manifests, database_url = prepare_hub(folder)
    token = asyncio.run(register_app(database_url))
    data_url = bench_url().render_as_string(hide_password=False)
    bin_dir = Path(sys.executable).parent
    # The hub exactly as deployed: its own command line, one uvicorn worker.
    hub = start(
        "hub",
        [str(bin_dir / "hub"), "serve", "--host", HOST, "--port", "{port}"],
        {
            "HUB_DATABASE_URL": database_url.render_as_string(hide_password=False),
            "HUB_MANIFESTS": str(manifests),
            URL_ENV: data_url,
        },
        folder / "hub.log",
        REPO,
    )
    servers.append(hub)
    limit = start(
        "limit",
        [sys.executable, "-m", "uvicorn", "--factory", "bench.limit_app:create_app", *LIMIT_OPTIONS],
        {LIMIT_URL_ENV: data_url},
        folder / "limit.log",
        REPO,
    )
    servers.append(limit)
    wait_ready(hub, "/healthz")
    wait_ready(limit, "/ready")
    return hub, limit, token


def run() -> Result:
    started = datetime.now().astimezone()
    # Taken before the servers start: the code they run is the code as of now.
    code = revision(REPO)
    prepare_database()
    machine = asyncio.run(describe(bench_url()))
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        try:
            say("starting the hub and the limit app")
            hub, limit, token = start_servers(Path(tmp), servers)
            hub_c = hub_contender(hub.base_url, token)
            limit_cs = limit_contenders(limit.base_url)
            say("checking that both send the same data")
            members = verify(hub_c, limit_cs)
            say(f"timing: {WARMUPS} warm-ups, then {RUNS} runs each")
            hub_t, *limit_ts = measure([hub_c, *limit_cs], WARMUPS, RUNS)
        except (Mismatch, RequestFailed):
            # The servers' own account (a hub traceback) dies with the temporary folder.
            for server in servers:
                say(f"--- the last lines of the {server.name} log ---\n{server.log_tail(80)}")
            raise
        finally:
            for server in reversed(servers):
                stop(server)
    return Result(started, machine, code, QUERY, ROWS, WARMUPS, RUNS, hub_t, tuple(limit_ts), members)


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    # Explicitly, since a shell starting this in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = run()
    except KeyboardInterrupt:
        say("interrupted; the servers were stopped")
        return 130
    except (ServerError, Mismatch, RequestFailed) as error:
        say(f"error: {error}")
        return 1
    print(table(result))
    path = write_json(result, RESULTS)
    say(f"\nwrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
