"""What the guard reports of department reads: answered reads timed, reads without an answer
counted by why, and the pool's usage where the connector has a SQLAlchemy pool."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from connectors.base import UnavailableError
from connectors.sql.connector import SqlConnector
from hub.health.breaker import Breaker, BreakerSettings
from hub.health.guard import GuardedConnector
from hub.observe.departments import DepartmentWatch
from hub.observe.metrics import READ_FAILURES, Metrics, pool_usage
from tests.unit.health.test_guard import QUERY, Clock, Database


def watched(database: Database, metrics: Metrics, failures: int = 3) -> GuardedConnector:
    breaker = Breaker("welfare", BreakerSettings(failures=failures, window_s=30, cooldown_s=10), Clock())
    return GuardedConnector("welfare", database, breaker, 100, watch=DepartmentWatch("welfare", metrics, None))


def failures(metrics: Metrics) -> dict[str, float]:
    found = {
        reason: metrics.registry.get_sample_value(
            "hub_department_statement_errors_total", {"department": "welfare", "reason": reason}
        )
        for reason in READ_FAILURES
    }
    return {reason: count or 0.0 for reason, count in found.items()}


def answered(metrics: Metrics) -> float:
    count = metrics.registry.get_sample_value(
        "hub_department_statement_duration_seconds_count", {"department": "welfare"}
    )
    return count or 0.0


async def test_answered_reads_are_timed_and_failures_are_not() -> None:
    metrics = Metrics()
    database = Database()
    connector = watched(database, metrics)
    await connector.fetch(QUERY)
    await connector.count(QUERY.table, None)
    await connector.fetch_by(QUERY.table, "id", [1], ["id"])
    database.mode = "down"
    with pytest.raises(UnavailableError):
        await connector.fetch(QUERY)
    assert answered(metrics) == 3
    assert failures(metrics) == {**dict.fromkeys(READ_FAILURES, 0.0), "unavailable": 1.0}


@pytest.mark.parametrize(("mode", "reason"), [("down", "unavailable"), ("hang", "timeout"), ("refuse", "refused")])
async def test_a_read_without_an_answer_is_counted_by_its_reason(mode: str, reason: str) -> None:
    metrics = Metrics()
    database = Database()
    database.mode = mode
    connector = watched(database, metrics)
    with pytest.raises(Exception):  # noqa: B017, PT011 - each mode raises its own error
        await connector.fetch(QUERY)
    assert failures(metrics) == {**dict.fromkeys(READ_FAILURES, 0.0), reason: 1.0}
    assert answered(metrics) == 0


async def test_reads_refused_by_an_open_circuit_and_cancelled_reads_are_counted_apart() -> None:
    metrics = Metrics()
    database = Database()
    database.mode = "hang"
    connector = watched(database, metrics, failures=1)
    read = asyncio.create_task(connector.fetch(QUERY))
    await asyncio.sleep(0.01)
    read.cancel()
    with pytest.raises(asyncio.CancelledError):
        await read
    database.mode = "down"
    for _ in range(2):
        with pytest.raises(UnavailableError):
            await connector.fetch(QUERY)
    assert failures(metrics) == {
        **dict.fromkeys(READ_FAILURES, 0.0),
        "abandoned": 1.0,
        "unavailable": 1.0,
        "circuit_open": 1.0,
    }


async def test_a_sql_connector_s_pool_reports_its_size_and_connections_in_use(tmp_path: Path) -> None:
    connector = SqlConnector(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}", pool_size=3)
    try:
        usage = pool_usage(connector.engine)
        assert usage is not None
        assert usage() == (0, 3)
        async with connector.engine.connect():
            assert usage() == (1, 3)
    finally:
        await connector.close()


def test_a_connector_without_a_pool_reports_none() -> None:
    assert pool_usage(None) is None
    assert pool_usage(object()) is None
