"""The printed table and the JSON record of one W1 run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bench.machine import Machine
from bench.measure import Timings

# DESIGN.md: the later speed issue holds the hub to at most twice the physical limit.
TARGET_RATIO = 2.0


@dataclass(frozen=True)
class Result:
    started: datetime  # aware, local time of the machine
    machine: Machine
    revision: str  # the hub's commit, "+uncommitted" when its working tree differs
    query: str
    rows: int
    warmups: int
    runs: int
    hub: Timings
    limits: tuple[Timings, ...]
    body_members: dict[str, list[str]]

    @property
    def limit(self) -> Timings:
        """The physical limit is the faster honest route of this run."""
        return min(self.limits, key=lambda t: t.median_ms)

    @property
    def ratio(self) -> float:
        return self.hub.median_ms / self.limit.median_ms


def table(result: Result) -> str:
    m = result.machine
    limit = result.limit
    rows: Sequence[Timings] = (result.hub, *result.limits)
    width = max(len(t.name) for t in rows)
    lines = [
        f"W1: civil affairs' service deliveries, {result.rows:,} rows x 12 fields, one GraphQL list query over HTTP",
        f"date:    {result.started.isoformat(timespec='seconds')}",
        f"machine: {m.cpu}, {m.cores} cores ({m.usable_cores} usable), {m.kernel}",
        f"         {m.python}, PostgreSQL {m.postgresql} on 127.0.0.1",
        f"hub:     {result.revision}",
        f"runs:    {result.warmups} warm-ups, then {result.runs} timed requests per contender, sequential, interleaved",
        "",
        f"{'contender':<{width}}  {'median ms':>9}  {'min ms':>8}  {'max ms':>8}  {'body KB':>8}  {'x limit':>7}",
    ]
    for t in rows:
        lines.append(
            f"{t.name:<{width}}  {t.median_ms:>9.1f}  {t.min_ms:>8.1f}  {t.max_ms:>8.1f}  "
            f"{t.body_bytes / 1024:>8.0f}  {t.median_ms / limit.median_ms:>7.2f}"
        )
    extra = sorted(set(result.body_members.get(result.hub.name, [])) - {"data"})
    lines += [
        "",
        f"data: equal in every body ({result.rows:,} nodes); the hub's body also carries: {', '.join(extra) or '-'}",
        f'ratio hub median / limit median = {result.ratio:.2f}x  (against "{limit.name}", the faster limit route)',
        f"target (DESIGN.md, later speed issue): at most {TARGET_RATIO:.0f}x",
    ]
    return "\n".join(lines)


def write_json(result: Result, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    # UTC in the name, so that files sort by time whatever zone the machine is set to.
    stamp = result.started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"w1-{stamp}.json"

    def timings(t: Timings) -> dict[str, object]:
        return {
            "name": t.name,
            "median_ms": t.median_ms,
            "min_ms": t.min_ms,
            "max_ms": t.max_ms,
            "body_bytes": t.body_bytes,
            "samples_ms": list(t.samples_ms),
        }

    record = {
        "workload": "W1",
        "started": result.started.isoformat(),
        "machine": result.machine.as_dict(),
        "revision": result.revision,
        "query": result.query,
        "rows": result.rows,
        "warmups": result.warmups,
        "runs": result.runs,
        "hub": timings(result.hub),
        "limits": [timings(t) for t in result.limits],
        "limit": result.limit.name,
        "ratio": result.ratio,
        "target_ratio": TARGET_RATIO,
        "body_members": result.body_members,
    }
    path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    return path
