"""The hub's memory during the heaviest requests its bounds allow (finding 6 of issue 11).

Starts the demo hub (`hub demo`, SQLite, one uvicorn worker) in a subprocess and, as the auditor
stating `audit`, sends finding 6's query and the deepest and widest variants the bounds let
through or refuse (relation lists of 100 rows per parent, one million values per request,
30 aliases). For each, it samples the hub process's resident memory (VmRSS in
/proc/PID/status) every 5 ms while the request runs, and a second client sends a small lookup
in a loop meanwhile, whose slowest answer is reported. It prints the RSS at idle, the peak of
each request, and the RSS 30 s after the last one.

Targets (issue 11): peak growth at most 300 MB; 30 s after, at most idle + 50 MB. Idle is read
twice: cold (after three small lookups) and warm (after, in addition, one small request of the
same shapes as each measured request that has one, e.g. the eight lists at 10 rows each: the
statements, column readers and shapes a heavy request uses are then cached already, as in a hub
that has served traffic). Both are printed; growth is counted from the warm idle.

Run: `.venv/bin/python -m bench.heavy_request [--data-dir DIR] [--port N] [--after 30]`. The
demo's data folder is made on the first run (about a minute) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

HUB = Path(sys.executable).with_name("hub")
MB = 1024 * 1024

FINDING = "{ populationDistricts(first: 2) { nodes { residents { district { residents { districtCode } } } } } }"
# Every district (15), a hundred residents each, each resident's district's hundred residents
# with three fields, twice under two aliases: about 900,000 values, within the budget.
WIDEST_ALLOWED = (
    "{ populationDistricts { nodes { residents { district { a: residents { districtCode idNumber name } "
    "b: residents { districtCode idNumber name } } } } } }"
)
# One level deeper: fifteen million rows, refused.
DEEPEST = (
    "{ populationDistricts { nodes { residents { district { residents { district { residents "
    "{ districtCode } } } } } } } }"
)
# Thirty aliases (the most allowed) of the finding's nesting over every district: refused.
ALIASES = (
    "{ populationDistricts { nodes { "
    + " ".join(f"r{n}: residents {{ district {{ residents {{ districtCode idNumber }} }} }}" for n in range(30))
    + " } } }"
)
# The widest plain list: 12 fields of service deliveries, 10,000 rows, under 8 aliases.
WIDE_LISTS = (
    "{ "
    + " ".join(
        f"l{n}: civilAffairsServiceDeliveries(first: 10000) {{ nodes {{ deliveryId caseId recipientName "
        "recipientIdNumber recipientMobile serviceType deliveredAt amount districtCode status requestId "
        "expenditureId } }"
        for n in range(8)
    )
    + " }"
)
SMALL = "{ populationDistricts(first: 1) { nodes { code } } }"
# The same shapes as a measured request, small: what a hub that has served traffic has cached.
WARM = {"8 x 10,000-row lists": WIDE_LISTS.replace("first: 10000", "first: 10")}

REQUESTS = [
    ("finding 6", FINDING),
    ("widest allowed", WIDEST_ALLOWED),
    ("deepest (refused)", DEEPEST),
    ("30 aliases (refused)", ALIASES),
    ("8 x 10,000-row lists", WIDE_LISTS),
]


def cpu(pid: int) -> float:
    """The process's CPU seconds so far (user and system, /proc/PID/stat): what a request cost
    the hub, whatever else loads the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@dataclass
