"""Key-set semi-joins: "rows of this entity whose join value is among the join values of the
related rows that match a filter", for filters that follow a relation.

A row rule such as `{patient: {districtCode: {eq: "330102"}}}` on `health.Visit` cannot be one
SQL statement: the visit and its patient live in different department databases. It is
compiled into a `Scoped` filter (the conditions on the entity's own fields, plus one `SemiJoin`
per relation followed) and resolved per request by `KeySets`: the related side's join column is
fetched once under the nested filter (one statement, only that column), and becomes an IN list
on this side, combined with the rest of the filter. The related side may itself follow a
relation (more hops); each hop is one statement.

The key set is bounded: past the bound the request is refused (LIMIT_EXCEEDED naming it), never
cut, since a cut set would silently hide rows. An empty key set matches no rows.

A caller's filter on related records (`some`, `none`, `every`: hub/access/relation_filter.py)
runs on the same machinery; `none` is a negated semi-join (NOT IN, or no join value at all).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import Filter, In, IsNull, Not, Or, Page, Query, conjoin
from hub.catalog import Catalog, EntityInfo, FieldInfo, RelationInfo
from hub.catalog.filters import MAX_IN, compile_filter
from hub.crypto.cells import index_bytes, index_form
from hub.errors import BadUserInput, LimitExceeded

# Relations a filter may follow in a row: `visit -> patient -> household head` is two.
MAX_HOPS = 3
# The default bound of one key set: must admit one district's persons (about 2,000 in the demo).
DEFAULT_MAX_KEYS = 10_000


@dataclass(frozen=True)
class SemiJoin:
    """Rows whose `relation.field` is among the `relation.target_field` values of the target's
    rows that match `where`."""

    relation: RelationInfo
    source: FieldInfo  # this side's join field
    target: EntityInfo
    target_field: FieldInfo
    where: Filter | Scoped | None
    # Rows with NO such related row instead (a caller's `none` and `every`); NULL join values
    # have no related rows, so they match.
    negated: bool = False
    # What asked for the key set, for the refusal past its bound: a row rule or a filter.
    origin: str = "row rule"


@dataclass(frozen=True)
class Scoped:
    """A filter with conditions that follow relations: `where` AND every semi-join."""

    where: Filter | None
    joins: tuple[SemiJoin, ...]


# What a row rule compiles to: a plain connector filter, one with semi-joins, or no limit.
RowScope = Filter | Scoped | None


def compile_scope(catalog: Catalog, entity: EntityInfo, spec: Mapping[str, Any] | None, hops: int = 0) -> RowScope:
    """A filter spec (field names, operators, and relation names holding nested specs) as a
    row scope. Relations may stand at the top of the spec or inside `and`, not under `or` or
    `not` (a semi-join is a restriction, not an alternative). BadUserInput names what is wrong."""
    if not spec:
        return None
    local, followed = split_relations(entity, spec)
    where = compile_filter(entity, local).where if local else None
    if not followed:
        return where
    if hops >= MAX_HOPS:
        raise BadUserInput(f"a filter may follow at most {MAX_HOPS} relations in a row")
    joins = []
    for name, nested in followed:
        relation = entity.relations[name]
        if not isinstance(nested, Mapping) or not nested:
            raise BadUserInput(f"{entity.type_name}.{name} takes a filter on {relation.target}")
        target = catalog.entity(relation.target)
        source, target_field = entity.fields[relation.field], target.fields[relation.target_field]
        if target_field.encrypted != source.encrypted:
            # One side holds blind indexes or ciphertext, the other plain values: no SQL can
            # match them (a relation's rows decrypt in memory; a semi-join runs in SQL).
            here, there = ("plain", "encrypted") if target_field.encrypted else ("encrypted", "plain")
            raise BadUserInput(
                f"{entity.type_name}.{name} cannot be followed in a filter: {relation.field} is {here} here "
                f"and {relation.target_field} is {there} there"
            )
        inner = compile_scope(catalog, target, nested, hops + 1)
        joins.append(SemiJoin(relation, source, target, target_field, inner))
    return Scoped(where, tuple(joins))


def split_relations(entity: EntityInfo, spec: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """The spec without its relation conditions (top level and `and`), and those conditions.
    A relation under `or` or `not` is refused (BadUserInput)."""
    local: dict[str, Any] = {}
    followed: list[tuple[str, Any]] = []
    for key, value in spec.items():
        if key in entity.relations:
            followed.append((key, value))
        elif key == "and" and isinstance(value, list):
            items = []
            for item in value:
                inner, more = split_relations(entity, item) if isinstance(item, Mapping) else (item, [])
                followed.extend(more)
                if inner:
                    items.append(inner)
            if items:
                local["and"] = items
        else:
            if key in ("or", "not") and any(name in entity.relations for name in _names(value)):
                raise BadUserInput(f"a condition on a relation of {entity.type_name} may not stand under `{key}`")
            local[key] = value
    return local, followed


def _names(spec: Any) -> Iterator[str]:
    """Every key named anywhere in a spec."""
    if isinstance(spec, Mapping):
        for key, value in spec.items():
            yield key
            yield from _names(value)
    elif isinstance(spec, list):
        for item in spec:
            yield from _names(item)


def conjoin_scopes(*scopes: RowScope) -> RowScope:
    """AND of row scopes, None when nothing is left."""
    wheres: list[Filter | None] = []
    joins: list[SemiJoin] = []
    for scope in scopes:
        if isinstance(scope, Scoped):
            wheres.append(scope.where)
            joins.extend(scope.joins)
        else:
            wheres.append(scope)
    where = conjoin(*wheres)
    return Scoped(where, tuple(joins)) if joins else where


# Runs one read of an entity's table, turning connector failures into the caller's errors.
Fetch = Callable[[EntityInfo, Query], Awaitable[Page]]


class KeySets:
    """Resolves scoped filters for one request: each semi-join's key set is fetched once (even
    when concurrent resolvers ask for it together) and reused for the rest of the request."""

    def __init__(self, fetch: Fetch, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self._fetch = fetch
        self.max_keys = max_keys
        # By the identity of the semi-join, kept alive beside its answer.
        self._sets: dict[int, tuple[SemiJoin, asyncio.Future[tuple[Any, ...]]]] = {}

    async def resolve(self, scope: RowScope) -> Filter | None:
        """`scope` as a filter a connector runs: each semi-join becomes an IN on this side."""
        if not isinstance(scope, Scoped):
            return scope
        parts: list[Filter | None] = [scope.where]
        for join in scope.joins:
            column, keys = join.source.searchable_column, await self.keys(join)
            if not join.negated:
                parts.append(within(column, keys))
            elif keys:
                # NOT IN alone would drop NULL join values (unknown in SQL): they have no
                # related row, so `none` holds for them.
                parts.append(Or((Not(within(column, keys)), IsNull(column))))
        return conjoin(*parts)

    async def keys(self, join: SemiJoin) -> tuple[Any, ...]:
        """The join values of `join`'s related rows, in this side's stored form."""
        known = self._sets.get(id(join))
        if known is not None:
            return await asyncio.shield(known[1])
        future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        self._sets[id(join)] = (join, future)
        try:
            found = await self._read(join)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved here: waiters re-raise it; none may be waiting
            raise
        future.set_result(found)
        return found

    async def _read(self, join: SemiJoin) -> tuple[Any, ...]:
        target, column = join.target, join.target_field.searchable_column
        # Related rows without a join value relate to nothing: left out, they neither count
        # against the bound nor travel.
        where = conjoin(await self.resolve(join.where), IsNull(column, False))
        # One statement, one column; a limit one past the bound tells "too many" without
        # reading them all.
        page = await self._fetch(target, Query(target.table, (column,), where, (), self.max_keys))
        if page.has_more:
            raise LimitExceeded(
                f"the {join.origin} through {join.relation.source}.{join.relation.name} matches more than "
                f"{self.max_keys} related rows; the request is refused rather than cut",
                {"limit": self.max_keys},
            )
        values = (_this_side(join, value) for value in page.column(column))
        return tuple(dict.fromkeys(v for v in values if v is not None))


def _this_side(join: SemiJoin, value: Any) -> Any:
    """A related row's join value as this side's join column stores it: blind indexes of one
    domain may be stored as bytes on one side and as hex text on the other."""
    if value is None or join.source.index_column is None:
        return value
    digest = index_bytes(value)
    return None if digest is None else index_form(join.source, digest)


def within(column: str, values: tuple[Any, ...]) -> Filter:
    """`column` is one of `values`, in IN lists of at most MAX_IN values (one statement); no
    values match no rows."""
    if len(values) <= MAX_IN:
        return In(column, values)
    return Or(tuple(In(column, values[i : i + MAX_IN]) for i in range(0, len(values), MAX_IN)))
