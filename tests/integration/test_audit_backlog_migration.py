"""Migration 0013 (the person index's backlog) on SQLite and PostgreSQL: the upgrade adds the
backlog table beside a trail that has none; the downgrade to 0012 moves the persons still in the
backlog into the person table, as the hub would have, so the log still verifies and a citizen's
persons are still found."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import URL

from hub.audit.backlog import backlog_row
from hub.audit.merkle import Frontier
from hub.audit.rows import rows_at, stage
from hub.audit.store import EVENTS, GROW, NODES, PERSONS
from hub.audit.verify import verify_log
from hub.db.engine import hub_engine, sessions
from hub.migrate import alembic_config
from tests.integration.test_audit_person_backlog import ENTITIES, crowd
from tests.servers import fresh_database
from tests.unit.audit.test_writer import event

BACKLOG = sa.table(
    "hub_audit_person_backlog",
    sa.column("position", sa.BigInteger),
    sa.column("at_us", sa.BigInteger),
    sa.column("runs", sa.Text),
    sa.column("persons", sa.LargeBinary),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def at_head(request: pytest.FixtureRequest, tmp_path: Path) -> URL:
    if request.param == "sqlite":
        url = URL.create("sqlite+aiosqlite", database=str(tmp_path / "hub.db"))
    else:
        url = fresh_database("postgresql", "hub_it_backlog_migration")
    command.upgrade(alembic_config(url), "0012")
    command.upgrade(alembic_config(url), "0013")
    return url


async def _write(url: URL) -> None:
    """Events 0 and 2 with persons in the index, event 1 (300 persons) in the backlog, as the
    PostgreSQL flush leaves them before its mover ran."""
    staged = [stage(event(0)), stage(crowd(1)), stage(event(2))]
    engine = hub_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(GROW, {"count": 3})
            rows = rows_at(staged, 0, Frontier())
            await connection.execute(EVENTS, rows.events)
            await connection.execute(PERSONS, [p for p in rows.persons if p["position"] != 1])
            await connection.execute(NODES, rows.nodes)
            await connection.execute(BACKLOG.insert(), [backlog_row(staged[1], 1)])
    finally:
        await engine.dispose()


async def _person_state(url: URL, backlog: bool) -> tuple[dict[int, int], set[str]]:
    """Persons per event in the index, their entities; whether the backlog table is there is `backlog`."""
    engine = hub_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                sa.text("SELECT position, count(*) FROM hub_audit_person GROUP BY position ORDER BY position")
            )
            per_event = {p: n for p, n in rows}
            entities = await connection.execute(sa.text("SELECT DISTINCT entities FROM hub_audit_person"))
            tables = await connection.run_sync(lambda c: sa.inspect(c).get_table_names())
            assert ("hub_audit_person_backlog" in tables) == backlog
            return per_event, {e for (e,) in entities}
    finally:
        await engine.dispose()


async def _verified(url: URL) -> bool:
    engine = hub_engine(url)
    try:
        return (await verify_log(sessions(engine), None)).ok
    finally:
        await engine.dispose()


def test_the_downgrade_moves_the_backlog_into_the_person_table_and_the_log_still_verifies(at_head: URL) -> None:
    asyncio.run(_write(at_head))
    assert asyncio.run(_verified(at_head))
    assert asyncio.run(_person_state(at_head, True))[0] == {0: 1, 2: 1}
    command.downgrade(alembic_config(at_head), "0012")
    per_event, entities = asyncio.run(_person_state(at_head, False))
    assert per_event == {0: 1, 1: 300, 2: 1}
    assert set(ENTITIES) <= entities
    # Back at 0013, with an empty backlog: every event's persons match its digest.
    command.upgrade(alembic_config(at_head), "0013")
    assert asyncio.run(_verified(at_head))
    assert asyncio.run(_person_state(at_head, True))[0] == {0: 1, 1: 300, 2: 1}
