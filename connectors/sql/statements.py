"""The statements one SQL connector has built, by table, collation and shape.

A read whose shape was seen before runs the statement object built for it then, with its own
values. SQLAlchemy memoizes a statement's cache key on the object, so it finds the compiled
form without walking a new expression, and nothing is built again: on a one-row read by key,
building and keying a fresh statement was about a quarter of the request's CPU.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal

import sqlalchemy as sa

from connectors.base import TableSpec
from connectors.sql.aggregate import AggregateBuilder
from connectors.sql.dialects import SqlDialect
from connectors.sql.direct import DirectForm
from connectors.sql.shape import Shape

# Free-text filters (an `Or` of any length, a `Not` around any of them) make shapes without
# bound, so the cache forgets the least recently used. SQLAlchemy's compiled cache holds 500
# statements per engine (query_cache_size) and each connector has its own engine: a statement
# kept after its compiled form is gone would save only the building.
STATEMENT_CACHE_SIZE = 500


class Built:
    """One built statement, and what its first read learned about reading its rows."""

    __slots__ = ("direct", "processed", "statement", "table")

    def __init__(self, table: TableSpec, statement: sa.Select[Any]) -> None:
        self.table = table
        self.statement = statement
        # The column types the driver reported, and whether SQLAlchemy would change any value
        # of them; None until the first read.
        self.processed: tuple[tuple[Any, ...], bool] | None = None
        # How the driver runs it directly (sql_direct); False where it cannot, None until the
        # first read has shown which.
        self.direct: DirectForm | Literal[False] | None = None


class Statements:
    """A bounded cache of built statements, the least recently used forgotten first."""

    def __init__(self, dialect: SqlDialect, size: int = STATEMENT_CACHE_SIZE) -> None:
        if size <= 0:
            raise ValueError("the statement cache size must be positive")
        self._dialect = dialect
        self._size = size
        self._built: OrderedDict[tuple[str, str, Shape], Built] = OrderedDict()

    def get(self, table: TableSpec, collation: str, shape: Shape) -> Built:
        """The statement of `shape` on `table` in `collation`, built now unless cached."""
        # By the table's name: a TableSpec holds a dict, so it has no hash. Its identity (or,
        # for a copy, equality) is checked instead, so a different table of the same name
        # never runs a statement built for another.
        key = (table.name, collation, shape)
        built = self._built.get(key)
        if built is not None and (built.table is table or built.table == table):
            self._built.move_to_end(key)
            return built
        built = Built(table, AggregateBuilder(self._dialect, collation, table).build(shape))
        self._built[key] = built
        self._built.move_to_end(key)
        if len(self._built) > self._size:
            self._built.popitem(last=False)
        return built

    def __len__(self) -> int:
        return len(self._built)
