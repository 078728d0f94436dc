"""Direct reads: a cached statement run on the driver's own connection, past SQLAlchemy's
execution layer.

Once a statement has been compiled, SQLAlchemy's execution of it (an execution context, a
cursor adapter, parameter processing, a result object) costs about a third of a one-row
read's CPU on asyncpg, where the driver itself needs none of it: asyncpg takes positional
values and prepares each statement text once per connection. A statement qualifies where
SQLAlchemy would change nothing on the way in or out: its first read went through SQLAlchemy
and showed that no result value is processed, and no bound parameter has a processor or
expands. The SQL text is SQLAlchemy's own compilation of the statement; nothing is built as a
string here.

Statement observers (tests counting statements on an engine's `before_cursor_execute`) still
see every statement: the event is dispatched with the statement and its parameters, without
a connection, cursor or execution context, which a direct read does not have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import await_only


@dataclass(frozen=True)
class DirectForm:
    """A statement as the driver takes it: its text and its parameters' names in order."""

    sql: str
    names: tuple[str, ...]

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        return [values[name] for name in self.names]


def direct_form(statement: sa.Select[Any], dialect: Dialect) -> DirectForm | None:
    """The driver's form of `statement`, or None where SQLAlchemy would change a parameter
    (a processor, an expanding list) or the dialect names its parameters."""
    compiled = statement.compile(dialect=dialect)
    order = compiled.positiontup
    if order is None:
        return None
    for bind in compiled.binds.values():
        if bind.expanding or bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
            return None
    return DirectForm(compiled.string, tuple(order))


def fetch_direct(
    engine: sa.Engine, connection: PoolProxiedConnection, form: DirectForm, values: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """The rows of `form` with `values` on `connection` (checked out of `engine`'s pool, and
    given back here), through its driver; run inside SQLAlchemy's greenlet (as
    `SqlConnector._read` is), so the driver's await returns to the event loop. Errors are the
    driver's own."""
    arguments = form.arguments(values)
    try:
        if engine.dispatch.before_cursor_execute:
            engine.dispatch.before_cursor_execute(None, None, form.sql, tuple(arguments), None, False)
        driver = connection.driver_connection
        assert driver is not None
        rows: Sequence[Sequence[Any]] = await_only(driver.fetch(form.sql, *arguments))
        return rows
    except BaseException as error:
        # A connection the driver has closed (a dropped socket) must not go back to the pool,
        # nor one whose read was cancelled (the hub's deadline, a request gone): its answer
        # may still be on the way, or never come over a network that stopped delivering.
        driver = connection.driver_connection
        if not isinstance(error, Exception) or (driver is not None and driver.is_closed()):
            connection.invalidate()
        raise
    finally:
        connection.close()
