"""The list read: one page of an entity's rows, as a root list field asks for it.

One statement for the page (and one beside it for a selected total count), with the filter,
row rules, order and page pushed into it; every check runs before any statement does. The page
is counted against the request's value budget before its rows are released, and its end cursor
is taken from the last row fetched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from connectors.base import UNREADABLE, OrderKey, Page, Query
from hub.access.budget import values_per_row
from hub.access.joins import union
from hub.access.relation_filter import compile_checked
from hub.access.release import Released
from hub.access.semijoin import Scoped, conjoin_scopes
from hub.catalog import EntityInfo
from hub.catalog.filters import FilterSpec, compile_order
from hub.errors import BadUserInput

if TYPE_CHECKING:
    from hub.access.read import Reader, RequestAccess


@dataclass(frozen=True)
class PageArgs:
    first: int | None = None
    after: str | None = None
    offset: int | None = None


@dataclass(frozen=True)
class ListRead:
    """One list field as its resolver asks for it: the entity, the fields and join columns its
    rows need, its filter, order and page, and whether `totalCount` and `endCursor` are
    selected (each costs work only when it is)."""

    entity: EntityInfo
    names: Sequence[str]
    joins: Sequence[str]
    filter_spec: FilterSpec | None = None
    order: Sequence[tuple[str, bool]] = ()
    page: PageArgs = PageArgs()
    want_total: bool = False
    want_cursor: bool = False


@dataclass
class ListResult:
    released: Released
    has_next: bool
    end_cursor: str | None
    total: int | None


async def read_page(reader: Reader, request: RequestAccess, read: ListRead) -> ListResult:
    """One page of `read.entity` for `Reader.page`."""
    entity, names, joins, page = read.entity, read.names, read.joins, read.page
    filter_spec, order, want_total, want_cursor = read.filter_spec, read.order, read.want_total, read.want_cursor
    plan = request.plan
    plan.require_readable(entity)
    limit = reader._limit(page)
    if page.offset is not None and page.offset < 0:
        raise BadUserInput("`offset` must not be negative")
    if page.offset and page.after is not None:
        raise BadUserInput("give `after` or `offset`, not both")
    # Every check (fields, relations followed, order) before any statement runs.
    filtered = compile_checked(reader.catalog, plan, entity, filter_spec, reader._index_value)
    keys, order_fields = compile_order(entity, order)
    plan.require_plain(entity, sorted(order_fields), "ordering")
    scope = conjoin_scopes(filtered, plan.row_rule(entity.id))
    where = await reader._scoped(request, scope) if isinstance(scope, Scoped) else scope
    columns = reader._columns(plan, entity, names, joins)
    query = Query(entity.table, (), where, keys, limit, page.offset or 0)
    full_order = query.full_order()
    tag = f"{plan.principal.subject}|{_order_tag(entity, full_order)}"
    after = reader.cursors.decode(tag, page.after) if page.after is not None else None
    if want_cursor:
        columns = union(columns, [k.column for k in full_order])
    connector = reader.connectors[entity.department]
    width = values_per_row(names, joins)
    async with request.budget.reading(limit, width) as allowed:
        # Fewer rows than the page asks for when the budget has less left: a row past
        # them is then not a next page but a refusal.
        capped = allowed < limit
        query = Query(entity.table, columns, where, keys, allowed if capped else limit, page.offset or 0, after)
        if want_total:
            fetched, total = await asyncio.gather(
                reader._run(entity, connector.fetch(query)),
                reader._run(entity, connector.count(entity.table, where)),
            )
        else:
            fetched, total = await reader._run(entity, connector.fetch(query)), None
        page_rows: Page = fetched
        request.budget.charge(page_rows.count + int(capped and page_rows.has_more), width)
    released = await reader._release(request, entity, page_rows, names, joins)
    end_cursor = None
    if want_cursor and page_rows.count:
        # From the last row fetched, left out or not, so the next page starts after it.
        at = _last_readable(page_rows, [k.column for k in full_order])
        if at is not None:
            end_cursor = reader.cursors.encode(tag, [page_rows.column(k.column)[at] for k in full_order])
    return ListResult(released, page_rows.has_more, end_cursor, total)


def _last_readable(page: Page, columns: Sequence[str]) -> int | None:
    """The last row of `page` whose `columns` all read (a cursor holds their values), or None."""
    if not page.unreadable.intersection(columns):
        return page.count - 1
    values = [page.column(name) for name in columns]
    for at in range(page.count - 1, -1, -1):
        if all(column[at] is not UNREADABLE for column in values):
            return at
    return None


def _order_tag(entity: EntityInfo, order: Sequence[OrderKey]) -> str:
    return entity.id + "|" + ",".join(("-" if k.descending else "") + k.column for k in order)
