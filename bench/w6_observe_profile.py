"""W6 in process under cProfile: the share of a request's profiled time spent in observability
(the functions of hub/observe, prometheus_client and opentelemetry), as text and as a trusted
document.

    .venv/bin/python -m bench.w6_observe_profile [--requests 20000]

Builds the hub as `hub serve` builds it (settings from the environment, the access log to a
file, tracing off) over the bench database, sends 3,000 warm-up requests of each kind from 32
tasks straight to the ASGI app (bench/w6_cpu.py's driver), then profiles `--requests` of each.
The profiler slows call-heavy code more than the rest: the share is an estimate, which the
machine's load moves far less than it moves requests per second or CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import tempfile
from pathlib import Path

from bench import w6
from bench.database import bench_url
from bench.hub_setup import prepare_hub, register_app
from bench.run import _hub_env, prepare_database
from bench.w6_cpu import _drive

WARMUP = 3_000
OBSERVING = ("/hub/observe/", "/prometheus_client/", "/opentelemetry/")


async def _profile(app: object, bodies: dict[str, list[bytes]], headers: list[tuple[bytes, bytes]], count: int) -> None:
    async with app.router.lifespan_context(app):  # type: ignore[attr-defined]
        for kind in bodies:
            await _drive(app, bodies[kind], headers, WARMUP)
        for kind in bodies:
            profile = cProfile.Profile()
            profile.enable()
            await _drive(app, bodies[kind], headers, count)
            profile.disable()
            stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
            total = sum(row[2] for row in stats.values())
            mine = {
                f"{Path(file).name}:{name}": row[2]
                for (file, _, name), row in stats.items()
                if any(part in file for part in OBSERVING)
            }
            spent = sum(mine.values())
            print(
                f"{kind}: {count:,} requests, {1e6 * total / count:.0f} µs of profiled time a request; observability "
                f"{1e6 * spent / count:.1f} µs, {spent / total:.2%}"
            )
            for name, seconds in sorted(mine.items(), key=lambda item: -item[1])[:8]:
                print(f"    {name}: {1e6 * seconds / count:.1f} µs a request")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.w6_observe_profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="profiled requests of each kind")
    args = parser.parse_args(argv)
    prepare_database()
    keys = asyncio.run(w6.delivery_ids(bench_url()))
    with tempfile.TemporaryDirectory(prefix="hub-bench-profile-") as tmp:
        manifests, database_url = prepare_hub(Path(tmp))
        token = asyncio.run(register_app(database_url))
        document_id = asyncio.run(w6.register_query(database_url, w6.QUERY))
        from hub.app import create_app
        from hub.config import load_settings
        from hub.observe.access_log import write_access_log
        from hub.services import build_services

        log = (Path(tmp) / "access.log").open("w", encoding="utf-8")
        write_access_log(log)
        app = create_app(build_services(load_settings({**os.environ, **_hub_env(manifests, database_url)})))
        headers = [
            (b"authorization", f"Bearer {token}".encode()),
            (b"x-hub-purpose", w6.PURPOSE.encode()),
            (b"content-type", b"application/json"),
        ]
        bodies = {
            "text": [json.dumps({"query": w6.QUERY, "variables": {"key": k}}).encode() for k in keys],
            "trusted": [json.dumps({"documentId": document_id, "variables": {"key": k}}).encode() for k in keys],
        }
        try:
            asyncio.run(_profile(app, bodies, headers, args.requests))
        finally:
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
