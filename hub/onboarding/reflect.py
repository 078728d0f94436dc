"""What a department database holds: its tables, their columns, keys and foreign keys, with a
sample of each column's values, read through SQLAlchemy's inspector.

The inspector is synchronous; it runs inside the async engine's `run_sync`, so one code path
serves every backend the connectors do (SQLite, PostgreSQL, MariaDB/MySQL). Sampling reads
one statement per table, never more than `sample_size` rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


class ReflectionError(Exception):
    """The database does not hold what was asked for; the message says what it holds."""


@dataclass(frozen=True)
class Column:
    name: str
    type: sa.types.TypeEngine[Any]
    nullable: bool
    samples: tuple[object, ...] = ()


@dataclass(frozen=True)
class ForeignKey:
    column: str
    target_table: str
    target_column: str


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    # Single columns declared unique (constraint or unique index): a key where there is no
    # primary key.
    unique: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...]

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)


async def reflect(engine: AsyncEngine, tables: Sequence[str] = (), sample_size: int = 200) -> list[Table]:
    """The named tables (every table when none is named), each with a sample of its values
    (none when `sample_size` is 0)."""
    async with engine.connect() as conn:
        shapes = await conn.run_sync(_inspect, tuple(tables))
        if sample_size == 0:
            return shapes
        sampled = []
        for table in shapes:
            columns: list[sa.ColumnClause[Any]] = [sa.column(column.name) for column in table.columns]
            statement = sa.select(*columns).select_from(sa.table(table.name)).limit(sample_size)
            rows = (await conn.execute(statement)).all()
            sampled.append(
                Table(
                    table.name,
                    tuple(
                        Column(column.name, column.type, column.nullable, tuple(row[i] for row in rows))
                        for i, column in enumerate(table.columns)
                    ),
                    table.primary_key,
                    table.unique,
                    table.foreign_keys,
                )
            )
        return sampled


async def reflect_present(engine: AsyncEngine, tables: Sequence[str]) -> dict[str, Table]:
    """The shapes of those of `tables` the database holds (no samples), by name."""
    async with engine.connect() as conn:
        return await conn.run_sync(_inspect_present, tuple(tables))


def _inspect_present(conn: Connection, wanted: tuple[str, ...]) -> dict[str, Table]:
    present = set(sa.inspect(conn).get_table_names())
    wanted = tuple(name for name in wanted if name in present)
    if not wanted:
        return {}
    return {table.name: table for table in _inspect(conn, wanted)}


def _inspect(conn: Connection, wanted: tuple[str, ...]) -> list[Table]:
    inspector = sa.inspect(conn)
    present = inspector.get_table_names()
    missing = [name for name in wanted if name not in present]
    if missing:
        held = ", ".join(sorted(present)) or "no tables"
        raise ReflectionError(f"table {', '.join(missing)} is not in the database (it holds: {held})")
    tables = []
    for name in wanted or sorted(present):
        columns = tuple(
            Column(item["name"], item["type"], bool(item.get("nullable", True))) for item in inspector.get_columns(name)
        )
        primary = tuple(inspector.get_pk_constraint(name).get("constrained_columns") or ())
        unique = [
            item["column_names"][0] for item in inspector.get_unique_constraints(name) if len(item["column_names"]) == 1
        ]
        unique += [
            str(item["column_names"][0])
            for item in inspector.get_indexes(name)
            if item.get("unique") and len(item["column_names"]) == 1
        ]
        foreign = tuple(
            ForeignKey(item["constrained_columns"][0], item["referred_table"], item["referred_columns"][0])
            for item in inspector.get_foreign_keys(name)
            if len(item["constrained_columns"]) == 1
        )
        tables.append(Table(name, columns, primary, tuple(dict.fromkeys(unique)), foreign))
    return tables
