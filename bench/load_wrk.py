"""Closed-loop load with wrk: a fixed number of connections, each sending its next request as
soon as the previous answer is in, for a few seconds; the requests per second is the measure.

wrk (C, one event loop per thread) is used rather than a Python client because at a few
thousand requests per second a Python client would spend more CPU than the server it measures
and would be what is measured. It rotates through a list of requests with bench/w6_wrk.lua,
which prints wrk's counts as one JSON line. Runs of several targets interleave and rotate who
goes first, as bench/measure.py does, so that a slow spell of the machine falls on all alike.

Where a target names its server's process, each timed run also reads that process's CPU time
(/proc/PID/stat) before and after: CPU per request holds within a few percent on a machine
shared with other work, where requests per second swing by half (other processes' load delays
a request without making it cost the server more CPU).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

SCRIPT = Path(__file__).resolve().parent / "w6_wrk.lua"
MARKER = "W6-WRK-JSON "
INSTALL = "wrk is not installed; install it with `apt-get install -y wrk` (Debian/Ubuntu package `wrk`)"


class LoadFailed(RuntimeError):
    """wrk is missing, did not run, or a run saw errors (non-2xx answers, socket errors)."""


@dataclass(frozen=True)
class WrkTarget:
    """What one contender is sent: `requests` are (path with query string, body or "")."""

    name: str
    base_url: str
    method: str
    requests: Sequence[tuple[str, str]]
    headers: Mapping[str, str] = field(default_factory=dict)
    # The server's process, whose CPU time each timed run reads (None: not read).
    pid: int | None = None


@dataclass(frozen=True)
class WrkRun:
    """One wrk run's counts, as its done() reports them."""

    duration_s: float
    requests: int
    bytes: int
    errors: dict[str, int]
    latency_ms: dict[str, float]  # p50, p90, p99, max, mean
    # The server process's CPU seconds (user and system) over the run, where its target names it.
    cpu_s: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s

    @property
    def cpu_us_per_request(self) -> float | None:
        return None if self.cpu_s is None else 1e6 * self.cpu_s / self.requests

    @property
    def failures(self) -> int:
        """Answers with a status of 400 or more (wrk counts those as `status` errors) and
        socket errors: connect, read, write, timeout."""
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "rps": self.rps,
            "duration_s": self.duration_s,
            "requests": self.requests,
            "bytes": self.bytes,
            "errors": self.errors,
            "latency_ms": self.latency_ms,
            "cpu_s": self.cpu_s,
            "cpu_us_per_request": self.cpu_us_per_request,
        }


@dataclass(frozen=True)
class WrkSeries:
    """The timed runs of one target."""

    name: str
    runs: tuple[WrkRun, ...]

    @property
    def rps(self) -> tuple[float, float, float]:
        """Median, min and max requests per second over the runs."""
        values = [r.rps for r in self.runs]
        return statistics.median(values), min(values), max(values)

    def latency_ms(self, percentile: str) -> float:
        """The median over runs of one run's latency percentile."""
        return statistics.median(r.latency_ms[percentile] for r in self.runs)

    @property
    def cpu_us(self) -> tuple[float, float, float] | None:
        """Median, min and max of the server's CPU µs per request over the runs (None: not read)."""
        values = [r.cpu_us_per_request for r in self.runs]
        if not values or any(v is None for v in values):
            return None
        read = [v for v in values if v is not None]
        return statistics.median(read), min(read), max(read)

    @property
    def bytes_per_response(self) -> float:
        return sum(r.bytes for r in self.runs) / sum(r.requests for r in self.runs)

    @property
    def failures(self) -> int:
        return sum(r.failures for r in self.runs)


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user and system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime, the 14th and 15th fields of the line (the 12th and 13th after the name).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise LoadFailed(INSTALL)
    return found


def wrk_version() -> str:
    """wrk's version line ("wrk debian/4.1.0-3+b2 [epoll]"); LoadFailed if wrk is missing."""
    # `wrk -v` prints its version, then its usage, and exits 1.
    done = subprocess.run([wrk_binary(), "-v"], capture_output=True, text=True)
    first = (done.stdout or done.stderr).splitlines()[:1]
    return first[0].split(" Copyright")[0].strip() if first else "wrk (version unknown)"


def run_wrk(
    target: WrkTarget, requests_file: Path, duration_s: float, connections: int, threads: int, timeout_s: float
) -> WrkRun:
    argv = [
        wrk_binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s:g}s",
        f"--timeout={timeout_s:g}s",
        "-s",
        str(SCRIPT),
        target.base_url,
        "--",
        target.method,
        str(requests_file),
        *(f"{name}: {value}" for name, value in target.headers.items()),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + timeout_s + 30)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        raise LoadFailed(f"wrk against {target.name} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    counts = orjson.loads(lines[-1][len(MARKER) :])
    latency = {name: value / 1000 for name, value in counts["latency_us"].items()}
    run = WrkRun(counts["duration_us"] / 1e6, counts["requests"], counts["bytes"], counts["errors"], latency)
    if run.failures:
        raise LoadFailed(
            f"{target.name}: {run.failures} of {run.requests} requests failed during a wrk run "
            f"(wrk's counts: {run.errors}; `status` is answers with a status of 400 or more)"
        )
    if run.requests == 0:
        raise LoadFailed(f"{target.name}: no request completed in a {duration_s:g} s wrk run")
    return run


def _requests_file(folder: Path, index: int, target: WrkTarget) -> Path:
    path = folder / f"requests-{index}.tsv"
    for request_path, body in target.requests:
        if "\t" in request_path or "\n" in request_path or "\t" in body or "\n" in body:
            raise ValueError(f"{target.name}: a request holds a tab or a newline: {request_path!r} {body!r}")
    path.write_text("".join(f"{p}\t{b}\n" for p, b in target.requests), encoding="utf-8")
    return path


def measure_wrk(
    targets: Sequence[WrkTarget],
    warmups: int,
    runs: int,
    duration_s: float,
    connections: int,
    threads: int = 1,
    timeout_s: float = 5.0,
    progress: Callable[[str], None] | None = None,
) -> list[WrkSeries]:
    """`warmups` runs of each target, then `runs` rounds of one run each, interleaved, the first
    rotating; a run with any failed request stops it all (LoadFailed)."""
    wrk_binary()
    with tempfile.TemporaryDirectory(prefix="hub-bench-wrk-") as tmp:
        files = [_requests_file(Path(tmp), i, t) for i, t in enumerate(targets)]
        for target, path in zip(targets, files, strict=True):
            for _ in range(warmups):
                run_wrk(target, path, duration_s, connections, threads, timeout_s)
        results: list[list[WrkRun]] = [[] for _ in targets]
        for round_no in range(runs):
            shift = round_no % len(targets)
            for index in [*range(shift, len(targets)), *range(shift)]:
                target = targets[index]
                before = None if target.pid is None else process_cpu_s(target.pid)
                run = run_wrk(target, files[index], duration_s, connections, threads, timeout_s)
                if target.pid is not None and before is not None:
                    run = replace(run, cpu_s=process_cpu_s(target.pid) - before)
                results[index].append(run)
            if progress is not None:
                rates = ", ".join(f"{t.name} {r[-1].rps:,.0f}" for t, r in zip(targets, results, strict=True))
                progress(f"round {round_no + 1}/{runs}: req/s {rates}")
    return [WrkSeries(t.name, tuple(r)) for t, r in zip(targets, results, strict=True)]
