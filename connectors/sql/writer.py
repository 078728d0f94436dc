"""The write capability: changing one table of a department database, for maintenance commands.

Request paths only read (`connectors.sql`). A few operator commands must write to a department's
own database: encrypting a column in place, re-encrypting under a new key. They do so through a
`TableWriter`, which is separate from the read connector on purpose:

- it is opened on a URL the operator names for the occasion (usually a user with more rights
  than the read-only one the hub serves with), never on a connection the hub serves from;
- nothing on a request path imports this module (a unit test checks it);
- it knows tables, columns, bytes and text, not keys or manifests: the caller brings the values.

What it does, on SQLite, PostgreSQL and MariaDB/MySQL alike:

- DDL through alembic's operations (identifiers quoted by SQLAlchemy): add nullable columns,
  create an index, drop a column with the indexes that include it. Each can be rendered as
  text first, for a dry run.
- Reads in key order after a key (keyset pages: a page costs the same at the end of the table
  as at the start, and a command that stops can resume from any key).
- Compare-and-set updates, a batch per transaction: each row changes only where it still holds
  what the caller read (`UPDATE t SET c = :new WHERE key = :k AND c = :old`). Which rows landed is
  read back inside the same transaction: a change landed when its row then holds the values it
  set. That is exact for freshly encrypted values (a random nonce each, which no other writer
  can have written too); it lets one statement serve a whole batch where drivers cannot report
  a row count per row of an executemany.

Keys are compared as the database compares them (no collation is forced, so the key's own
index serves every page): the key column must be unique under its own collation, as a primary
key is. Errors carry the driver's error class and code, never SQL text or bound values (which are
citizens' data).
"""

from __future__ import annotations

import enum
import hashlib
import io
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from connectors.base import ConnectorError
from connectors.sql.dialects import CONNECT_TIMEOUT_S, describe

# How long DDL and updates wait for a lock held by someone else (the department's own apps keep
# working meanwhile) before giving up with an error, rather than queueing every later query of
# the table behind a waiting ALTER.
LOCK_TIMEOUT_S = 30
# Index names: PostgreSQL keeps 63 bytes of a name, MariaDB 64.
_MAX_NAME = 60
# Rows per `IN (...)` when reading back a batch.
_CHUNK = 500
# What a statement raises when the database refuses it or cannot be reached.
_FAILURES = (sa.exc.DBAPIError, sa.exc.TimeoutError, OSError, TimeoutError)

T = TypeVar("T")


class WriteError(ConnectorError):
    """A write could not be made; the message names the table and the driver's error class."""


class ConflictError(WriteError):
    """A unique index refused a change."""


class Form(enum.Enum):
    """How a column holds values: bytes (BYTEA, BLOB, VARBINARY) or text."""

    BINARY = "binary"
    TEXT = "text"


@dataclass(frozen=True)
class NewColumn:
    """A nullable column to add. `length` bounds it (bytes or characters), which every database
    can index; unbounded, it is BYTEA/BLOB or TEXT."""

    name: str
    form: Form
    length: int | None = None

    def column(self) -> sa.Column[Any]:
        kind: sa.types.TypeEngine[Any]
        if self.form is Form.BINARY:
            # A BLOB cannot be indexed whole on MariaDB; a fixed-size value fits VARBINARY there.
            kind = sa.LargeBinary()
            if self.length is not None:
                kind = kind.with_variant(mysql.VARBINARY(self.length), "mysql", "mariadb")
        else:
            kind = sa.Text() if self.length is None else sa.String(self.length)
        return sa.Column(self.name, kind, nullable=True)


@dataclass(frozen=True)
class TableShape:
    """What the table holds now: its columns, primary key and indexes (name -> columns, unique)."""

    columns: frozenset[str]
    primary_key: tuple[str, ...]
    indexes: Mapping[str, tuple[tuple[str, ...], bool]]

    def indexes_on(self, column: str) -> list[str]:
        return sorted(name for name, (columns, _) in self.indexes.items() if column in columns)


@dataclass(frozen=True)
class Change:
    """Set `values` in the row keyed `key`, if it still holds `expect` (None: the column is NULL)."""

    key: Any
    values: Mapping[str, Any]
    expect: Mapping[str, Any] = field(default_factory=dict)


def index_name(table: str, column: str) -> str:
    """The name given to an index this module creates: readable, and short enough everywhere."""
    name = f"ix_{table}_{column}"
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _MAX_NAME - 9]}_{digest}"


