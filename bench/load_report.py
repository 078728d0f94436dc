"""The printed tables and the JSON records of the load workloads: W6 (closed loop, requests
per second) and W2 (open loop, latency at fixed rates)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.load_wrk import WrkSeries
from bench.machine import Machine
from bench.open_loop import LATE_MS, OpenLoopRun

# W6's targets (the issue): the hub's requests per second as a share of the bare route's.
TARGET_NORMAL = 0.40
TARGET_TRUSTED = 0.70
# W2's target: p99 under 50 ms at 100 requests per second.
TARGET_P99_MS = 50.0
TARGET_RATE = 100.0


def _machine(started: datetime, m: Machine, code: str) -> list[str]:
    return [
        f"date:    {started.isoformat(timespec='seconds')}",
        f"machine: {m.cpu}, {m.cores} cores ({m.usable_cores} usable), {m.kernel}",
        f"         {m.python}, PostgreSQL {m.postgresql} on 127.0.0.1",
        f"hub:     {code}",
    ]


def _path(folder: Path, workload: str, started: datetime) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    # UTC in the name, so that files sort by time whatever zone the machine is set to.
    return folder / f"{workload}-{started.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


# --- W6 ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class W6Result:
    started: datetime  # aware, local time of the machine
    machine: Machine
    revision: str
    query: str
    document_id: str
    keys: int
    wrk: str  # wrk's version line
    connections: int
    threads: int
    duration_s: float
    warmups: int
    runs: int
    bare: WrkSeries
    normal: WrkSeries
    trusted: WrkSeries
    check: dict[str, Any]  # what bench/w6.py verify found

    def share(self, series: WrkSeries) -> float:
        """A contender's median requests per second over the bare route's."""
        return series.rps[0] / self.bare.rps[0]


def w6_table(result: W6Result) -> str:
    rows = (result.bare, result.normal, result.trusted)
    width = max(len(s.name) for s in rows)
    lines = [
        "W6: one civil affairs service delivery by key, 12 fields, 32 concurrent clients (closed loop)",
        *_machine(result.started, result.machine, result.revision),
        f"load:    {result.wrk}: {result.threads} thread, {result.connections} connections, "
        f"{result.duration_s:g} s per run; {result.warmups} warm-up runs, then {result.runs} timed runs",
        f"         per contender, interleaved; {result.keys:,} keys in rotation",
        "",
        f"{'contender':<{width}}  {'req/s median (min-max)':>24}  {'p50 ms':>7}  {'p99 ms':>7}  "
        f"{'B/answer':>8}  {'x bare':>6}",
    ]
    for s in rows:
        median, low, high = s.rps
        span = f"{median:,.0f} ({low:,.0f}-{high:,.0f})"
        lines.append(
            f"{s.name:<{width}}  {span:>24}  {s.latency_ms('p50'):>7.1f}  {s.latency_ms('p99'):>7.1f}  "
            f"{s.bytes_per_response:>8.0f}  {result.share(s):>6.2f}"
        )
    members = result.check["body_members"].get(result.normal.name, [])
    normal, trusted = result.share(result.normal), result.share(result.trusted)
    lines += [
        "",
        f"checked: the same data for {len(result.check['keys'])} of the {result.keys:,} keys from all three; "
        f"the hub's body also carries: {', '.join(m for m in members if m != 'data') or '-'}",
        "failed requests: none (answers of status 400 or more, socket errors and timeouts: 0 in every run)",
        "latency: the median over runs of each run's percentile, as wrk measures it (closed loop); B/answer:",
        "         bytes read per answer, headers included",
        f"hub, normal path / bare route       = {normal * 100:.0f}%  "
        f"(target at least {TARGET_NORMAL * 100:.0f}%: {_met(normal >= TARGET_NORMAL)})",
        f"hub, trusted document / bare route  = {trusted * 100:.0f}%  "
        f"(target at least {TARGET_TRUSTED * 100:.0f}%: {_met(trusted >= TARGET_TRUSTED)})",
    ]
    return "\n".join(lines)


def _series(series: WrkSeries) -> dict[str, Any]:
    median, low, high = series.rps
    return {
        "name": series.name,
        "rps_median": median,
        "rps_min": low,
        "rps_max": high,
        "latency_p50_ms": series.latency_ms("p50"),
        "latency_p99_ms": series.latency_ms("p99"),
        "bytes_per_response": series.bytes_per_response,
        "runs": [r.as_dict() for r in series.runs],
    }


def write_w6_json(result: W6Result, folder: Path) -> Path:
    path = _path(folder, "w6", result.started)
    record = {
        "workload": "W6",
        "started": result.started.isoformat(),
        "machine": result.machine.as_dict(),
        "revision": result.revision,
        "query": result.query,
        "document_id": result.document_id,
        "keys": result.keys,
        "load": {
            "tool": result.wrk,
            "threads": result.threads,
            "connections": result.connections,
            "duration_s": result.duration_s,
            "warmups": result.warmups,
            "runs": result.runs,
        },
        "bare": _series(result.bare),
        "normal": _series(result.normal),
        "trusted": _series(result.trusted),
        "share_normal": result.share(result.normal),
        "share_trusted": result.share(result.trusted),
        "target_normal": TARGET_NORMAL,
        "target_trusted": TARGET_TRUSTED,
        "check": result.check,
    }
    path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    return path


# --- W2 ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class W2Result:
    started: datetime
    machine: Machine
    revision: str
    query: str
    pages: int
    connections: int
    warmup_s: float
    duration_s: float
    runs: tuple[tuple[OpenLoopRun, OpenLoopRun], ...]  # per rate: the hub's, the generator check's
    check: dict[str, Any]  # what bench/w2.py verify found

    def at(self, rate: float) -> OpenLoopRun | None:
        return next((hub for hub, _ in self.runs if hub.rate == rate), None)

    @property
    def target_met(self) -> bool | None:
        """p99 under 50 ms and no error at 100 requests per second; None when not run."""
        hub = self.at(TARGET_RATE)
        if hub is None:
            return None
        return hub.errors == 0 and hub.latency(99) < TARGET_P99_MS


def _run_line(run: OpenLoopRun, width: int) -> str:
    return (
        f"{run.rate:>6g}  {run.name:<{width}}  {run.sent:>5}  {run.completed:>9}  {run.errors:>6}  "
        f"{run.latency(50):>6.1f}  {run.latency(90):>6.1f}  {run.latency(99):>6.1f}  {run.latency(100):>7.1f}  "
        f"{run.late_sends:>8}  {run.worst_late_ms:>8.2f}  {run.queued_sends:>6}"
    )


def w2_table(result: W2Result) -> str:
    everyone: Sequence[OpenLoopRun] = [r for pair in result.runs for r in pair]
    width = max(len(r.name) for r in everyone)
    related = result.check["related_per_page"]
    lines = [
        "W2: 50 civil affairs service deliveries with the finance expenditure of each (a relation across",
        "    departments), at fixed request rates (open loop)",
        *_machine(result.started, result.machine, result.revision),
        f"load:    one generator process, up to {result.connections} connections; request i sent at t0 + i/rate "
        f"whatever the answers;",
        f"         latency from each request's scheduled time; {result.warmup_s:g} s warm-up, then "
        f"{result.duration_s:g} s timed per rate; {result.pages} pages in rotation",
        "",
        f"{'req/s':>6}  {'contender':<{width}}  {'sent':>5}  {'completed':>9}  {'errors':>6}  {'p50':>6}  "
        f"{'p90':>6}  {'p99':>6}  {'max':>7}  {'late>' + format(LATE_MS, 'g') + 'ms':>8}  {'worst ms':>8}  "
        f"{'queued':>6}",
    ]
    lines += [_run_line(r, width) for r in everyone]
    failed = [f"{r.name} at {r.rate:g}/s: {r.error_kinds()}" for r in everyone if r.errors]
    met = result.target_met
    hub = result.at(TARGET_RATE)
    verdict = (
        f"not run (no {TARGET_RATE:g} req/s rate)"
        if met is None or hub is None
        else f"{_met(met)} (p99 {hub.latency(99):.2f} ms, {hub.errors} errors)"
    )
    lines += [
        "",
        f"latency: ms from the scheduled send to the whole answer, of completed requests; late: sends more than "
        f"{LATE_MS:g} ms",
        f"         after schedule; queued: sends that found all {result.connections} connections busy (the server "
        "was behind)",
        "generator check: the same requests to a route answering a ready-made body of "
        f"{result.check['check_bytes']:,} bytes",
        "         (the hub's median), no work: the generator's own floor",
        f"checked: {result.pages} pages, no errors, 50 deliveries each, {min(related)}-{max(related)} of them with "
        f"their expenditure; the hub's body also carries: "
        f"{', '.join(m for m in result.check['body_members'] if m != 'data') or '-'}",
    ]
    if failed:
        lines.append(f"errors:  {'; '.join(failed)}")
    lines.append(f"target:  p99 under {TARGET_P99_MS:g} ms at {TARGET_RATE:g} req/s: {verdict}")
    return "\n".join(lines)


def _open_loop(run: OpenLoopRun) -> dict[str, Any]:
    return {
        "name": run.name,
        "rate": run.rate,
        "duration_s": run.duration_s,
        "sent": run.sent,
        "completed": run.completed,
        "errors": run.errors,
        "error_kinds": run.error_kinds(),
        "latency_ms": {f"p{p}": run.latency(p) for p in (50, 90, 99)} | {"max": run.latency(100)},
        "late_sends": run.late_sends,
        "worst_late_ms": run.worst_late_ms,
        "queued_sends": run.queued_sends,
        "samples": {
            "late_ms": list(run.late_ms),
            "latency_ms": list(run.latency_ms),
            "outcomes": list(run.outcomes),
            "queued": list(run.queued),
        },
    }


def write_w2_json(result: W2Result, folder: Path) -> Path:
    path = _path(folder, "w2", result.started)
    record = {
        "workload": "W2",
        "started": result.started.isoformat(),
        "machine": result.machine.as_dict(),
        "revision": result.revision,
        "query": result.query,
        "pages": result.pages,
        "load": {
            "connections": result.connections,
            "warmup_s": result.warmup_s,
            "duration_s": result.duration_s,
            "late_ms": LATE_MS,
        },
        "rates": [{"rate": hub.rate, "hub": _open_loop(hub), "check": _open_loop(check)} for hub, check in result.runs],
        "target": {"p99_ms": TARGET_P99_MS, "rate": TARGET_RATE, "met": result.target_met},
        "check": result.check,
    }
    path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2, default=str))
    return path
