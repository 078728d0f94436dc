"""Batch reads by value (`Connector.fetch_by`): the rows whose column is one of many values,
read in chunks of at most `BATCH_CHUNK` values, one `fetch` per chunk, that join into the page
one statement over all the values would give.

Every connector's `fetch_by` is this function over its own `fetch`, so the batch contract has
one implementation and inherits each backend's filter, order and per-group semantics instead of
restating them. Values past one chunk are made filter values (`filter_value`), deduplicated
and sorted before chunking: chunks then follow one another in the column's order, and a group
(one value) never spans two chunks, so the rows, the groups cut and the cap over all chunks are
those of the single statement.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from connectors.base import (
    BATCH_CHUNK,
    ColumnSpec,
    Filter,
    In,
    OrderKey,
    Page,
    PerGroup,
    Query,
    QueryError,
    TableSpec,
    conjoin,
)
from connectors.values import filter_value

Fetch = Callable[[Query], Awaitable[Page]]
# Called with each chunk's page as it is read, before the next chunk's statement runs.
OnChunk = Callable[[Page], None]


async def fetch_in_chunks(
    fetch: Fetch,
    zone: ZoneInfo,
    table: TableSpec,
    column: str,
    values: Iterable[Any],
    columns: Sequence[str],
    *,
    where: Filter | None = None,
    per_value: int | None = None,
    limit: int | None = None,
    order: Sequence[OrderKey] = (),
    on_chunk: OnChunk | None = None,
) -> Page:
    """The rows of `table` whose `column` is one of `values` and that match `where`, ordered by
    `column`, then `order`, then key; NULL values match nothing. With `per_value`, each value
    keeps its first rows in that order (a relation's list ordered by the caller), and
    `Page.cut` names the values that had more (`column` must then be among `columns`). With
    `limit`, at most that many rows over all chunks, and `has_more` says rows lay past it; no
    later chunk is read once one has shown that.

    `on_chunk` sees each chunk's page before the next statement runs, and what it raises ends
    the read. A caller accounting for what it reads (the hub's value budget) charges each
    chunk there, so a refusal stops the statements that would follow it. A callback rather
    than an async iterator of pages: the caller still gets one `Page`, as from `fetch`, and
    the joining of chunks and the cap's bookkeeping stay here instead of in every caller, with
    no generator left to close when the caller stops early.
    """
    spec = table.column(column)
    for name in columns:
        table.column(name)
    if per_value is not None and per_value < 1:
        raise QueryError("a per-value limit must be at least 1")
    if limit is not None and limit < 0:
        raise QueryError("a limit must not be negative")
    # Chunks follow one another in the column's order, so the rest of the order is within a value.
    full = (OrderKey(column), *order)
    group = None if per_value is None else PerGroup(column, per_value)
    pages: list[Page] = []
    left = limit
    for chunk in _chunks(spec, zone, values):
        # At `left == 0` the chunk is still read (LIMIT 0 with one row more) to tell whether
        # rows lie past the cap, as the single statement's limit would.
        query = Query(table, tuple(columns), conjoin(In(column, chunk), where), full, left, per_group=group)
        page = await fetch(query)
        if on_chunk is not None:
            on_chunk(page)
        pages.append(page)
        if page.has_more:
            break  # the cap is reached with rows past it: a later chunk's would lie past it too
        if left is not None:
            left -= page.count
    return _joined(pages, columns)


def _chunks(spec: ColumnSpec, zone: ZoneInfo, values: Iterable[Any]) -> list[tuple[Any, ...]]:
    """The values in chunks of at most BATCH_CHUNK, NULLs left out (they match nothing)."""
    present = [value for value in values if value is not None]
    if len(present) <= BATCH_CHUNK:
        # One statement orders its own rows and `fetch` converts its values: the usual batch
        # costs no pass over them here (0.15 to 0.3 ms per 1,000 values to convert and sort).
        return [tuple(present)] if present else []
    keys = sorted({filter_value(spec, value, zone) for value in present})
    return [tuple(keys[start : start + BATCH_CHUNK]) for start in range(0, len(keys), BATCH_CHUNK)]


def _joined(pages: Sequence[Page], columns: Sequence[str]) -> Page:
    """The pages of consecutive chunks as one page, column by column (the release step reads
    columns, so no dict per row is made); one page is returned as it is."""
    if len(pages) == 1:
        return pages[0]
    if not pages:
        return Page([], statements=0)
    names = tuple(dict.fromkeys(columns))
    count = sum(page.count for page in pages)
    out = {name: [value for page in pages for value in page.column(name)] for name in names}
    unreadable = frozenset().union(*(page.unreadable for page in pages))
    cut = tuple(value for page in pages for value in page.cut)
    page = Page.of_columns(out, count, pages[-1].has_more, unreadable, cut)
    page.statements = len(pages)
    return page
