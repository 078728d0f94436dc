"""The connector contract: what a query asks of a department database and what comes back.

Connectors know nothing of GraphQL, policy or keys. A `Query` names a table, the columns wanted,
a filter expression, an order and a page; a connector answers it with exactly one statement.
The semantics every implementation must share (code-point string order, NULLs last ascending,
literal `%` and `_` in `contains`) are pinned down by the contract suite in `tests/contract`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from connectors.aggregates import AggregateQuery, Groups

Row = dict[str, Any]


class Kind(enum.Enum):
    """The value kinds a column may hold; connectors convert driver values to these."""

    STRING = "string"
    INT = "int"
    FLOAT = "float"
    DECIMAL = "decimal"
    BOOL = "bool"
    DATE = "date"
    DATETIME = "datetime"
    BYTES = "bytes"


class Unreadable(enum.Enum):
    """The type of `UNREADABLE`."""

    UNREADABLE = "unreadable"

    def __repr__(self) -> str:
        return "UNREADABLE"


# What a connector returns for a stored value that is not a value of its column's kind (text
# in a number column, NaN, an integer past the column's width, a malformed date, bytes that are
# not UTF-8 text): the rest of its row and page stand, and the hub reports the cell. A page
# names the columns that hold one (`Page.unreadable`).
UNREADABLE = Unreadable.UNREADABLE


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: Kind
    # Digits after the point for DECIMAL; SQLite stores decimals as floats, so reads quantize.
    scale: int = 2
    # For INT: the signed width a value must fit (a GraphQL Int is 32 bits); wider is unreadable.
    bits: int = 64


@dataclass(frozen=True)
class TableSpec:
    """One table as a connector sees it: its name, key column and typed columns."""

    name: str
    key: str
    columns: Mapping[str, ColumnSpec]

    def column(self, name: str) -> ColumnSpec:
        try:
            return self.columns[name]
        except KeyError:
            raise QueryError(f"unknown column {name!r} of table {self.name!r}") from None


# --- filter expressions -------------------------------------------------------------------


class Op(enum.Enum):
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LTE = "lte"
    GT = "gt"
    GTE = "gte"


class Match(enum.Enum):
    """Literal substring matches: `%` and `_` in the pattern are ordinary characters."""

    CONTAINS = "contains"
    STARTS_WITH = "startsWith"
    ENDS_WITH = "endsWith"


@dataclass(frozen=True)
class Compare:
    column: str
    op: Op
    value: Any


@dataclass(frozen=True)
class In:
    column: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Like:
    column: str
    match: Match
    text: str


@dataclass(frozen=True)
class IsNull:
    column: str
    is_null: bool = True


@dataclass(frozen=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    item: Filter


Filter = Compare | In | Like | IsNull | And | Or | Not


def conjoin(*filters: Filter | None) -> Filter | None:
    """AND together the filters given, skipping None; None when nothing is left."""
    present = tuple(f for f in filters if f is not None)
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return And(present)


# --- order and pages ------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderKey:
    column: str
    descending: bool = False


@dataclass(frozen=True)
class PerGroup:
    """At most `limit` rows for each value of `column` (its NULLs are one group): the first
    rows of each group in the query's order."""

    column: str
    limit: int


@dataclass(frozen=True)
class Query:
    """One read of one table. `after` holds the values of the order columns (ending with the
    key) of the last row already seen; it and `offset` are exclusive ways to page.

    With `per_group`, each group keeps its first rows and `Page.cut` names the groups that had
    more (a relation's lists, bounded per parent in one statement); `limit` then counts the rows
    kept, and `has_more` says that kept rows lay past it. The group column must be among
    `columns`; such a read is not paged by `after` or `offset`."""

    table: TableSpec
    columns: tuple[str, ...]
    where: Filter | None = None
    order: tuple[OrderKey, ...] = ()
    limit: int | None = None
    offset: int = 0
    after: tuple[Any, ...] | None = None
    per_group: PerGroup | None = None

    def check_groups(self) -> None:
        """Refuses a `per_group` read the contract does not define."""
        group = self.per_group
        if group is None:
            return
        if group.limit < 1:
            raise QueryError("a per-group limit must be at least 1")
        if group.column not in self.columns:
            raise QueryError(f"the group column {group.column!r} must be read")
        if self.after is not None or self.offset:
            raise QueryError("a read limited per group is not paged")

    def full_order(self) -> tuple[OrderKey, ...]:
        """The order as run: every order ends with the key, so pages are stable."""
        if any(k.column == self.table.key for k in self.order):
            return self.order
        return (*self.order, OrderKey(self.table.key))


def after_filter(order: Sequence[OrderKey], values: Sequence[Any]) -> Filter:
    """The rows strictly after `values` in `order` (ascending NULLs last, descending NULLs
    first), as a plain filter expression so every connector pages by keyset the same way."""
    if len(order) != len(values):
        raise QueryError("the cursor does not match the order")
    alternatives: list[Filter] = []
    for i, key in enumerate(order):
        ties = [_equal(order[j].column, values[j]) for j in range(i)]
        beyond = _beyond(key, values[i])
        if beyond is None:
            continue
        alternatives.append(And((*ties, beyond)) if ties else beyond)
    if not alternatives:
        return And((IsNull(order[0].column, True), IsNull(order[0].column, False)))
    return alternatives[0] if len(alternatives) == 1 else Or(tuple(alternatives))


