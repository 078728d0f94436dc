"""PostgreSQL through asyncpg: session settings at connect time, "C" collation, arrays for IN."""

from __future__ import annotations

from asyncio import selector_events
from collections.abc import Awaitable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection

from connectors.aggregates import Bucket
from connectors.base import Kind
from connectors.sql.dialects import CONNECT_TIMEOUT_S, ConnectionSettings, SqlDialect, driver_error

# SQLSTATE query_canceled: what statement_timeout raises.
_QUERY_CANCELED = "57014"

# The SQLSTATEs of a server too busy to run a statement now, by what the log says of them.
# Class 53 is a shortage (memory, disk, connections); 40001 is also what a standby answers when
# replaying the primary's changes cancels a read.
_BUSY = {
    _QUERY_CANCELED: "statement timeout",
    "55P03": "lock timeout",
    "40P01": "deadlock victim",
    "40001": "cancelled by a conflict (serialization or standby recovery)",
}
_SHORTAGE_CLASS = "53"

# Bytes a connection's socket read hands asyncpg at once. asyncpg turns what it is given into
# rows in the same callback of the event loop, and asyncio's selector transport reads up to
# 256 KiB at a time: for a large page (10,000 rows of 12 fields) that is about 800 rows decoded
# per callback, 4-8 ms on this machine, during which no other request is served, and a heavy
# request reading two lists at once fed two such callbacks into every turn of the loop. A
# lookup by key beside it needs a dozen turns (bench/README.md, issue 13's fairness on
# PostgreSQL). At 32 KiB a callback decodes about a hundred rows; the page takes more, shorter
# callbacks (one recv each), and the read as a whole costs the same.
READ_BYTES = 32 * 1024

# asyncio's socket transport over a selector (not in its public names, hence looked up).
_SELECTOR_TRANSPORT: type[Any] | None = getattr(selector_events, "_SelectorSocketTransport", None)

# asyncpg's own timer is a backstop for a server that stops answering altogether; the server's
# statement_timeout, which fires first, is the real limit.
_CLIENT_GRACE_S = 5


class PostgresDialect(SqlDialect):
    # asyncpg takes positional values and prepares each statement text once per connection.
    direct_reads = True

    def fetch_direct(
        self, connection: PoolProxiedConnection, sql: str, arguments: Sequence[Any]
    ) -> Awaitable[Sequence[Sequence[Any]]]:
        driver = connection.driver_connection
        assert driver is not None
        rows: Awaitable[Sequence[Sequence[Any]]] = driver.fetch(sql, *arguments)
        return rows

    def driver_closed(self, connection: PoolProxiedConnection) -> bool:
        driver = connection.driver_connection
        return driver is not None and bool(driver.is_closed())

    def engine_options(self, url: sa.URL, settings: ConnectionSettings) -> dict[str, Any]:
        options = super().engine_options(url, settings)
        # Server settings travel in the startup packet: no statement is spent per connection,
        # and no session can start without them.
        options["connect_args"] = {
            "server_settings": {
                "default_transaction_read_only": "on",
                "statement_timeout": str(settings.statement_timeout_ms),
                # timestamptz columns then compare with naive filter values, and read, in
                # the connector's zone.
                "TimeZone": settings.timezone,
                "application_name": "department-hub",
            },
            "timeout": CONNECT_TIMEOUT_S,
            "command_timeout": settings.statement_timeout_ms / 1000 + _CLIENT_GRACE_S,
        }
        return options

    def install(self, engine: AsyncEngine, settings: ConnectionSettings) -> None:
        def on_invalidate(dbapi_connection: Any, record: Any, exception: BaseException | None) -> None:
            # SQLAlchemy closes an invalidated asyncpg connection gracefully, waiting up to 2 s
            # for the server to answer; a connection given up because its read was cancelled
            # (a network that stopped delivering, the hub's deadline) would hold its request
            # that long past the deadline. A read-only AUTOCOMMIT session has nothing to end
            # cleanly: the socket is closed at once.
            driver = record.driver_connection
            if driver is not None and not driver.is_closed():
                driver.terminate()

        event.listen(engine.sync_engine, "invalidate", on_invalidate)
        event.listen(engine.sync_engine, "connect", lambda dbapi_connection, _: short_reads(dbapi_connection))

    def collation(self, dialect: Dialect) -> str:
        # Byte order of UTF-8 is code point order.
        return "C"

    def order(self, expr: sa.ColumnElement[Any], descending: bool) -> list[sa.ColumnElement[Any]]:
        if descending:
            return [expr.desc().nulls_first()]
        return [expr.asc().nulls_last()]

    def bucket(self, column: sa.ColumnElement[Any], kind: Kind, bucket: Bucket) -> sa.ColumnElement[Any]:
        # The session's TimeZone is the connection's zone, so a timestamptz is cut on its
        # clock; a date is taken as midnight there and cut the same way.
        if bucket is Bucket.DAY:
            return sa.cast(column, sa.Date())
        unit: sa.ColumnElement[Any] = sa.literal_column(f"'{bucket.value}'")
        return sa.cast(sa.func.date_trunc(unit, column), sa.Date())

    def in_(self, exprs: Sequence[sa.ColumnElement[Any]], name: str) -> sa.ColumnElement[bool]:
        # One array parameter, sent once for every form of the column: the statement text is
        # the same for any number of values, so asyncpg's prepared statement cache serves
        # every batch.
        array = sa.bindparam(name, type_=postgresql.ARRAY(exprs[0].type))
        return sa.and_(*(expr == sa.any_(array) for expr in exprs))

    def is_timeout(self, error: BaseException) -> bool:
        return super().is_timeout(error) or getattr(driver_error(error), "sqlstate", None) == _QUERY_CANCELED

    def busy(self, error: BaseException) -> str | None:
        state = getattr(driver_error(error), "sqlstate", None)
        if isinstance(state, str):
            if state in _BUSY:
                return _BUSY[state]
            if state.startswith(_SHORTAGE_CLASS):
                return "out of resources"
        return super().busy(error)


def short_reads(dbapi_connection: Any) -> bool:
    """Has the connection's socket read READ_BYTES at a time (see READ_BYTES); whether it could.
    Only asyncio's own selector transport has the setting (its class attribute `max_size`, read
    at every recv); another event loop's transport (uvloop's) is left as it is."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    transport = getattr(driver, "_transport", None)
    if _SELECTOR_TRANSPORT is None or not isinstance(transport, _SELECTOR_TRANSPORT):
        return False
    transport.max_size = READ_BYTES
    return True