class TableWriter:
    """Write access to one table, identified by its key column."""

    def __init__(self, url: str | sa.URL, table: str, key: str) -> None:
        parsed = sa.make_url(url)
        self.table = table
        self.key = key
        self._backend = parsed.get_backend_name()
        self._engine = _engine(parsed)

    def __repr__(self) -> str:
        return f"TableWriter({self.table!r}, key={self.key!r}, {self._backend})"

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        await self._engine.dispose()

    # --- the table's shape and DDL ----------------------------------------------------------

    async def shape(self) -> TableShape:
        """The table as it is now; a `WriteError` if it does not exist."""

        def inspect(conn: Connection) -> TableShape | None:
            inspector = sa.inspect(conn)
            if not inspector.has_table(self.table):
                return None
            columns = frozenset(c["name"] for c in inspector.get_columns(self.table))
            primary = tuple(inspector.get_pk_constraint(self.table).get("constrained_columns") or ())
            indexes = {
                str(ix["name"]): (tuple(str(c) for c in ix["column_names"] if c is not None), bool(ix["unique"]))
                for ix in inspector.get_indexes(self.table)
                if ix.get("name")
            }
            return TableShape(columns, primary, indexes)

        found = await self._run(lambda conn: conn.run_sync(inspect))
        if found is None:
            raise WriteError(f"the table {self.table} does not exist in the write database")
        return found

    def add_column_ddl(self, column: NewColumn) -> str:
        return self._render(lambda ops: ops.add_column(self.table, column.column()))

    def create_index_ddl(self, column: str, unique: bool = False) -> str:
        name = index_name(self.table, column)
        return self._render(lambda ops: ops.create_index(name, self.table, [column], unique=unique))

    def drop_column_ddl(self, column: str, shape: TableShape) -> str:
        return self._render(self._dropping(column, shape))

    async def add_column(self, column: NewColumn) -> None:
        await self._ddl(lambda ops: ops.add_column(self.table, column.column()))

    async def create_index(self, column: str, unique: bool = False) -> None:
        name = index_name(self.table, column)
        await self._ddl(lambda ops: ops.create_index(name, self.table, [column], unique=unique))

    async def drop_column(self, column: str) -> None:
        """Drop `column` and every index that includes it (SQLite refuses to drop an indexed
        column; the others would drop or narrow such indexes by themselves)."""
        await self._ddl(self._dropping(column, await self.shape()))

    def _dropping(self, column: str, shape: TableShape) -> Callable[[Operations], None]:
        def ops(operations: Operations) -> None:
            for name in shape.indexes_on(column):
                operations.drop_index(name, table_name=self.table)
            operations.drop_column(self.table, column)

        return ops

    # --- reading ------------------------------------------------------------------------------

    async def count(self, *, null: Sequence[str] = (), not_null: Sequence[str] = ()) -> int:
        t = self._table(self.key, *null, *not_null)
        statement = sa.select(sa.func.count()).select_from(t).where(*self._conditions(t, null, not_null))
        found: Any = await self._run(lambda conn: conn.scalar(statement))
        return int(found or 0)

    async def batch(
        self,
        columns: Sequence[str],
        *,
        after: Any = None,
        limit: int,
        null: Sequence[str] = (),
        not_null: Sequence[str] = (),
    ) -> list[tuple[Any, ...]]:
        """Up to `limit` rows `(key, *columns)` in key order, keys after `after` (from the start
        when None), where the `null` columns are NULL and the `not_null` ones are not. Rows
        without a key are never returned: nothing can identify them."""
        t = self._table(self.key, *columns, *null, *not_null)
        k = t.c[self.key]
        conditions = [k.is_not(None), *self._conditions(t, null, not_null)]
        if after is not None:
            conditions.append(k > after)
        statement = sa.select(k, *(t.c[c] for c in columns)).where(*conditions).order_by(k).limit(limit)
        rows = await self._run(lambda conn: _all(conn, statement))
        return [tuple(_plain(v) for v in row) for row in rows]

    async def fetch(self, keys: Iterable[Any], columns: Sequence[str]) -> dict[Any, tuple[Any, ...]]:
        """The `columns` of the rows with these keys, by key (absent keys are left out)."""
        wanted = list(dict.fromkeys(keys))

        async def read(conn: AsyncConnection) -> dict[Any, tuple[Any, ...]]:
            found: dict[Any, tuple[Any, ...]] = {}
            for start in range(0, len(wanted), _CHUNK):
                found.update(await self._read(conn, wanted[start : start + _CHUNK], columns))
            return found

        return await self._run(read)

    # --- compare-and-set updates -------------------------------------------------------------

    async def update(self, changes: Sequence[Change]) -> set[Any]:
        """Apply `changes` in one transaction, each only where its row still holds what it
        expects. Returns the keys of the changes that landed."""
        if not changes:
            return set()
        if len({c.key for c in changes}) != len(changes):
            raise ValueError("one change per row in a batch")
        groups: dict[tuple[tuple[str, ...], tuple[tuple[str, bool], ...]], list[Change]] = {}
        for change in changes:
            shape = (tuple(change.values), tuple((c, v is None) for c, v in change.expect.items()))
            groups.setdefault(shape, []).append(change)
        try:
            async with self._engine.begin() as conn:
                for (columns, expect), group in groups.items():
                    await conn.execute(self._update(columns, expect), [_parameters(c) for c in group])
                written: dict[Any, tuple[Any, ...]] = {}
                for columns in {cols for cols, _ in groups}:
                    keys = [c.key for c in changes if tuple(c.values) == columns]
                    for start in range(0, len(keys), _CHUNK):
                        written.update(await self._read(conn, keys[start : start + _CHUNK], columns))
        except _FAILURES as error:
            raise self._error(error) from None
        return {
            c.key for c in changes if c.key in written and written[c.key] == tuple(_plain(v) for v in c.values.values())
        }

    # --- internals ----------------------------------------------------------------------------

    def _table(self, *columns: str) -> sa.TableClause:
        return sa.table(self.table, *(sa.column(c) for c in dict.fromkeys(columns)))

    @staticmethod
    def _conditions(t: sa.TableClause, null: Sequence[str], not_null: Sequence[str]) -> list[sa.ColumnElement[bool]]:
        conditions: list[sa.ColumnElement[bool]] = [t.c[c].is_(None) for c in null]
        return conditions + [t.c[c].is_not(None) for c in not_null]

    def _update(self, columns: tuple[str, ...], expect: tuple[tuple[str, bool], ...]) -> sa.Update:
        t = self._table(self.key, *columns, *(c for c, _ in expect))
        # Parameter names apart from column names (SQLAlchemy reserves those in SET clauses).
        conditions = [t.c[self.key] == sa.bindparam("w_key")]
        for i, (column, is_null) in enumerate(expect):
            conditions.append(t.c[column].is_(None) if is_null else t.c[column] == sa.bindparam(f"w_old{i}"))
        values: dict[str, Any] = {column: sa.bindparam(f"w_new{i}") for i, column in enumerate(columns)}
        return sa.update(t).where(*conditions).values(values)

    async def _read(
        self, conn: AsyncConnection, keys: Sequence[Any], columns: Sequence[str]
    ) -> dict[Any, tuple[Any, ...]]:
        if not keys:
            return {}
        t = self._table(self.key, *columns)
        statement = sa.select(t.c[self.key], *(t.c[c] for c in columns)).where(t.c[self.key].in_(keys))
        rows = (await conn.execute(statement)).all()
        return {_plain(row[0]): tuple(_plain(v) for v in row[1:]) for row in rows}

    def _render(self, operations: Callable[[Operations], None]) -> str:
        buffer = io.StringIO()
        context = MigrationContext.configure(
            dialect=self._engine.sync_engine.dialect, opts={"as_sql": True, "output_buffer": buffer}
        )
        operations(Operations(context))
        return "\n".join(line for line in buffer.getvalue().splitlines() if line.strip())

    async def _ddl(self, operations: Callable[[Operations], None]) -> None:
        def run(conn: Connection) -> None:
            operations(Operations(MigrationContext.configure(conn)))

        try:
            async with self._engine.begin() as conn:
                await conn.run_sync(run)
        except _FAILURES as error:
            raise self._error(error) from None

    async def _run(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        try:
            async with self._engine.connect() as conn:
                return await work(conn)
        except _FAILURES as error:
            raise self._error(error) from None

    def _error(self, error: BaseException) -> WriteError:
        if isinstance(error, sa.exc.IntegrityError):
            return ConflictError(f"a unique index of {self.table} refused the change ({describe(error)})")
        if isinstance(error, sa.exc.DBAPIError) and not error.connection_invalidated:
            return WriteError(f"the write database refused a statement on {self.table} ({describe(error)})")
        return WriteError(f"the write database is unavailable ({describe(error)})")


async def _all(conn: AsyncConnection, statement: sa.Select[Any]) -> Sequence[sa.Row[Any]]:
    rows: Sequence[sa.Row[Any]] = (await conn.execute(statement)).all()
    return rows


def _parameters(change: Change) -> dict[str, Any]:
    params: dict[str, Any] = {"w_key": change.key}
    params.update({f"w_new{i}": value for i, value in enumerate(change.values.values())})
    params.update({f"w_old{i}": value for i, value in enumerate(change.expect.values()) if value is not None})
    return params


def _plain(value: Any) -> Any:
    # Drivers hand back bytes as bytes, bytearray or memoryview; compare them as bytes.
    return bytes(value) if isinstance(value, (bytearray, memoryview)) else value


def _engine(url: sa.URL) -> AsyncEngine:
    backend = url.get_backend_name()
    options: dict[str, Any] = {"hide_parameters": True}
    if backend == "postgresql":
        options["connect_args"] = {
            "server_settings": {
                "lock_timeout": str(LOCK_TIMEOUT_S * 1000),
                "application_name": "department-hub-maintenance",
            },
            "timeout": CONNECT_TIMEOUT_S,
        }
    elif backend in ("mysql", "mariadb"):
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    elif backend == "sqlite":
        # The department's apps may hold the file's write lock for a moment.
        options["connect_args"] = {"timeout": LOCK_TIMEOUT_S}
    else:
        raise ValueError(f"unsupported database {backend!r}")
    engine = create_async_engine(url, **options)
    if backend in ("mysql", "mariadb"):

        @sa.event.listens_for(engine.sync_engine, "connect")
        def _session(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                # Metadata locks (ALTER TABLE) and row locks alike.
                cursor.execute("SET SESSION lock_wait_timeout = %s", (LOCK_TIMEOUT_S,))
                cursor.execute("SET SESSION innodb_lock_wait_timeout = %s", (LOCK_TIMEOUT_S,))
            finally:
                cursor.close()

    return engine
