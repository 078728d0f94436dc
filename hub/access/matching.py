"""Reading the records of one entity that match any of several value sets: a trace's hop.

A hop may reach one entity along several edges at once (deliveries by the expenditures that
paid them and by the requests they answered): one statement reads them all, `f1 IN (...) OR
f2 IN (...)`, with the entity's row rule and the caller's columns, and releases the rows as
every other read does. Values are compared as stored: blind indexes for encrypted fields.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.base import Filter, In, Or, OrderKey, Query, conjoin
from hub.access.budget import values_per_row
from hub.access.read import Reader, RequestAccess
from hub.access.release import Released
from hub.access.semijoin import Scoped
from hub.catalog import EntityInfo
from hub.crypto.cells import index_form


@dataclass
class Matched:
    released: Released
    # More rows matched than the read's limit.
    has_more: bool


async def read_matching(
    reader: Reader,
    request: RequestAccess,
    entity: EntityInfo,
    matches: Mapping[str, Collection[Any]],
    names: Sequence[str],
    joins: Sequence[str],
    limit: int,
) -> Matched:
    """Released rows of `entity` whose field `f` holds one of `matches[f]` (stored values;
    blind indexes as 32 bytes), at most `limit` in key order. `joins` (which must include the
    match fields) come back under (JOIN, field) keys, as a relation's join values do."""
    plan = request.plan
    plan.require_readable(entity)
    alternatives: list[Filter] = []
    for name, values in matches.items():
        item = entity.fields[name]
        stored = [index_form(item, v) if item.index_column is not None else v for v in values if v is not None]
        if stored:
            alternatives.append(In(item.searchable_column, tuple(dict.fromkeys(stored))))
    if not alternatives or limit < 1:
        return Matched(Released([]), False)
    wanted: Filter = alternatives[0] if len(alternatives) == 1 else Or(tuple(alternatives))
    rule = plan.row_rule(entity.id)
    scoped = await reader._scoped(request, rule) if isinstance(rule, Scoped) else rule
    columns = reader._columns(plan, entity, names, joins)
    width = values_per_row(names, joins)
    connector = reader.connectors[entity.department]
    async with request.budget.reading(limit, width) as allowed:
        query = Query(
            entity.table, columns, conjoin(wanted, scoped), (OrderKey(entity.table.key),), min(allowed, limit)
        )
        page = await reader._run(entity, connector.fetch(query))
        request.budget.charge(page.count, width)
    released = await reader._release(request, entity, page, names, joins)
    return Matched(released, page.has_more or (allowed < limit and page.count == allowed))