def _equal(column: str, value: Any) -> Filter:
    return IsNull(column) if value is None else Compare(column, Op.EQ, value)


def _beyond(key: OrderKey, value: Any) -> Filter | None:
    if not key.descending:
        if value is None:  # NULLs are last: nothing is beyond a NULL but other NULLs (ties)
            return None
        return Or((Compare(key.column, Op.GT, value), IsNull(key.column)))
    if value is None:  # descending puts NULLs first: every non-NULL value comes after
        return IsNull(key.column, False)
    return Compare(key.column, Op.LT, value)


# --- results and errors ---------------------------------------------------------------------


class Page:
    """The rows of one query, and whether rows lie past its limit (`has_more`: rows fetched
    beyond the limit are not returned); for a read limited per group, `cut` holds the group
    values (as the page's rows hold them) whose groups had more rows than were returned.

    Made from row dicts (`Page(rows)`) or, by a connector that reads column by column, from one
    sequence per column (`Page.of_columns`). Both forms answer `rows` and `column(name)`; the
    other form is made on first use, so a reader that works column-wise (the release step)
    never pays for a dict per row, and one that wants rows gets them as before.
    """

    __slots__ = ("_columns", "_rows", "count", "cut", "has_more", "statements", "unreadable")

    def __init__(
        self,
        rows: list[Row],
        has_more: bool = False,
        statements: int = 1,
        unreadable: frozenset[str] = frozenset(),
        cut: tuple[Any, ...] = (),
    ) -> None:
        self._rows: list[Row] | None = rows
        # Columns read from `_rows` so far; every column when the page was made from columns.
        self._columns: dict[str, Sequence[Any]] = {}
        self.count = len(rows)
        self.has_more = has_more
        self.statements = statements
        # The columns holding an UNREADABLE value: the others need no look for one.
        self.unreadable = unreadable
        self.cut = cut

    @classmethod
    def of_columns(
        cls,
        columns: Mapping[str, Sequence[Any]],
        count: int,
        has_more: bool = False,
        unreadable: frozenset[str] = frozenset(),
        cut: tuple[Any, ...] = (),
    ) -> Page:
        """A page of `count` rows given column by column, each sequence `count` long, in the
        order the row dicts list their columns."""
        page = cls([], has_more, unreadable=unreadable, cut=cut)
        page._rows = None
        page._columns = dict(columns)
        page.count = count
        return page

    @property
    def rows(self) -> list[Row]:
        if self._rows is None:
            names = list(self._columns)
            if names:
                by_row = zip(*self._columns.values(), strict=True)
                self._rows = [dict(zip(names, values, strict=True)) for values in by_row]
            else:
                self._rows = [{} for _ in range(self.count)]
        return self._rows

    def column(self, name: str) -> Sequence[Any]:
        """The values of column `name`, one per row in order; KeyError if it was not read."""
        found = self._columns.get(name)
        if found is None:
            if self._rows is None:
                raise KeyError(name)
            found = self._columns[name] = [row[name] for row in self._rows]
        return found

    def has(self, name: str) -> bool:
        """Whether the page holds column `name` (a page of row dicts: whether its first row
        does; an empty one holds nothing)."""
        if name in self._columns:
            return True
        rows = self._rows
        return rows is not None and len(rows) > 0 and name in rows[0]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Page):
            return NotImplemented
        mine = (self.rows, self.has_more, self.statements, self.cut)
        return mine == (other.rows, other.has_more, other.statements, other.cut)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Page({self.count} rows, has_more={self.has_more})"


class ConnectorError(Exception):
    """Base of connector errors; messages are safe to show (no SQL text, no URLs)."""


class QueryError(ConnectorError):
    """The query itself is wrong (unknown column, mismatched cursor)."""


class UnavailableError(ConnectorError):
    """The department database could not be reached, did not answer in time, or could not run
    the statement now (a lock, a shortage). `reason` says why for the server's log: the driver
    error's class and code and what they mean, never its message or the statement."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class Connector(Protocol):
    """A read-only source of one department's tables."""

    async def fetch(self, query: Query) -> Page:
        """Rows of `query`, in one statement; `has_more` tells whether rows lie past the limit."""
        ...

    async def count(self, table: TableSpec, where: Filter | None) -> int:
        """The number of rows matching `where`, in one statement."""
        ...

    async def aggregate(self, query: AggregateQuery) -> Groups:
        """The measures of `query` per group, in one statement (connectors/aggregates.py)."""
        ...

    async def fetch_by(
        self,
        table: TableSpec,
        column: str,
        values: Sequence[Any],
        columns: Sequence[str],
        *,
        where: Filter | None = None,
        per_value: int | None = None,
        limit: int | None = None,
        order: Sequence[OrderKey] = (),
        on_chunk: Callable[[Page], None] | None = None,
    ) -> Page:
        """Rows whose `column` is one of `values` and that match `where`, ordered by `column`,
        then `order`, then key: one statement per chunk of at most `BATCH_CHUNK` values, joined into the page
        one statement would give. `per_value` bounds the rows of each value (`Page.cut` names
        the values cut), `limit` the rows in all; `on_chunk` sees each chunk's page before the
        next statement runs. Every connector implements it with `connectors.batch`."""
        ...

    async def close(self) -> None: ...


BATCH_CHUNK = 5000
