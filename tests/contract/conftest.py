"""The backends the connector contract runs on, and the tables the tests read.

`backend` runs a test on memory, SQLite, PostgreSQL and MariaDB; `sql_backend` on the three
databases only. A test loads its own uniquely named table through a separate write engine (the
connector under test is read-only), and the table is dropped afterwards. A server that cannot
be reached skips its tests with the reason, or fails them when CI=true, so a green CI run
cannot hide skipped databases.

The database tables are declared in deliberately unhelpful collations (PostgreSQL ICU English,
MariaDB's case-insensitive PAD SPACE default, SQLite NOCASE): code-point, case-sensitive
results must come from the connector, not from a lucky default.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connectors.base import ColumnSpec, Connector, Filter, Kind, OrderKey, Query, Row, TableSpec
from connectors.memory import MemoryConnector
from connectors.sql import SqlConnector
from tests.servers import reachable_url

SERVER_BACKENDS = ("postgresql", "mariadb")
SQL_BACKENDS = ("sqlite", *SERVER_BACKENDS)
BACKENDS = ("memory", *SQL_BACKENDS)

# Collations that sort without case (and, for MariaDB, ignore trailing spaces).
LOOSE_COLLATIONS = {"postgresql": "en-x-icu", "mariadb": "utf8mb4_general_ci", "sqlite": "NOCASE"}


def _spec(table: str, key: str, /, **kinds: Kind) -> TableSpec:
    return TableSpec(table, key, {column: ColumnSpec(column, kind) for column, kind in kinds.items()})


PEOPLE = _spec(
    "people",
    "id",
    id=Kind.INT,
    name=Kind.STRING,
    city=Kind.STRING,
    age=Kind.INT,
    score=Kind.FLOAT,
    amount=Kind.DECIMAL,
    active=Kind.BOOL,
    born=Kind.DATE,
    seen=Kind.DATETIME,
    photo=Kind.BYTES,
)

_D = Decimal
_T = dt.datetime

# id: name, city, age, score, amount, active, born, seen, photo
_PEOPLE: dict[int, tuple[Any, ...]] = {
    1: ("apple", "Beijing", 30, 1.5, _D("12.50"), True, dt.date(1990, 1, 2), _T(2024, 3, 1, 8), b"\x00\x01"),
    2: ("Apple", "beijing", 25, 2.25, _D("0.10"), False, dt.date(1985, 12, 31), _T(2024, 3, 1, 23, 30), None),
    3: ("apple ", None, 30, None, _D("100.00"), True, None, None, b""),
    4: ("", "Shanghai", None, -1.0, _D("-3.75"), None, dt.date(2000, 2, 29), _T(2023, 12, 31, 16), None),
    5: ("张三", "上海", 41, 0.0, _D("99999.99"), True, dt.date(1970, 1, 1), _T(2024, 1, 1), b"\xff"),
    6: ("李四", "北京", 25, 3.5, None, False, dt.date(1999, 9, 9), _T(2024, 6, 30, 12, 0, 0, 123456), None),
    7: ("a%b", "Beijing", 18, 1.0, _D("5.00"), True, None, _T(2024, 3, 1, 8), None),
    8: ("a_b", "Shanghai", None, 2.5, _D("5.00"), False, dt.date(2001, 5, 5), None, None),
    9: ("axb", "beijing", 60, 2.5, _D("7.25"), None, dt.date(1964, 4, 4), _T(2022, 2, 2, 2, 2, 2), None),
    10: ("Zebra", None, 18, -0.5, _D("0.00"), True, dt.date(2010, 10, 10), _T(2024, 3, 2), None),
    11: (None, "Beijing", 30, 9.75, _D("1.99"), False, dt.date(1988, 8, 8), _T(2024, 3, 1, 7, 59, 59), None),
    12: ("a/b", "Shanghai", 41, 0.5, _D("3.33"), True, dt.date(1977, 7, 7), None, None),
    13: ("😀", None, None, None, None, None, None, None, None),
    14: ("Ａ", "上海", 25, 4.0, _D("42.00"), False, dt.date(1995, 5, 15), _T(2024, 5, 15, 9, 30), b"ab"),
}
PEOPLE_ROWS: list[Row] = [
    {"id": key, **dict(zip(list(PEOPLE.columns)[1:], values, strict=True))} for key, values in _PEOPLE.items()
]


@dataclass
class Loaded:
    """A table loaded into one backend, and the connector that reads it."""

    connector: Connector
    table: TableSpec
    # The connector's engine, for counting statements; None for the memory backend.
    engine: AsyncEngine | None

    async def fetch(
        self,
        columns: Sequence[str] | None = None,
        where: Filter | None = None,
        order: Sequence[OrderKey] = (),
        **page: Any,
    ) -> list[Row]:
        names = tuple(self.table.columns) if columns is None else tuple(columns)
        query = Query(self.table, names, where, tuple(order), **page)
        return (await self.connector.fetch(query)).rows

    async def ids(self, where: Filter | None = None, order: Sequence[OrderKey] = (), **page: Any) -> list[Any]:
        """The keys of the matching rows, in the order read."""
        rows = await self.fetch((self.table.key,), where, order, **page)
        return [row[self.table.key] for row in rows]


@dataclass
class Backend:
    """One database (or memory) that tables are loaded into for a test."""

    name: str
    url: str | None = None
    _write: AsyncEngine | None = None
    _made: list[tuple[sa.Table, Loaded]] = field(default_factory=list)
    _views: list[str] = field(default_factory=list)

    @property
    def is_sql(self) -> bool:
        return self.url is not None

    async def load(
        self, table: TableSpec, rows: Sequence[Row], *, timezone: str = "Asia/Shanghai", **options: Any
    ) -> Loaded:
        if self.url is None:
            memory = MemoryConnector({table.name: rows}, timezone=timezone)
            return Loaded(memory, table, None)
        renamed = TableSpec(f"contract_{uuid.uuid4().hex[:12]}", table.key, table.columns)
        sa_table = self._sa_table(renamed)
        async with self.write.begin() as conn:
            await conn.run_sync(sa_table.create)
            await self._insert(conn, sa_table, renamed, rows)
        connector = SqlConnector(self.url, timezone=timezone, **options)
        loaded = Loaded(connector, renamed, connector.engine)
        self._made.append((sa_table, loaded))
        return loaded

    async def load_people(self, **options: Any) -> Loaded:
        return await self.load(PEOPLE, PEOPLE_ROWS, **options)

    async def replace(self, loaded: Loaded, rows: Sequence[Row]) -> None:
        """Make `rows` the whole content of a loaded table."""
        if self.url is None:
            loaded.connector = MemoryConnector({loaded.table.name: rows})
            return
        sa_table = next(t for t, made in self._made if made is loaded)
        async with self.write.begin() as conn:
            await conn.execute(sa_table.delete())
            await self._insert(conn, sa_table, loaded.table, rows)

    async def create_view(self, select_sql: str, timezone: str = "Asia/Shanghai", **options: Any) -> Loaded:
        """A view over `select_sql` (columns `id` and `name`), read by a new connector."""
        assert self.url is not None
        name = f"contract_{uuid.uuid4().hex[:12]}"
        async with self.write.begin() as conn:
            await conn.execute(sa.text(f"CREATE VIEW {name} AS {select_sql}"))
        self._views.append(name)
        connector = SqlConnector(self.url, timezone=timezone, **options)
        loaded = Loaded(connector, _spec(name, "id", id=Kind.INT, name=Kind.STRING), connector.engine)
        self._made.append((sa.Table(name, sa.MetaData()), loaded))
        return loaded

    async def read_back(self, loaded: Loaded) -> list[Row]:
        """The table's rows as the write engine sees them, bypassing the connector."""
        sa_table = next(t for t, made in self._made if made is loaded)
        async with self.write.connect() as conn:
            return [dict(row) for row in (await conn.execute(sa.select(sa_table))).mappings()]

    async def drop_connection(self, loaded: Loaded) -> None:
        """Make the server end the connection the loaded connector's pool holds, as a server
        restart or an idle cut-off would."""
        assert loaded.engine is not None
        server_id = sa.func.pg_backend_pid() if self.name == "postgresql" else sa.func.connection_id()
        async with loaded.engine.connect() as conn:
            victim = (await conn.execute(sa.select(server_id))).scalar_one()
        async with self.write.connect() as conn:
            if self.name == "postgresql":
                await conn.execute(sa.select(sa.func.pg_terminate_backend(victim)))
            else:
                await conn.execute(sa.text("KILL CONNECTION :victim"), {"victim": victim})

    @property
    def write(self) -> AsyncEngine:
        if self._write is None:
            assert self.url is not None
            self._write = create_async_engine(self.url)
        return self._write

    async def close(self) -> None:
        for _, loaded in self._made:
            await loaded.connector.close()
        if self._write is None:
            return
        async with self._write.begin() as conn:
            for name in self._views:
                await conn.execute(sa.text(f"DROP VIEW IF EXISTS {name}"))
            for sa_table, _ in self._made:
                if sa_table.name not in self._views:
                    await conn.run_sync(sa_table.drop, checkfirst=True)
        await self._write.dispose()

    async def _insert(self, conn: Any, sa_table: sa.Table, table: TableSpec, rows: Sequence[Row]) -> None:
        if rows:
            await conn.execute(sa_table.insert(), [{c: row.get(c) for c in table.columns} for row in rows])

    def _sa_table(self, table: TableSpec) -> sa.Table:
        columns = [
            sa.Column(spec.name, self._type(spec), primary_key=spec.name == table.key, autoincrement=False)
            for spec in table.columns.values()
        ]
        return sa.Table(table.name, sa.MetaData(), *columns, mysql_charset="utf8mb4")

    def _type(self, spec: ColumnSpec) -> sa.types.TypeEngine[Any]:
        match spec.kind:
            case Kind.STRING:
                return sa.String(200, collation=LOOSE_COLLATIONS[self.name])
            case Kind.INT:
                return sa.Integer()
            case Kind.FLOAT:
                return sa.Double()
            case Kind.DECIMAL:
                return sa.Numeric(18, spec.scale)
            case Kind.BOOL:
                return sa.Boolean()
            case Kind.DATE:
                return sa.Date()
            case Kind.DATETIME:
                return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
            case Kind.BYTES:
                return sa.LargeBinary()
        raise AssertionError(spec.kind)


async def _open(name: str, tmp_path: Path) -> Backend:
    if name == "memory":
        return Backend(name)
    if name == "sqlite":
        return Backend(name, f"sqlite+aiosqlite:///{tmp_path / 'contract.db'}")
    return Backend(name, await reachable_url(name))


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    opened = await _open(request.param, tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(params=SQL_BACKENDS)
async def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    opened = await _open(request.param, tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(params=SERVER_BACKENDS)
async def server_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    opened = await _open(request.param, tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def people(backend: Backend) -> Loaded:
    return await backend.load_people()


@pytest.fixture
async def sql_people(sql_backend: Backend) -> Loaded:
    return await sql_backend.load_people()


@pytest.fixture
def people_rows() -> dict[int, Row]:
    """The rows loaded into `people`, by key, for tests that compute what to expect."""
    return {row["id"]: dict(row) for row in PEOPLE_ROWS}


class StatementLog:
    """The statements an engine sent, as SQLAlchemy's event saw them."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statements: list[str] = []
        sa.event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def __len__(self) -> int:
        return len(self.statements)


@pytest.fixture
def statements() -> type[StatementLog]:
    """`statements(engine)` starts recording what the engine sends."""
    return StatementLog
