"""Which driver errors say the department database is busy (the department's outage, logged
with a reason) and which say it refused the statement (the hub's bug): told apart by the
driver's code, never its message."""

from __future__ import annotations

import sqlite3

import asyncmy.errors
import asyncpg
import pytest
import sqlalchemy as sa

from connectors.sql.dialects import SqlDialect, describe
from connectors.sql.dialects.mysql import MysqlDialect
from connectors.sql.dialects.postgresql import PostgresDialect
from connectors.sql.dialects.sqlite import SqliteDialect


def wrapped(error: Exception) -> sa.exc.DBAPIError:
    """The driver's error as SQLAlchemy raises it; the message quotes a citizen's value."""
    return sa.exc.OperationalError("SELECT secret", None, error)


def sqlite_error(name: str) -> sqlite3.Error:
    error = sqlite3.OperationalError("value '110105199001011234' conflicts")
    error.sqlite_errorname = name
    return error


BUSY: list[tuple[SqlDialect, Exception, str]] = [
    (PostgresDialect(), asyncpg.exceptions.QueryCanceledError("canceling statement"), "statement timeout"),
    (PostgresDialect(), asyncpg.exceptions.LockNotAvailableError("could not obtain lock"), "lock timeout"),
    (PostgresDialect(), asyncpg.exceptions.DeadlockDetectedError("deadlock detected"), "deadlock victim"),
    (PostgresDialect(), asyncpg.exceptions.TooManyConnectionsError("too many clients"), "out of resources"),
    (PostgresDialect(), asyncpg.exceptions.OutOfMemoryError("out of memory"), "out of resources"),
    (MysqlDialect(), asyncmy.errors.OperationalError(1205, "Lock wait timeout exceeded"), "lock wait timeout"),
    (MysqlDialect(), asyncmy.errors.OperationalError(1213, "Deadlock found"), "deadlock victim"),
    (MysqlDialect(), asyncmy.errors.OperationalError(1969, "Query execution was interrupted"), "statement timeout"),
    (MysqlDialect(), asyncmy.errors.OperationalError(1040, "Too many connections"), "too many connections"),
    (SqliteDialect(), sqlite_error("SQLITE_BUSY"), "database is locked"),
    (SqliteDialect(), sqlite_error("SQLITE_LOCKED_SHAREDCACHE"), "database table is locked"),
    (SqliteDialect(), sqlite_error("SQLITE_IOERR_READ"), "disk I/O error"),
]

REFUSED: list[tuple[SqlDialect, Exception]] = [
    (PostgresDialect(), asyncpg.exceptions.UndefinedColumnError("column does not exist")),
    (PostgresDialect(), asyncpg.exceptions.ReadOnlySQLTransactionError("read-only transaction")),
    (MysqlDialect(), asyncmy.errors.ProgrammingError(1146, "Table doesn't exist")),
    (MysqlDialect(), asyncmy.errors.OperationalError(1054, "Unknown column")),
    (SqliteDialect(), sqlite_error("SQLITE_ERROR")),
    (SqliteDialect(), sqlite_error("SQLITE_READONLY")),
]


@pytest.mark.parametrize(("dialect", "error", "reason"), BUSY, ids=[reason for _, _, reason in BUSY])
def test_a_database_that_cannot_run_the_statement_now_is_busy(
    dialect: SqlDialect, error: Exception, reason: str
) -> None:
    assert dialect.busy(wrapped(error)) == reason
    assert dialect.busy(error) == reason


@pytest.mark.parametrize(("dialect", "error"), REFUSED, ids=[type(e).__name__ for _, e in REFUSED])
def test_a_refused_statement_is_not_busy(dialect: SqlDialect, error: Exception) -> None:
    assert dialect.busy(wrapped(error)) is None


@pytest.mark.parametrize(("dialect", "error", "reason"), BUSY, ids=[reason for _, _, reason in BUSY])
def test_the_logged_description_names_the_driver_error_and_its_code_but_not_its_message(
    dialect: SqlDialect, error: Exception, reason: str
) -> None:
    described = describe(wrapped(error))
    assert described.startswith(type(error).__name__)
    assert "(" in described
    for leak in ("110105199001011234", "SELECT", "secret"):
        assert leak not in described
