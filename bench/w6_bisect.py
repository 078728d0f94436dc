"""W6's CPU per request in process across several checkouts at once: which commits cost it.

    .venv/bin/python -m bench.w6_bisect DIR[|LABEL[|ENV-JSON]] ... [--rounds 6] [--requests 3000]

Each DIR is a checkout installed with its own environment (`git worktree add --detach DIR
COMMIT && (cd DIR && make install)`); LABEL names it in the table (the folder's name by
default) and ENV-JSON adds settings to its hub only (`'{"HUB_AUDIT": "off"}'` prices the
trail). The same DIR may be given several times with different settings.

Where wrk's requests per second swing with the machine's load, the CPU a hub's own process
spends per request moves far less (bench/w6_cpu.py, whose child this uses). Unlike w6_cpu,
each checkout prepares its hub database with its own bench code (`bench.hub_setup` run by its
own Python), since migrations, manifests and key formats changed between commits. A checkout
whose code does not read the bench keys as they are now (an Ed25519 signing key it does not
know) is set up again with `--old-keys HOME`: a HOME whose `.cache/hub-bench` is a copy of the
bench keys without the signing key and stamped at a revision that checkout knows (the data keys
are the same, so the PostgreSQL bench data is not reloaded).

Rounds rotate the contenders' order; the table gives per contender the median (min-max) of its
windows' CPU µs per request, and the wall requests per second in process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.w6_cpu import Child

# Run by each checkout's own Python, from that checkout: its hub database, app and document.
SETUP = """
import asyncio, json, os, sys
from pathlib import Path
sys.path.insert(0, os.getcwd())
from bench import w6
from bench.hub_setup import prepare_hub, register_app
from bench.run import _hub_env
folder = Path(sys.argv[1])
folder.mkdir(parents=True, exist_ok=True)
manifests, database_url = prepare_hub(folder)
token = asyncio.run(register_app(database_url))
document_id = asyncio.run(w6.register_query(database_url, w6.QUERY))
print(json.dumps({"env": _hub_env(manifests, database_url), "token": token, "document_id": document_id}))
"""
# Lifted for every contender, as the benches lift them (bench.hub_setup.hub_env): older
# checkouts' own settings did not know them all.
NO_LIMITS = {
    "HUB_RATE_LIMIT_DEFAULT": "100000000/minute",
    "HUB_DEPARTMENT_RATE_LIMIT": "100000000/minute",
    "HUB_CONCURRENCY_LIMIT_DEFAULT": "100000",
    "HUB_CONCURRENCY_LIMITS": "",
}


def _contender(spec: str) -> tuple[Path, str, dict[str, str]]:
    parts = spec.split("|")
    folder = Path(parts[0]).resolve()
    label = parts[1] if len(parts) > 1 and parts[1] else folder.name
    env = json.loads(parts[2]) if len(parts) > 2 else {}
    return folder, label, env


def _setup(folder: Path, where: Path, old_keys: Path | None) -> dict[str, Any]:
    python = str(folder / ".venv" / "bin" / "python")
    done = subprocess.run([python, "-c", SETUP, str(where)], cwd=folder, capture_output=True, text=True)
    if done.returncode != 0 and old_keys is not None:
        subprocess.run(["rm", "-rf", str(where)], check=True)
        done = subprocess.run(
            [python, "-c", SETUP, str(where)],
            cwd=folder,
            capture_output=True,
            text=True,
            env={**os.environ, "HOME": str(old_keys)},
        )
    if done.returncode != 0:
        raise RuntimeError(f"{folder}: its bench setup failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _run(specs: list[str], rounds: int, requests: int, kinds: list[str], old_keys: Path | None) -> int:
    from bench import w6
    from bench.database import bench_url
    from bench.run import RESULTS, prepare_database, say

    contenders = [_contender(spec) for spec in specs]
    prepare_database()
    keys = asyncio.run(w6.delivery_ids(bench_url()))
    results: dict[str, list[dict[str, float]]] = {}
    children: dict[str, Child] = {}
    with tempfile.TemporaryDirectory(prefix="hub-bench-bisect-") as tmp:
        try:
            for folder, label, extra in contenders:
                where = Path(tmp) / label
                mine = _setup(folder, where, old_keys)
                config = {
                    "token": mine["token"],
                    "purpose": w6.PURPOSE,
                    "query": w6.QUERY,
                    "document_id": mine["document_id"],
                    "keys": keys,
                    "access_log": str(where / "access.log"),
                }
                python = folder / ".venv" / "bin" / "python"
                children[label] = Child(python, {**mine["env"], **NO_LIMITS, **extra}, config)
                say(f"W6-bisect: {label} started")
            pairs = [(label, kind) for kind in kinds for label in children]
            for number in range(rounds):
                shift = number % len(pairs)
                for label, kind in pairs[shift:] + pairs[:shift]:
                    results.setdefault(f"{label} ({kind})", []).append(children[label].window(kind, requests))
                say(f"W6-bisect: {number + 1}/{rounds} rounds")
        finally:
            for child in children.values():
                child.stop()
    lines = [
        f"W6 in process: µs of each hub process's CPU per request, windows of {requests:,} requests, "
        f"{rounds} rounds (order rotating); load average now {os.getloadavg()[0]:.2f}",
        "",
        f"{'contender':<40} {'CPU µs/request median (min-max)':>34} {'req/s (wall) median':>20}",
    ]
    for name, runs in results.items():
        cpu = [1e6 * r["cpu_s"] / r["requests"] for r in runs]
        rps = [r["requests"] / r["wall_s"] for r in runs]
        span = f"{statistics.median(cpu):.0f} ({min(cpu):.0f}-{max(cpu):.0f})"
        lines.append(f"{name:<40} {span:>34} {statistics.median(rps):>20,.0f}")
    print("\n".join(lines), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"w6-bisect-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps({"contenders": specs, "runs": results}, indent=2))
    say(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.w6_bisect", description=__doc__.split("\n\n")[0])
    parser.add_argument("contenders", nargs="+", help="DIR[|LABEL[|ENV-JSON]]")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=3_000, help="requests per window")
    parser.add_argument("--kinds", default="text", help="text, trusted or text,trusted")
    parser.add_argument("--old-keys", type=Path, help="a HOME with the bench keys older checkouts can read")
    args = parser.parse_args(argv)
    return _run(args.contenders, args.rounds, args.requests, args.kinds.split(","), args.old_keys)


if __name__ == "__main__":
    sys.exit(main())