class Outcome:
    name: str
    seconds: float
    size: int
    answer: str
    peak: int
    slowest_small: float
    cpu_seconds: float


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return subprocess.Popen(
        [str(HUB), "demo", "--data-dir", str(data_dir), "--port", str(port)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the demo hub exited before it was ready")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the demo hub did not become ready")


def _measure(client: httpx.Client, pid: int, name: str, query: str, headers: dict[str, str]) -> Outcome:
    peak = rss(pid)
    done = threading.Event()
    slowest = [0.0]

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss(pid))
            time.sleep(0.005)

    def small() -> None:
        with httpx.Client(base_url=str(client.base_url), headers=headers, timeout=120) as other:
            while not done.is_set():
                began = time.perf_counter()
                other.post("/graphql", json={"query": SMALL})
                slowest[0] = max(slowest[0], time.perf_counter() - began)
                time.sleep(0.05)

    threads = [threading.Thread(target=sample), threading.Thread(target=small)]
    for thread in threads:
        thread.start()
    began, spent = time.perf_counter(), cpu(pid)
    response = client.post("/graphql", json={"query": query})
    seconds = time.perf_counter() - began
    spent = cpu(pid) - spent
    done.set()
    for thread in threads:
        thread.join()
    body = response.json()
    errors = body.get("errors") or []
    access = (body.get("extensions") or {}).get("access") or {}
    if body.get("data") is None and errors:
        extensions = errors[0].get("extensions", {})
        answer = f"refused: {extensions.get('code')} value {extensions.get('value')} > {extensions.get('limit')}"
    else:
        answer = f"answered: {len(errors)} errors, {access.get('truncatedCount', 0)} lists cut"
    return Outcome(name, seconds, len(response.content), answer, peak, slowest[0], spent)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.heavy_request", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "hub-bench-demo")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--after", type=float, default=30.0, help="seconds to wait before the last RSS reading")
    parser.add_argument("--only", help="run only the request of this name (e.g. 'finding 6'): its own before and after")
    args = parser.parse_args(argv)
    requests = [(n, q) for n, q in REQUESTS if args.only in (None, n)]
    if not requests:
        parser.error(f"--only takes one of: {', '.join(n for n, _ in REQUESTS)}")
    base = f"http://127.0.0.1:{args.port}"
    process = _start(args.data_dir, args.port)
    try:
        _wait_ready(base, process)
        # `hub demo` serves in its own process (no reloader): that process's memory is the hub's.
        pid = process.pid
        tokens = json.loads((args.data_dir / "demo-tokens.json").read_text())
        headers = {"Authorization": f"Bearer {tokens['auditor']}", "X-Hub-Purpose": "audit"}
        with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
            for _ in range(3):  # warm: schema caches, statements, the first plans
                client.post("/graphql", json={"query": SMALL})
            time.sleep(2)
            cold = rss(pid)
            for name, _ in requests:
                if name in WARM:
                    client.post("/graphql", json={"query": WARM[name]})
            time.sleep(2)
            idle = rss(pid)
            print(f"hub pid {pid}; RSS at idle {cold / MB:.0f} MB cold, {idle / MB:.0f} MB warm")
            header = f"{'request':<24}{'time':>8}{'hub CPU':>9}{'body':>10}{'peak':>10}{'growth':>9}{'small max':>11}"
            print(f"{header}  answer")
            outcomes = []
            for name, query in requests:
                outcome = _measure(client, pid, name, query, headers)
                outcomes.append(outcome)
                print(
                    f"{name:<24}{outcome.seconds:>7.2f}s{outcome.cpu_seconds:>8.2f}s"
                    f"{outcome.size / MB:>8.1f}MB{outcome.peak / MB:>8.0f}MB"
                    f"{(outcome.peak - idle) / MB:>7.0f}MB{outcome.slowest_small * 1000:>9.0f}ms  {outcome.answer}"
                )
            time.sleep(args.after)
            after = rss(pid)
        worst = max(outcome.peak for outcome in outcomes)
        print(
            f"RSS {args.after:.0f} s after the last request: {after / MB:.0f} MB "
            f"({(after - idle) / MB:+.0f} MB over warm idle, {(after - cold) / MB:+.0f} MB over cold idle)"
        )
        print(
            f"peak growth {(worst - idle) / MB:.0f} MB (target <= 300 MB); "
            f"after {(after - idle) / MB:+.0f} MB (target <= +50 MB)"
        )
        return 0
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    sys.exit(main())
