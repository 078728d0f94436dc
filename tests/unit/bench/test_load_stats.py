"""The load test's arithmetic and verdicts (bench/load_stats.py, bench/load_client.py's mix):
what a reader of its table relies on."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from bench.load_client import MIX, Workload
from bench.load_stats import (
    KindSummary,
    Outcome,
    Sample,
    classify,
    judge,
    percentile,
    summarise,
    table,
)

UNAVAILABLE = {"extensions": {"code": "DEPARTMENT_UNAVAILABLE"}, "message": "finance is unavailable", "path": ["x"]}


def test_percentile_is_a_measured_value_by_nearest_rank() -> None:
    ordered = [float(n) for n in range(1, 101)]  # 1 ... 100
    assert percentile(ordered, 50) == 50.0
    assert percentile(ordered, 95) == 95.0
    assert percentile(ordered, 99) == 99.0
    assert percentile(ordered, 100) == 100.0
    assert percentile([3.0, 7.0], 50) == 3.0
    assert percentile([3.0, 7.0], 51) == 7.0
    assert percentile([5.0], 99) == 5.0


def test_percentile_refuses_a_rank_outside_the_values() -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], 0)
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], 101)


def test_answer_with_data_and_no_error_is_ok() -> None:
    assert classify(200, {"data": {"financeExpenditure": {"expenditureId": "E1"}}}) is Outcome.OK


def test_answer_whose_only_errors_are_department_unavailable_counts_as_unavailable() -> None:
    assert classify(200, {"data": {"financeExpenditure": None}, "errors": [UNAVAILABLE]}) is Outcome.UNAVAILABLE
    assert classify(200, {"data": {"list": {"nodes": []}}, "errors": [UNAVAILABLE, UNAVAILABLE]}) is Outcome.UNAVAILABLE


def test_any_other_error_status_or_shape_is_a_failure() -> None:
    internal = {"extensions": {"code": "INTERNAL"}, "message": "internal error"}
    assert classify(200, {"data": None, "errors": [UNAVAILABLE, internal]}) is Outcome.FAILED
    assert classify(200, {"data": None, "errors": [{"message": "no code"}]}) is Outcome.FAILED
    assert classify(429, {"data": None, "errors": [UNAVAILABLE]}) is Outcome.FAILED
    assert classify(500, {"data": {"x": 1}}) is Outcome.FAILED
    assert classify(200, {"data": None}) is Outcome.FAILED
    assert classify(200, ["not", "an", "object"]) is Outcome.FAILED


def test_summary_counts_outcomes_and_rates_per_kind_and_overall() -> None:
    samples = [Sample("lookup", float(ms), Outcome.OK) for ms in range(1, 101)]
    samples += [Sample("list", 500.0, Outcome.UNAVAILABLE), Sample("list", 30000.0, Outcome.FAILED)]
    rows = {row.kind: row for row in summarise(samples, 10.0, ["lookup", "list", "unused"])}
    assert [*rows] == ["lookup", "list", "unused", "all"]
    assert (rows["lookup"].requests, rows["lookup"].ok, rows["lookup"].rps) == (100, 100, 10.0)
    assert (rows["lookup"].p50, rows["lookup"].p95, rows["lookup"].p99, rows["lookup"].max) == (50, 95, 99, 100)
    assert (rows["list"].unavailable, rows["list"].failed) == (1, 1)
    # A failure that took 30 s weighs in the latencies like any other answer.
    assert rows["list"].max == 30000.0
    assert rows["unused"].requests == 0
    assert rows["all"].requests == 102 and rows["all"].rps == pytest.approx(10.2)
    assert "unused" in table("phase", list(rows.values()))


def _row(kind: str, p50: float, p99: float, ok: int = 100, unavailable: int = 0, failed: int = 0) -> KindSummary:
    return KindSummary(kind, ok + unavailable + failed, ok, unavailable, failed, 10.0, p50, p50, p99, p99)


def test_others_within_twenty_percent_and_the_down_department_failing_fast_meet_the_targets() -> None:
    up = [_row("lookup", 10.0, 50.0), _row("finance", 10.0, 50.0)]
    down = [_row("lookup", 11.9, 59.9), _row("finance", 1.0, 5.0, ok=0, unavailable=100)]
    assert [v.met for v in judge(up, down, ["finance"])] == [True, True]


def test_others_slower_by_more_than_twenty_percent_miss_the_target() -> None:
    up = [_row("lookup", 10.0, 50.0)]
    assert not judge(up, [_row("lookup", 12.1, 50.0)], [])[0].met
    assert not judge(up, [_row("lookup", 10.0, 60.1)], [])[0].met


def test_a_failure_among_the_others_misses_the_target_whatever_the_latency() -> None:
    up = [_row("lookup", 10.0, 50.0)]
    assert not judge(up, [_row("lookup", 5.0, 20.0, ok=99, failed=1)], [])[0].met
    assert not judge(up, [_row("lookup", 5.0, 20.0, ok=99, unavailable=1)], [])[0].met


def test_down_department_answered_slower_than_when_served_or_not_as_unavailable_misses_the_target() -> None:
    up = [_row("finance", 10.0, 50.0)]
    waited = _row("finance", 10.0, 5000.0, ok=0, unavailable=100)  # some waited for the read's deadline
    failing = _row("finance", 1.0, 5.0, ok=0, unavailable=99, failed=1)
    served = _row("finance", 1.0, 5.0, ok=1, unavailable=99)
    assert [judge(up, [row], ["finance"])[0].met for row in (waited, failing, served)] == [False, False, False]


def test_the_mix_keeps_each_kinds_share_in_every_cycle() -> None:
    work = Workload({kind: [kind.encode()] for kind in MIX})
    cycle = sum(MIX.values())
    sent = [kind for kind, _ in itertools.islice(work.rotation(), 10 * cycle)]
    for start in range(0, len(sent), cycle):
        assert Counter(sent[start : start + cycle]) == MIX


def test_each_kind_walks_its_own_requests_in_turn() -> None:
    work = Workload({kind: [f"{kind}-{n}".encode() for n in range(3)] for kind in MIX})
    bodies = [body for kind, body in itertools.islice(work.rotation(), 8 * sum(MIX.values())) if kind == "expenditure"]
    assert bodies[:4] == [b"expenditure-0", b"expenditure-1", b"expenditure-2", b"expenditure-0"]
