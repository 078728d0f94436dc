"""The printed tables and the JSON records of W1 and W1-access runs."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bench.machine import Machine
from bench.measure import Timings
from bench.w1_access import MASKED, PLAIN, WITHHELD, AccessCheck

# Issue 5 (speed): the hub at most twice the physical limit, and faster than PostGraphile.
TARGET_RATIO = 2.0
# Issue 3 ("Numbers"): access control under 10% of the request.
TARGET_ACCESS_SHARE = 0.10


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
    postgraphile: Timings
    postgraphile_query: str
    postgraphile_options: tuple[str, ...]

    @property
    def limit(self) -> Timings:
        """The physical limit is the faster honest route of this run."""
        return min(self.limits, key=lambda t: t.median_ms)

    @property
    def ratio(self) -> float:
        return self.hub.median_ms / self.limit.median_ms

    @property
    def ratio_postgraphile(self) -> float:
        return self.hub.median_ms / self.postgraphile.median_ms


def _context(started: datetime, m: Machine, code: str, warmups: int, runs: int) -> list[str]:
    return [
        f"date:    {started.isoformat(timespec='seconds')}",
        f"machine: {m.cpu}, {m.cores} cores ({m.usable_cores} usable), {m.kernel}",
        f"         {m.python}, PostgreSQL {m.postgresql} on 127.0.0.1",
        f"hub:     {code}",
        f"runs:    {warmups} warm-ups, then {runs} timed requests per contender, sequential, interleaved",
    ]


def _timings(t: Timings) -> dict[str, object]:
    return {
        "name": t.name,
        "median_ms": t.median_ms,
        "min_ms": t.min_ms,
        "max_ms": t.max_ms,
        "body_bytes": t.body_bytes,
        "samples_ms": list(t.samples_ms),
    }


def _path(folder: Path, workload: str, started: datetime) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    # UTC in the name, so that files sort by time whatever zone the machine is set to.
    return folder / f"{workload}-{started.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"


def table(result: Result) -> str:
    m = result.machine
    limit = result.limit
    rows: Sequence[Timings] = (result.hub, *result.limits, result.postgraphile)
    width = max(len(t.name) for t in rows)
    lines = [
        f"W1: civil affairs' service deliveries, {result.rows:,} rows x 12 fields, one GraphQL list query over HTTP",
        *_context(result.started, m, result.revision, result.warmups, result.runs),
        f"others:  PostGraphile {m.postgraphile} on Node.js {m.node}, same database",
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
        f"data: equal in the hub's and the limit's bodies ({result.rows:,} nodes); the hub's also carries: "
        f"{', '.join(extra) or '-'}",
        "      PostGraphile: the same rows in the same order, 9 fields equal once normalised; the 3 encrypted",
        "      fields as stored (ciphertext: it holds no keys), null exactly where the hub's are",
        f'ratio hub median / limit median = {result.ratio:.2f}x  (against "{limit.name}", the faster limit route)',
        f"ratio hub median / PostGraphile median = {result.ratio_postgraphile:.2f}x  (PostGraphile: no decryption, "
        "no access control, no authentication)",
        f"target (issue 5): at most {TARGET_RATIO:.0f}x the limit: "
        f"{'met' if result.ratio <= TARGET_RATIO else 'NOT met'}; faster than PostGraphile's median: "
        f"{'met' if result.ratio_postgraphile < 1 else 'NOT met'}",
    ]
    return "\n".join(lines)


def write_json(result: Result, folder: Path) -> Path:
    path = _path(folder, "w1", result.started)
    record = {
        "workload": "W1",
        "started": result.started.isoformat(),
        "machine": result.machine.as_dict(),
        "revision": result.revision,
        "query": result.query,
        "rows": result.rows,
        "warmups": result.warmups,
        "runs": result.runs,
        "hub": _timings(result.hub),
        "limits": [_timings(t) for t in result.limits],
        "limit": result.limit.name,
        "ratio": result.ratio,
        "target_ratio": TARGET_RATIO,
        "postgraphile": {
            **_timings(result.postgraphile),
            "version": result.machine.postgraphile,
            "node": result.machine.node,
            "query": result.postgraphile_query,
            "options": list(result.postgraphile_options),
        },
        "ratio_postgraphile": result.ratio_postgraphile,
        "body_members": result.body_members,
    }
    path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    return path


# --- W1-access ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessResult:
    started: datetime  # aware, local time of the machine
    machine: Machine
    revision: str
    query: str
    rows: int
    warmups: int
    runs: int
    caller: str  # who the measured requests come from, in words
    on: Timings  # access checks on: the live policy
    off: Timings  # access checks off: ReleaseEverything
    check: AccessCheck

    @property
    def cost_ms(self) -> float:
        return self.on.median_ms - self.off.median_ms

    @property
    def cost_share(self) -> float:
        """The cost of access control as a share of the request: (on - off) / on, by medians."""
        return self.cost_ms / self.on.median_ms

    @property
    def cost_share_min(self) -> float:
        """The same by the fastest request of each, the least disturbed by the machine."""
        return (self.on.min_ms - self.off.min_ms) / self.on.min_ms

    @property
    def cost_share_paired(self) -> float:
        """The median over rounds of (on - off) / on within one round: both requests of a
        round ran back to back, so a slow spell of the machine mostly cancels out."""
        shares = [(a - b) / a for a, b in zip(self.on.samples_ms, self.off.samples_ms, strict=True)]
        return statistics.median(shares)


def access_table(result: AccessResult) -> str:
    rows = (result.on, result.off)
    width = max(len(t.name) for t in rows)
    check = result.check
    lines = [
        f"W1-access: W1's query ({result.rows:,} rows x 12 fields) with 3 fields masked and 1 withheld, "
        "against access checks off",
        *_context(result.started, result.machine, result.revision, result.warmups, result.runs),
        f"caller:  {result.caller}",
        f"policy:  version {check.policy_version}; masked {', '.join(MASKED)}; withheld {WITHHELD}",
        "",
        f"{'contender':<{width}}  {'median ms':>9}  {'min ms':>8}  {'max ms':>8}  {'body KB':>8}",
    ]
    for t in rows:
        lines.append(
            f"{t.name:<{width}}  {t.median_ms:>9.1f}  {t.min_ms:>8.1f}  {t.max_ms:>8.1f}  {t.body_bytes / 1024:>8.0f}"
        )
    compared = ", ".join(f"{name} {count:,}" for name, count in check.compared.items())
    lines += [
        "",
        f"checked: the other {len(PLAIN)} fields equal in all {result.rows:,} nodes; each masked field is what its",
        f"         mask makes of the plain value; {WITHHELD} is null in every node, with one FORBIDDEN error",
        f"         (count {check.error['extensions']['count']:,}); non-null plain values compared:",
        f"         {compared}",
        f"cost of access control = (on - off) / on = {result.cost_share * 100:.1f}% of the request "
        f"({result.cost_ms:+.1f} ms at the median)",
        f"         by the fastest request of each: {result.cost_share_min * 100:.1f}%; "
        f"median of the per-round shares: {result.cost_share_paired * 100:.1f}%",
        f"target (issue 3): under {TARGET_ACCESS_SHARE * 100:.0f}% of the request",
    ]
    return "\n".join(lines)


def write_access_json(result: AccessResult, folder: Path) -> Path:
    path = _path(folder, "w1-access", result.started)
    check = result.check
    record = {
        "workload": "W1-access",
        "started": result.started.isoformat(),
        "machine": result.machine.as_dict(),
        "revision": result.revision,
        "query": result.query,
        "rows": result.rows,
        "warmups": result.warmups,
        "runs": result.runs,
        "caller": result.caller,
        "policy_version": check.policy_version,
        "masked": list(MASKED),
        "withheld": WITHHELD,
        "on": _timings(result.on),
        "off": _timings(result.off),
        "cost_ms": result.cost_ms,
        "cost_share": result.cost_share,
        "cost_share_min": result.cost_share_min,
        "cost_share_paired": result.cost_share_paired,
        "target_share": TARGET_ACCESS_SHARE,
        "check": {
            "masked_paths": check.masked_paths,
            "withheld_paths": check.withheld_paths,
            "error": check.error,
            "compared": check.compared,
        },
        "body_members": check.body_members,
    }
    path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    return path
