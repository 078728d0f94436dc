"""What differs between SQL databases, behind one small class the SQL connector talks to.

The base class holds the portable forms; `dialect_postgresql`, `dialect_mysql` and
`dialect_sqlite` override what their database does differently: how a session is made
read-only and given a statement timeout, the binary collation strings compare in, NULL
placement in an order, literal substring matches, and how a timeout shows as an error.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection

from connectors.aggregates import Bucket
from connectors.base import ColumnSpec, Kind, Match

# How long to wait for a connection, new or from a full pool, before calling the database
# unavailable: long enough for a slow network, short enough that a request does not hang.
CONNECT_TIMEOUT_S = 10

# The escape character of LIKE patterns. Not the backslash: MariaDB string literals and
# PostgreSQL's standard_conforming_strings treat it differently.
LIKE_ESCAPE = "/"


@dataclass(frozen=True)
class ConnectionSettings:
    """The settings every connection of one connector is opened with."""

    timezone: str
    statement_timeout_ms: int
    pool_size: int


class SqlDialect(abc.ABC):
    """The portable behaviour; subclasses override where their database differs."""

    # Whether statements may run on the driver's connection directly once their first read
    # has shown SQLAlchemy changes nothing (connectors/sql/direct.py): a driver taking
    # positional values and preparing statements itself.
    direct_reads = False

    def fetch_direct(
        self, connection: PoolProxiedConnection, sql: str, arguments: Sequence[Any]
    ) -> Awaitable[Sequence[Sequence[Any]]]:
        """The driver's rows of `sql` with positional `arguments` on `connection`, in one call
        to the driver; only dialects with `direct_reads` implement it."""
        raise NotImplementedError

    def driver_closed(self, connection: PoolProxiedConnection) -> bool:
        """Whether the driver has closed `connection` (a dropped socket), so that it must not
        go back to the pool."""
        return False

    def engine_options(self, url: sa.URL, settings: ConnectionSettings) -> dict[str, Any]:
        """Keyword arguments for create_async_engine beyond the common ones."""
        # No overflow: a department database is someone else's server, and pool_size is the
        # most connections the hub may hold on it; a burst waits for a free one.
        return {"pool_size": settings.pool_size, "max_overflow": 0, "pool_timeout": CONNECT_TIMEOUT_S}

    def install(self, engine: AsyncEngine, settings: ConnectionSettings) -> None:  # noqa: B027
        """Attach the event listeners that make every connection read-only and time-limited
        (a dialect whose engine options already do so keeps this default, which does nothing)."""

    def column_type(self, spec: ColumnSpec) -> sa.types.TypeEngine[Any]:
        kind = spec.kind
        if kind is Kind.DECIMAL:
            return sa.Numeric(asdecimal=True, scale=spec.scale)
        return _TYPES[kind]

    @abc.abstractmethod
    def collation(self, dialect: Dialect) -> str:
        """The collation that compares and sorts strings by code point, case-sensitively,
        with no padding ('a' and 'a ' differ)."""

    def order(self, expr: sa.ColumnElement[Any], descending: bool) -> list[sa.ColumnElement[Any]]:
        """Order terms for `expr`: NULLs last ascending and first descending, the exact
        reverse. Sorting on `expr IS NULL` first works everywhere; dialects with NULLS
        LAST/FIRST override this with the form their planner can serve from an index."""
        if descending:
            return [expr.is_(None).desc(), expr.desc()]
        return [expr.is_(None).asc(), expr.asc()]

    def like_values(self, match: Match, text: str) -> tuple[Hashable, tuple[Any, ...]]:
        """How a string (already in the binary collation) is tested to contain, start or end
        with `text`, with `%` and `_` in it as ordinary characters: the form of the test, which
        is part of the statement's shape, and the values `like` binds for it. One form here:
        the three matches differ only in the pattern bound."""
        escaped = text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%")
        escaped = escaped.replace("_", LIKE_ESCAPE + "_")
        pattern = {
            Match.CONTAINS: f"%{escaped}%",
            Match.STARTS_WITH: f"{escaped}%",
            Match.ENDS_WITH: f"%{escaped}",
        }[match]
        return "like", (pattern,)

    def like(self, expr: sa.ColumnElement[Any], form: Hashable, names: Sequence[str]) -> sa.ColumnElement[bool]:
        """The test of `form` on `expr`, its values (from `like_values`) bound as `names`."""
        return expr.like(sa.bindparam(names[0], type_=sa.String()), escape=LIKE_ESCAPE)

    def in_(self, exprs: Sequence[sa.ColumnElement[Any]], name: str) -> sa.ColumnElement[bool]:
        """Each of `exprs` (forms of one column, the bare column first) is one of the values
        bound as `name`, a list never empty. One expanding parameter: SQLAlchemy writes out as
        many placeholders as each execution's list holds, so lists of any length share the
        statement."""
        values = sa.bindparam(name, type_=exprs[0].type, expanding=True)
        return sa.and_(*(expr.in_(values) for expr in exprs))

    # Whether a decimal column's sum comes back as an integer count of its smallest unit
    # (`summand`), to be scaled back by the connector.
    scaled_sums = False

    def summand(self, column: sa.ColumnElement[Any], spec: ColumnSpec) -> sa.ColumnElement[Any]:
        """What a decimal column's sum adds up: the column, where the database sums decimals
        exactly."""
        return column

    @abc.abstractmethod
    def bucket(self, column: sa.ColumnElement[Any], kind: Kind, bucket: Bucket) -> sa.ColumnElement[Any]:
        """The first day (a date) of the `bucket` holding the date or date-time `column`, on
        the connection's clock; constants written into the SQL, none bound."""

    def is_timeout(self, error: BaseException) -> bool:
        """Whether `error` (a driver error or SQLAlchemy's wrapper of one) says the statement
        ran out of time rather than that the database went away."""
        return isinstance(error, TimeoutError)

    def busy(self, error: BaseException) -> str | None:
        """Why the database could not run a statement now, as a short phrase for the log: it ran
        out of time, waited too long for a lock, chose it as a deadlock's victim, or is short of
        memory or connections; None when it refused the statement itself. A busy database is
        the department's outage (DEPARTMENT_UNAVAILABLE), a refused statement the hub's bug
        (INTERNAL). A connection that broke is not told here: the connector retries it once."""
        return "no answer in time" if self.is_timeout(error) else None


