"""W6 in process: the hub's CPU per request on W6's lookup by key, without HTTP, two checkouts
against each other (issue 13's number: /metrics on and tracing off cost under 5%).

`python -m bench.w6_cpu --before DIR [--rounds 5] [--requests 20000]`, where DIR is a checkout of
the code to compare with, installed (`make install` there). Where wrk's requests per second
swing by half from run to run on a machine shared with other work, the CPU time the hub's own
process spends per request is steadier: the database's work is in PostgreSQL's processes, and
other processes' load slows a request without making it cost more CPU.

Each round starts one child process per contender, in a rotating order: DIR's hub (`before`),
this tree's hub as `hub serve` runs it (`after`: metrics, the access log written to a file,
tracing off) and the same with HUB_ACCESS_LOG=off. A child is this file run by that checkout's
Python: it builds the app as `hub serve` does (settings from the environment, `build_services`,
`create_app`, its lifespan), then 32 tasks send W6's requests (by text, or by trusted document)
straight to the ASGI app, rotating through 1,000 keys: a warm-up, then `--requests` timed ones.
It prints the process's CPU seconds and the wall time of the timed part. Nothing of bench/ is
imported in a child (DIR's environment does not have it); the parent prepares the hub database
with bench/'s own setup, as W6 does.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CLIENTS = 32
WARMUP = 2_000
TARGET_COST = 0.05


# --- the child: one hub, in process ------------------------------------------------------------


async def _one(app: Any, body: bytes, headers: list[tuple[bytes, bytes]], n: int) -> None:
    """One request straight to the ASGI app; its answer must be a 200."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 40000 + n % 1000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    if status != 200:
        raise RuntimeError(f"request {n} answered {status}")


async def _drive(
    app: Any, bodies: Sequence[bytes], headers: list[tuple[bytes, bytes]], count: int, clients: int = CLIENTS
) -> None:
    """`count` requests from `clients` concurrent tasks."""
    numbers = itertools.count()

    async def client() -> None:
        while (n := next(numbers)) < count:
            await _one(app, bodies[n % len(bodies)], headers, n)

    await asyncio.gather(*(client() for _ in range(clients)))


def _access_log(config: dict[str, Any]) -> None:
    """The access log to a file, as `hub serve` writes it to standard output; the code before
    observability has none."""
    try:
        from hub.observe.access_log import write_access_log
    except ImportError:
        return
    if os.environ.get("HUB_ACCESS_LOG", "on") != "off":
        write_access_log(open(config["access_log"], "w", encoding="utf-8"))  # noqa: SIM115


async def _child(config: dict[str, Any]) -> None:
    """Serves windows of timed requests as the parent asks on standard input (`text N`,
    `trusted N`, `quit`), one JSON line of CPU and wall seconds on standard output for each."""
    from hub.app import create_app
    from hub.config import load_settings
    from hub.services import build_services

    settings = load_settings(os.environ)
    app = create_app(build_services(settings))
    headers = [
        (b"authorization", f"Bearer {config['token']}".encode()),
        (b"x-hub-purpose", config["purpose"].encode()),
        (b"content-type", b"application/json"),
    ]
    bodies = {
        "text": [json.dumps({"query": config["query"], "variables": {"key": k}}).encode() for k in config["keys"]],
        "trusted": [
            json.dumps({"documentId": config["document_id"], "variables": {"key": k}}).encode() for k in config["keys"]
        ],
    }
    async with app.router.lifespan_context(app):
        for kind in bodies:
            await _drive(app, bodies[kind], headers, WARMUP)
        print("ready", flush=True)
        while True:
            command = (await asyncio.to_thread(sys.stdin.readline)).split()
            if not command or command[0] == "quit":
                break
            kind, count = command[0], int(command[1])
            cpu, wall = time.process_time(), time.perf_counter()
            await _drive(app, bodies[kind], headers, count)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(json.dumps({"cpu_s": cpu, "wall_s": wall, "requests": count}), flush=True)


# --- the parent: setup, rounds, report ---------------------------------------------------------


