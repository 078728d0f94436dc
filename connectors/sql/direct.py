"""Direct reads: a cached statement run on the driver's own connection, past SQLAlchemy's
execution layer.

Once a statement has been compiled, SQLAlchemy's execution of it (an execution context, a
cursor adapter, parameter processing, a result object) costs about a third of a one-row
read's CPU on asyncpg, where the driver itself needs none of it: asyncpg takes positional
values and prepares each statement text once per connection. On aiosqlite it is worse: the
adapter's cursor costs about four hand-offs to the driver's thread per read (a cursor, execute,
fetch, close), each waiting for the GIL on both sides, where `execute_fetchall` is one. The
dialect makes the driver's call (`SqlDialect.fetch_direct`). A statement qualifies where
SQLAlchemy would change nothing on the way in or out: its first read went through SQLAlchemy
and showed that no result value is processed, and no bound parameter has a processor or
expands. The SQL text is SQLAlchemy's own compilation of the statement, with the values its
compiler bound itself (SQLite's `LIMIT -1` before an OFFSET, `OFFSET 0` after a LIMIT) passed
as parameters; nothing is built as a string here.

Statement observers (tests counting statements on an engine's `before_cursor_execute`) still
see every statement: the event is dispatched with the statement and its parameters, without
a connection, cursor or execution context, which a direct read does not have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import await_only

from connectors.sql.dialects import SqlDialect


@dataclass(frozen=True)
class DirectForm:
    """A statement as the driver takes it: its text, its parameters' names in order, and the
    values of those the compiler bound itself."""

    sql: str
    names: tuple[str, ...]
    # Parameters the dialect's compiler adds with a value of its own: SQLite writes a page with
    # an offset and no limit as `LIMIT ? OFFSET ?` with -1 bound, and one with a limit and no
    # offset as `OFFSET ?` with 0 bound. SQLAlchemy passes them from the compiled statement;
    # here they must be passed too.
    constants: Mapping[str, Any] = field(default_factory=dict)

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        constants = self.constants
        return [constants[name] if name in constants else values[name] for name in self.names]


def direct_form(statement: sa.Select[Any], dialect: Dialect) -> DirectForm | None:
    """The driver's form of `statement`, or None where SQLAlchemy would change a parameter
    (a processor, an expanding list) or the dialect names its parameters."""
    compiled = statement.compile(dialect=dialect)
    order = compiled.positiontup
    if order is None:
        return None
    constants: dict[str, Any] = {}
    for name, bind in compiled.binds.items():
        if bind.expanding or bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
            return None
        if not bind.required:
            if bind.callable is not None:
                return None  # a value computed at each execution: SQLAlchemy's to compute
            constants[name] = bind.value
    return DirectForm(compiled.string, tuple(order), constants)


def fetch_direct(
    engine: sa.Engine,
    dialect: SqlDialect,
    connection: PoolProxiedConnection,
    form: DirectForm,
    values: Mapping[str, Any],
) -> Sequence[Sequence[Any]]:
    """The rows of `form` with `values` on `connection` (checked out of `engine`'s pool, and
    given back here), through its driver; run inside SQLAlchemy's greenlet (as
    `SqlConnector._read` is), so the driver's await returns to the event loop. Errors are the
    driver's own."""
    try:
        # Inside the try: a read that fails before it reaches the driver gives its connection
        # back too, where a few such failures would have left the pool empty for good.
        arguments = form.arguments(values)
        if engine.dispatch.before_cursor_execute:
            engine.dispatch.before_cursor_execute(None, None, form.sql, tuple(arguments), None, False)
        rows: Sequence[Sequence[Any]] = await_only(dialect.fetch_direct(connection, form.sql, arguments))
        return rows
    except BaseException as error:
        # A connection the driver has closed (a dropped socket) must not go back to the pool,
        # nor one whose read was cancelled (the hub's deadline, a request gone): its answer
        # may still be on the way, or never come over a network that stopped delivering.
        if not isinstance(error, Exception) or dialect.driver_closed(connection):
            connection.invalidate()
        raise
    finally:
        connection.close()