_TYPES: dict[Kind, sa.types.TypeEngine[Any]] = {
    Kind.STRING: sa.String(),
    # BIGINT, not INTEGER: PostgreSQL casts parameters to the type named, and a large key
    # must not overflow a 32-bit cast before it is compared.
    Kind.INT: sa.BigInteger(),
    Kind.FLOAT: sa.Float(),
    Kind.BOOL: sa.Boolean(),
    Kind.DATE: sa.Date(),
    Kind.DATETIME: sa.DateTime(),
    Kind.BYTES: sa.LargeBinary(),
}


def driver_error(error: BaseException) -> BaseException:
    """The driver's own exception inside SQLAlchemy's wrapper, or `error` itself."""
    orig = getattr(error, "orig", None)
    return orig if isinstance(orig, BaseException) else error


def describe(error: BaseException) -> str:
    """The class and code of a driver error, for logs: never its message, which may quote
    the values of a row or a filter."""
    driver = driver_error(error)
    code = getattr(driver, "sqlstate", None) or getattr(driver, "sqlite_errorname", None)
    if code is None and driver.args and isinstance(driver.args[0], int):
        code = driver.args[0]  # MySQL error numbers
    cause = driver.__cause__
    if cause is not None and code is not None and getattr(cause, "sqlstate", None) == code:
        # SQLAlchemy's asyncpg adapter raises its own `Error` from asyncpg's, which names it.
        driver = cause
    return type(driver).__name__ if code is None else f"{type(driver).__name__} ({code})"