class Child:
    """One contender's hub, in a process of its own, run by `python` with `env`: this file, from
    a folder outside any checkout (so that `python`'s own tree is what it imports), or `module`
    of this checkout's bench (`python -m`, from the checkout)."""

    def __init__(self, python: Path, env: dict[str, str], config: dict[str, Any], module: str | None = None) -> None:
        code = [str(Path(__file__).resolve())] if module is None else ["-m", module]
        self.process = subprocess.Popen(
            [str(python), *code, "--child", json.dumps(config)],
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=tempfile.gettempdir() if module is None else Path(__file__).resolve().parent.parent,
        )
        self._expect("ready")

    def _expect(self, what: str) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line or (what and line.strip() != what):
            self.process.kill()
            raise RuntimeError(f"a child hub failed (it said {line!r}); run it alone to see why")
        return line

    def window(self, kind: str, count: int) -> dict[str, float]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{kind} {count}\n")
        self.process.stdin.flush()
        result: dict[str, float] = json.loads(self._expect(""))
        return result

    def stop(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _parent(before: Path, rounds: int, requests: int) -> int:
    from bench import w6
    from bench.database import bench_url
    from bench.hub_setup import prepare_hub, register_app
    from bench.machine import revision
    from bench.run import REPO, RESULTS, _hub_env, prepare_database, say

    before_python = before / ".venv" / "bin" / "python"
    if not before_python.exists():
        say(f"error: {before_python} is missing: run `make install` in {before}")
        return 1
    prepare_database()
    keys = asyncio.run(w6.delivery_ids(bench_url()))
    results: dict[str, list[dict[str, float]]] = {}
    children: dict[str, Child] = {}
    with tempfile.TemporaryDirectory(prefix="hub-bench-cpu-") as tmp:
        folder = Path(tmp)
        manifests, database_url = prepare_hub(folder)
        token = asyncio.run(register_app(database_url))
        document_id = asyncio.run(w6.register_query(database_url, w6.QUERY))
        env = _hub_env(manifests, database_url)
        config = {
            "token": token,
            "purpose": w6.PURPOSE,
            "query": w6.QUERY,
            "document_id": document_id,
            "keys": keys,
            "access_log": str(folder / "access.log"),
        }
        contenders = {
            "before": (before_python, env),
            "after": (Path(sys.executable), env),
            "after, no access log": (Path(sys.executable), {**env, "HUB_ACCESS_LOG": "off"}),
        }
        try:
            for label, (python, environ) in contenders.items():
                # One after the other: the first start seeds the policy into the new hub database.
                children[label] = Child(python, environ, config)
            pairs = [(label, kind) for kind in ("text", "trusted") for label in contenders]
            for number in range(rounds):
                shift = number % len(pairs)
                for label, kind in pairs[shift:] + pairs[:shift]:
                    results.setdefault(f"{label} ({kind})", []).append(children[label].window(kind, requests))
                if (number + 1) % 5 == 0 or number + 1 == rounds:
                    say(f"W6-cpu: {number + 1}/{rounds} rounds")
        finally:
            for child in children.values():
                child.stop()
    lines = [
        f"W6 in process: µs of the hub process's CPU per request, windows of {requests:,} requests from "
        f"{CLIENTS} concurrent tasks, {rounds} rounds of one window per contender (order rotating), "
        f"each hub warmed up by {WARMUP:,} requests of each kind",
        f"after: {revision(REPO)}; before: {revision(before)} ({before})",
        "",
        f"{'contender':<32} {'CPU µs/request median (min-max)':>34} {'req/s (wall) median':>20}",
    ]
    for name, runs in results.items():
        cpu = [1e6 * r["cpu_s"] / r["requests"] for r in runs]
        rps = [r["requests"] / r["wall_s"] for r in runs]
        span = f"{statistics.median(cpu):.0f} ({min(cpu):.0f}-{max(cpu):.0f})"
        lines.append(f"{name:<32} {span:>34} {statistics.median(rps):>20,.0f}")
    lines.append("")
    for kind in ("text", "trusted"):
        base = [r["cpu_s"] / r["requests"] for r in results[f"before ({kind})"]]
        for label in ("after", "after, no access log"):
            other = [r["cpu_s"] / r["requests"] for r in results[f"{label} ({kind})"]]
            paired = sorted(o / b for o, b in zip(other, base, strict=True))
            cost = statistics.median(other) / statistics.median(base) - 1
            quartiles = statistics.quantiles(paired, n=4)
            verdict = "met" if cost < TARGET_COST else "NOT met"
            lines.append(
                f"{label} / before, {kind}: CPU per request {cost * 100:+.1f}% (medians); per round median "
                f"{(statistics.median(paired) - 1) * 100:+.1f}%, middle half {(quartiles[0] - 1) * 100:+.1f}% to "
                f"{(quartiles[2] - 1) * 100:+.1f}% (target under +{TARGET_COST * 100:.0f}%: {verdict})"
            )
    print("\n".join(lines), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"w6-cpu-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps({"before": revision(before), "after": revision(REPO), "runs": results}, indent=2))
    say(f"wrote {path.relative_to(REPO)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.w6_cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare with")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=4_000, help="requests per window")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        config = json.loads(args.child)
        _access_log(config)
        asyncio.run(_child(config))
        return 0
    if args.before is None:
        parser.error("--before DIR is required")
    return _parent(args.before.resolve(), args.rounds, args.requests)


if __name__ == "__main__":
    sys.exit(main())
