"""The load test's numbers (bench/load.py): what one request came to, the summary of a kind of
request over a phase (percentiles, failures, requests per second), the comparison of the
phase with a department down against the phase with all up, and the printed table.

Pure: no network, no clock, so tests/unit/bench/test_load_stats.py can hold it to its rules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """What a request came to, as its caller sees it."""

    OK = "ok"  # HTTP 200, data, no error
    # HTTP 200 and every error DEPARTMENT_UNAVAILABLE: the down department's part is null (all
    # of the answer, or the relation into it), the rest served: what the hub promises.
    UNAVAILABLE = "unavailable"
    # Anything else: another status, another error code, no answer in time, a broken connection.
    FAILED = "failed"


UNAVAILABLE_CODE = "DEPARTMENT_UNAVAILABLE"


def classify(status: int, body: object) -> Outcome:
    """A GraphQL answer's outcome: its status, and the codes of its errors."""
    if status != 200 or not isinstance(body, dict):
        return Outcome.FAILED
    errors = body.get("errors") or []
    if not errors:
        return Outcome.OK if body.get("data") is not None else Outcome.FAILED
    codes = {(error.get("extensions") or {}).get("code") if isinstance(error, dict) else None for error in errors}
    return Outcome.UNAVAILABLE if codes == {UNAVAILABLE_CODE} else Outcome.FAILED


def percentile(ordered: Sequence[float], p: float) -> float:
    """The p-th percentile of sorted values, nearest rank (the smallest value with at least p% of
    the values at or below it): always one of the values measured, never an interpolation."""
    if not ordered:
        return math.nan
    if not 0 < p <= 100:
        raise ValueError(f"a percentile is in (0, 100], not {p}")
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Sample:
    kind: str
    latency_ms: float
    outcome: Outcome
    at_s: float = 0.0  # when it was sent, from the start of its slice of the phase


@dataclass(frozen=True)
class KindSummary:
    """One kind of request over one phase."""

    kind: str
    requests: int
    ok: int
    unavailable: int
    failed: int
    rps: float
    p50: float
    p95: float
    p99: float
    max: float

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def summarise(samples: Iterable[Sample], seconds: float, kinds: Sequence[str]) -> list[KindSummary]:
    """Per kind (in `kinds`' order, then "all"): counts by outcome, requests per second over the
    phase's `seconds`, and latency percentiles over every request of the kind, failed or not (a
    failure that took 30 s must weigh in the p99)."""
    by_kind: dict[str, list[Sample]] = {kind: [] for kind in kinds}
    everything: list[Sample] = []
    for sample in samples:
        by_kind.setdefault(sample.kind, []).append(sample)
        everything.append(sample)
    rows = []
    for kind, found in [*by_kind.items(), ("all", everything)]:
        ordered = sorted(s.latency_ms for s in found)
        rows.append(
            KindSummary(
                kind=kind,
                requests=len(found),
                ok=sum(1 for s in found if s.outcome is Outcome.OK),
                unavailable=sum(1 for s in found if s.outcome is Outcome.UNAVAILABLE),
                failed=sum(1 for s in found if s.outcome is Outcome.FAILED),
                rps=len(found) / seconds if seconds > 0 else math.nan,
                p50=percentile(ordered, 50),
                p95=percentile(ordered, 95),
                p99=percentile(ordered, 99),
                max=ordered[-1] if ordered else math.nan,
            )
        )
    return rows


# With a department down, no kind of request may be slower than with all up by more than this:
# the kinds that read it fail fast (they wait for no deadline), the others are not held up.
TOLERANCE = 0.20


@dataclass(frozen=True)
class Verdict:
    kind: str
    what: str
    met: bool


def judge(up: Sequence[KindSummary], down: Sequence[KindSummary], touching: Sequence[str]) -> list[Verdict]:
    """The issue's targets for the phase with a department down, per kind.

    A kind that reads the down department (`touching`) gets every answer DEPARTMENT_UNAVAILABLE
    (no other error, none served in full); every other kind is served in full. Every kind's p50
    and p99 stay within TOLERANCE of the all-up phase's: for the kinds that read the department,
    that is failing fast, not waiting for a read's deadline (5 s by default, against answers of
    a few hundred milliseconds). The bound is relative because in a closed loop every request
    also queues behind the others in the hub, which a loaded machine lengthens."""
    before = {row.kind: row for row in up}
    verdicts = []
    for row in down:
        if row.kind == "all" or row.kind not in before:
            continue
        base = before[row.kind]
        p50, p99 = row.p50 / base.p50 - 1, row.p99 / base.p99 - 1
        fast = p50 <= TOLERANCE and p99 <= TOLERANCE
        latency = f"p50 {p50 * 100:+.0f}% and p99 {p99 * 100:+.0f}% against all up (at most +{TOLERANCE:.0%})"
        if row.kind in touching:
            met = row.failed == 0 and row.ok == 0 and fast
            what = f"every answer DEPARTMENT_UNAVAILABLE ({row.unavailable:,} of {row.requests:,}), {latency}"
        else:
            met = row.failed == 0 and row.unavailable == 0 and fast
            what = f"served in full ({row.ok:,} of {row.requests:,}), {latency}"
        verdicts.append(Verdict(row.kind, what, met))
    return verdicts


def table(title: str, rows: Sequence[KindSummary]) -> str:
    """One phase as a fixed-width table."""
    width = max(len(r.kind) for r in rows)
    lines = [
        title,
        f"{'kind':<{width}}  {'requests':>8}  {'ok':>7}  {'unavail.':>8}  {'failed':>6}  {'req/s':>7}  "
        f"{'p50 ms':>7}  {'p95 ms':>7}  {'p99 ms':>7}  {'max ms':>8}",
    ]
    for r in rows:
        lines.append(
            f"{r.kind:<{width}}  {r.requests:>8,}  {r.ok:>7,}  {r.unavailable:>8,}  {r.failed:>6,}  {r.rps:>7.1f}  "
            f"{r.p50:>7.1f}  {r.p95:>7.1f}  {r.p99:>7.1f}  {r.max:>8.1f}"
        )
    return "\n".join(lines)


def verdict_lines(verdicts: Sequence[Verdict]) -> str:
    return "\n".join(f"  {v.kind}: {v.what}: {'met' if v.met else 'NOT met'}" for v in verdicts)
