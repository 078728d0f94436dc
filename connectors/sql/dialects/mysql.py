"""MariaDB and MySQL through asyncmy: session settings on connect, a binary NO PAD collation.

MariaDB is the one tested; MySQL 8 differs in the timeout variable and the collation's name,
both chosen from the server's version. String columns must be utf8mb4 (the binary collation
belongs to that character set). DATETIME columns are naive and read in the connector's zone;
TIMESTAMP columns are converted by the server to its session time zone, which the connector
leaves as the server's (named zones need the server's time zone tables).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.aggregates import Bucket
from connectors.base import Kind
from connectors.sql.dialects import CONNECT_TIMEOUT_S, ConnectionSettings, SqlDialect, driver_error

# ER_STATEMENT_TIMEOUT (MariaDB max_statement_time) and ER_QUERY_TIMEOUT (MySQL
# max_execution_time).
_TIMEOUT_CODES = frozenset({1969, 3024})

# Server error numbers of a server too busy to run a statement now, by what the log says of them.
_BUSY = {
    1969: "statement timeout",
    3024: "statement timeout",
    1205: "lock wait timeout",
    1213: "deadlock victim",
    1317: "query interrupted",
    1040: "too many connections",
    1203: "too many connections for the account",
    1226: "account resource limit",
    1037: "out of memory",
    1038: "out of sort memory",
    1041: "out of memory",
    1135: "cannot create a thread",
}


class MysqlDialect(SqlDialect):
    def engine_options(self, url: sa.URL, settings: ConnectionSettings) -> dict[str, Any]:
        options = super().engine_options(url, settings)
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
        # The server closes idle connections after wait_timeout (8 hours by default).
        options["pool_recycle"] = 3600
        return options

    def install(self, engine: AsyncEngine, settings: ConnectionSettings) -> None:
        def on_connect(dbapi_connection: Any, record: Any) -> None:
            mariadb = "mariadb" in dbapi_connection.driver_connection.get_server_info().lower()
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SET SESSION TRANSACTION READ ONLY")
                if mariadb:
                    seconds = settings.statement_timeout_ms / 1000
                    cursor.execute("SET SESSION max_statement_time = %s", (seconds,))
                else:
                    cursor.execute("SET SESSION max_execution_time = %s", (settings.statement_timeout_ms,))
            finally:
                cursor.close()

        event.listen(engine.sync_engine, "connect", on_connect)

    def collation(self, dialect: Dialect) -> str:
        # NO PAD: the PAD SPACE collations (utf8mb4_bin among them) find 'a' equal to 'a '.
        if getattr(dialect, "is_mariadb", False):
            return "utf8mb4_nopad_bin"
        return "utf8mb4_0900_bin"

    def bucket(self, column: sa.ColumnElement[Any], kind: Kind, bucket: Bucket) -> sa.ColumnElement[Any]:
        # Date arithmetic only: DATE_FORMAT's patterns would need their % escaped for the
        # driver's paramstyle.
        one: sa.ColumnElement[Any] = sa.literal_column("1")
        day = sa.func.date(column, type_=sa.Date())
        if bucket is Bucket.DAY:
            return day
        if bucket is Bucket.WEEK:
            return sa.func.subdate(day, sa.func.weekday(column), type_=sa.Date())
        if bucket is Bucket.MONTH:
            return sa.func.subdate(day, sa.func.dayofmonth(column) - one, type_=sa.Date())
        year = sa.func.makedate(sa.func.year(column), one, type_=sa.Date())
        if bucket is Bucket.YEAR:
            return year
        quarters = sa.func.quarter(column) - one
        return sa.func.date(sa.func.timestampadd(sa.literal_column("QUARTER"), quarters, year), type_=sa.Date())

    def is_timeout(self, error: BaseException) -> bool:
        if super().is_timeout(error):
            return True
        args: tuple[Any, ...] = getattr(driver_error(error), "args", ())
        return bool(args) and args[0] in _TIMEOUT_CODES

    def busy(self, error: BaseException) -> str | None:
        args: tuple[Any, ...] = getattr(driver_error(error), "args", ())
        if args and isinstance(args[0], int) and args[0] in _BUSY:
            return _BUSY[args[0]]
        return super().busy(error)
