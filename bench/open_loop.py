"""Open-loop load: requests sent on a fixed schedule, request i at t0 + i / rate, whatever the
answers do; latency counted from each request's scheduled time.

A closed-loop client (send, wait, send) slows down with a slow server and then misses exactly
the requests that would have waited: coordinated omission. Here a slow answer delays nothing:
a clock thread fires each request on time and up to `connections` requests are in flight at
once, each on a kept-alive HTTP/1.1 connection of its own. When a send is delayed all the same
(the event loop busy, or every connection waiting on a server that is behind), the request
still counts from its scheduled time, and the send is counted late (more than LATE_MS after
schedule), with the worst lateness; sends that found every connection busy are counted apart
(`queued`), so a struggling generator shows and is told from a saturated server. A request
not answered within `timeout_s` of its scheduled time counts as an error.

The generator runs in a process of its own (`python -m bench.open_loop`, one job as JSON on
stdin, the samples as JSON on stdout), never in the benchmark's or a server's. It speaks
HTTP/1.1 over asyncio streams rather than through an HTTP client library: less work per
request, and the moment of the send is the write to the socket.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

LATE_MS = 1.0
# uvicorn closes a kept-alive connection after 5 s idle (its default, as `hub serve` and the
# limit app run it); one idle for longer than this is closed here rather than reused, so that a
# request is never written into a connection the server is closing.
IDLE_S = 4.0
# Python's other threads get the interpreter lock within this long when the event loop is
# busy, so the clock thread's fire is not held up by the default 5 ms.
SWITCH_INTERVAL_S = 0.0002


class OpenLoopFailed(RuntimeError):
    """The generator process failed (not a failed request: those are counted)."""


@dataclass(frozen=True)
class OpenLoopJob:
    name: str
    host: str
    port: int
    method: str
    requests: Sequence[tuple[str, str]]  # (path with query string, body or ""), sent in rotation
    rate: float  # requests per second
    warmup_s: float  # sent on the same schedule before the timed window, not counted
    duration_s: float
    headers: Mapping[str, str] = field(default_factory=dict)
    connections: int = 64
    timeout_s: float = 10.0
    graphql: bool = True  # an answer with a top-level `errors` member counts as an error


@dataclass(frozen=True)
class OpenLoopRun:
    """The timed window of one job: per request, in schedule order, its lateness of sending,
    its latency from the scheduled time (None if it failed), its outcome ("ok" or why not) and
    whether it found every connection busy."""

    name: str
    rate: float
    duration_s: float
    late_ms: tuple[float, ...]
    latency_ms: tuple[float | None, ...]
    outcomes: tuple[str, ...]
    queued: tuple[bool, ...]  # all connections were busy when it was due (the server is behind)

    @property
    def sent(self) -> int:
        return len(self.outcomes)

    @property
    def completed(self) -> int:
        return sum(1 for o in self.outcomes if o == "ok")

    @property
    def errors(self) -> int:
        return self.sent - self.completed

    def error_kinds(self) -> dict[str, int]:
        kinds: dict[str, int] = {}
        for outcome in self.outcomes:
            if outcome != "ok":
                kinds[outcome] = kinds.get(outcome, 0) + 1
        return kinds

    def latency(self, percentile: float) -> float:
        """Nearest-rank percentile of the completed requests' latencies, in ms."""
        done = sorted(x for x in self.latency_ms if x is not None)
        if not done:
            return math.nan
        return done[max(0, math.ceil(percentile / 100 * len(done)) - 1)]

    @property
    def late_sends(self) -> int:
        return sum(1 for x in self.late_ms if x > LATE_MS)

    @property
    def queued_sends(self) -> int:
        return sum(self.queued)

    @property
    def worst_late_ms(self) -> float:
        return max(self.late_ms, default=0.0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the generator (runs in its own process) ---------------------------------------------------


def _payload(job: OpenLoopJob, path: str, body: str) -> bytes:
    content = body.encode("utf-8")
    lines = [f"{job.method} {path} HTTP/1.1", f"Host: {job.host}:{job.port}"]
    lines += [f"{name}: {value}" for name, value in job.headers.items()]
    if content:
        lines.append(f"Content-Length: {len(content)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + content


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the connection may be reused, of one HTTP/1.1 answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].split(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    keep = headers.get(b"connection") != b"close"
    if b"content-length" in headers:
        return status, await reader.readexactly(int(headers[b"content-length"])), keep
    if headers.get(b"transfer-encoding") == b"chunked":
        chunks = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append((await reader.readexactly(size + 2))[:-2])
        await reader.readuntil(b"\r\n")  # no trailers are sent
        return status, b"".join(chunks), keep
    return status, await reader.read(), False


def _graphql_errors(body: bytes) -> bool:
    """Whether an answer is not a GraphQL result or carries `errors`."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return True
    return not isinstance(parsed, dict) or bool(parsed.get("errors"))


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _Sample(NamedTuple):
    late_ms: float
    latency_ms: float | None
    outcome: str
    queued: bool  # all connections were busy when it was due


def _late_ms(sent: float | None, scheduled: float) -> float:
    """How late a request was sent; one never sent counts as late as now."""
    return ((time.perf_counter() if sent is None else sent) - scheduled) * 1000


class Generator:
    def __init__(self, job: OpenLoopJob) -> None:
        self.job = job
        self.payloads = [_payload(job, p, b) for p, b in job.requests]
        self.slots = asyncio.Semaphore(job.connections)
        # Kept-alive connections with the moment each fell idle, the last used on top.
        self.idle: list[tuple[Connection, float]] = []
        self.t0 = 0.0

    def scheduled(self, index: int) -> float:
        return self.t0 + index / self.job.rate

    async def one(self, index: int) -> _Sample:
        job, scheduled = self.job, self.scheduled(index)
        loop = asyncio.get_running_loop()
        # The deadline runs from the scheduled time: waiting for a free connection is part of
        # the request's time, and a server that stops answering ends the run no later.
        deadline = loop.time() + (scheduled + job.timeout_s - time.perf_counter())
        queued = self.slots.locked()
        sent: float | None = None
        try:
            async with asyncio.timeout_at(deadline), self.slots:
                connection = None
                try:
                    connection = self._idle_connection() or await asyncio.open_connection(job.host, job.port)
                    reader, writer = connection
                    sent = time.perf_counter()
                    writer.write(self.payloads[index % len(self.payloads)])
                    status, body, keep = await _read_answer(reader)
                except BaseException:
                    self._discard(connection)
                    raise
                if keep:
                    self.idle.append((connection, time.perf_counter()))
                else:
                    self._discard(connection)
            done = time.perf_counter()
        except TimeoutError:
            outcome = "timeout" if sent is not None else "timeout before sending"
            return _Sample(_late_ms(sent, scheduled), None, outcome, queued)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
            return _Sample(_late_ms(sent, scheduled), None, f"connection: {type(error).__name__}", queued)
        late = _late_ms(sent, scheduled)
        if not 200 <= status < 300:
            return _Sample(late, None, f"status {status}", queued)
        if job.graphql and _graphql_errors(body):
            return _Sample(late, None, "graphql errors", queued)
        return _Sample(late, (done - scheduled) * 1000, "ok", queued)

    def _idle_connection(self) -> Connection | None:
        """The most recently used idle connection the server has not closed or is not about to."""
        now = time.perf_counter()
        while self.idle:
            connection, since = self.idle.pop()
            if not connection[0].at_eof() and now - since < IDLE_S:
                return connection
            self._discard(connection)
        return None

    def _discard(self, connection: Connection | None) -> None:
        if connection is not None:
            connection[1].close()

    async def run(self) -> OpenLoopRun:
        job = self.job
        warm = round(job.warmup_s * job.rate)
        total = warm + round(job.duration_s * job.rate)
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task[_Sample]] = []
        all_fired = asyncio.Event()

        def fire(index: int) -> None:
            tasks.append(loop.create_task(self.one(index)))
            if len(tasks) == total:
                all_fired.set()

        def clock() -> None:
            # time.sleep is precise to tens of microseconds; the event loop's own timers wake
            # on whole milliseconds (epoll), which alone would make sends up to 1 ms late.
            for index in range(total):
                delay = self.scheduled(index) - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                loop.call_soon_threadsafe(fire, index)

        self.t0 = time.perf_counter() + 0.05
        thread = threading.Thread(target=clock, name="open-loop clock", daemon=True)
        thread.start()
        await all_fired.wait()
        results = await asyncio.gather(*tasks)
        for (_, writer), _since in self.idle:
            writer.close()
        timed = results[warm:]
        return OpenLoopRun(
            job.name,
            job.rate,
            job.duration_s,
            tuple(r.late_ms for r in timed),
            tuple(r.latency_ms for r in timed),
            tuple(r.outcome for r in timed),
            tuple(r.queued for r in timed),
        )


def _job(raw: dict[str, Any]) -> OpenLoopJob:
    raw["requests"] = [tuple(r) for r in raw["requests"]]
    return OpenLoopJob(**raw)


def main() -> int:
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    job = _job(orjson.loads(sys.stdin.buffer.read()))
    run = asyncio.run(Generator(job).run())
    sys.stdout.buffer.write(orjson.dumps(run.as_dict()))
    return 0


# --- the benchmark's side ----------------------------------------------------------------------


def parse_rates(text: str) -> tuple[float, ...]:
    """Comma-separated positive request rates ("50,100,200"), for the command line."""
    try:
        rates = tuple(float(part) for part in text.split(","))
    except ValueError as error:
        raise ValueError(f"rates must be comma-separated numbers, not {text!r}") from error
    if not rates or any(not math.isfinite(r) or r <= 0 for r in rates):
        raise ValueError(f"rates must be positive, not {text!r}")
    return rates


def run_open_loop(job: OpenLoopJob, cwd: Path) -> OpenLoopRun:
    """Run `job` in a generator process of its own and return its timed window."""
    budget = job.warmup_s + job.duration_s + job.timeout_s + 30
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.open_loop"],
            input=orjson.dumps(asdict(job)),
            capture_output=True,
            cwd=cwd,
            timeout=budget,
        )
    except subprocess.TimeoutExpired as error:
        raise OpenLoopFailed(f"the generator for {job.name} did not finish within {budget:.0f} s") from error
    if done.returncode != 0:
        raise OpenLoopFailed(f"the generator for {job.name} failed:\n{done.stderr.decode(errors='replace')[-3000:]}")
    raw = orjson.loads(done.stdout)
    return OpenLoopRun(
        raw["name"],
        raw["rate"],
        raw["duration_s"],
        tuple(raw["late_ms"]),
        tuple(raw["latency_ms"]),
        tuple(raw["outcomes"]),
        tuple(raw["queued"]),
    )


if __name__ == "__main__":
    sys.exit(main())
