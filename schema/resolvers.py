"""Thin resolvers of generated fields: read the selection, ask the reader, shape the answer.

No decision is made here: the access plan was made before execution, the reader applies it,
and the release step has already masked or withheld what it must.
"""

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Optional
from weakref import WeakKeyDictionary

import strawberry
from graphql import FieldNode, FragmentDefinitionNode
from strawberry.dataloader import DataLoader

from hub.access.budget import values_per_row
from hub.access.plan import Decision
from hub.access.read import JOIN, ListRead, PageArgs
from hub.access.release import Released
from hub.catalog import EntityInfo, RelationInfo
from schema.context import RequestContext
from schema.selection import child_fields


def _raw(info: strawberry.Info) -> Any:
    return info._raw_info


def _list_path(info: strawberry.Info) -> tuple[str | int, ...]:
    # Indices become `*`: one error per (field, list), not one per row.
    return tuple("*" if isinstance(key, int) else key for key in info.path.as_list())


def needs(entity: EntityInfo, fields: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Entity fields selected, and fields relations need as join values."""
    names = [name for name in fields if name in entity.fields]
    joins = [entity.relations[name].field for name in fields if name in entity.relations]
    return names, list(dict.fromkeys(joins))


def report(context: RequestContext, base: tuple[str | int, ...], released: Released) -> None:
    for name, reason in released.withheld.items():
        context.withhold((*base, name), reason, len(released.rows))
    context.masked.update((*base, name) for name in released.masked)
    for name, count in released.unreadable.items():
        path = (*base, name)
        context.unreadable[path] = context.unreadable.get(path, 0) + count
    if released.left_out:
        # At the list the rows are missing from (`*` is its rows), or at a single row's field.
        at = base[:-1] if base and base[-1] == "*" else base
        context.left_out[at] = context.left_out.get(at, 0) + released.left_out


def list_resolver(entity: EntityInfo, filter_type: type, order_type: type[Enum]) -> Any:
    async def resolve(
        info: strawberry.Info,
        filter: Any = None,
        orderBy: Any = None,
        first: int | None = None,
        after: str | None = None,
        offset: int | None = None,
    ) -> dict[str, Any]:
        context: RequestContext = info.context
        raw = _raw(info)
        top = child_fields(raw.field_nodes, raw.fragments, raw.variable_values)
        nodes = child_fields(top.get("nodes", []), raw.fragments, raw.variable_values)
        page_info = child_fields(top.get("pageInfo", []), raw.fragments, raw.variable_values)
        names, joins = needs(entity, nodes)
        order = [member.value for member in orderBy or []]
        read = ListRead(
            entity,
            names,
            joins,
            input_spec(filter),
            order,
            PageArgs(first, after, offset),
            want_total="totalCount" in top,
            want_cursor="endCursor" in page_info,
        )
        result = await context.reader.page(context.current, read)
        rows = result.released.rows
        report(context, (*_list_path(info), "nodes", "*"), result.released)
        return {
            "nodes": rows,
            "totalCount": result.total,
            "pageInfo": {"hasNextPage": result.has_next, "endCursor": result.end_cursor},
        }

    resolve.__annotations__ = {
        "info": strawberry.Info,
        "filter": Optional[filter_type],  # noqa: UP045
        "orderBy": Optional[list[order_type]],  # type: ignore[valid-type]  # noqa: UP045
        "first": Optional[int],  # noqa: UP045
        "after": Optional[str],  # noqa: UP045
        "offset": Optional[int],  # noqa: UP045
        "return": dict,
    }
    return resolve


async def lookup(
    context: RequestContext,
    entity: EntityInfo,
    key: Any,
    names: Sequence[str],
    joins: Sequence[str],
    path: tuple[str | int, ...],
) -> dict[Any, Any] | None:
    """The released row of `entity` whose key is `key`, with the fields `names` (and the
    join values `joins`), or None; what it masked or withheld is reported at `path`. The by-key
    resolver and direct plans (schema/execution/direct.py) both read through it."""
    value = int(key) if entity.fields[entity.key].type.value == "Int" else str(key)
    released = await context.reader.by_key(context.current, entity, value, names, joins)
    report(context, path, released)
    return released.rows[0] if released.rows else None


def key_resolver(entity: EntityInfo, key_type: Any) -> Any:
    async def resolve(info: strawberry.Info, key: Any) -> dict[Any, Any] | None:
        raw = _raw(info)
        names, joins = needs(entity, child_fields(raw.field_nodes, raw.fragments, raw.variable_values))
        return await lookup(info.context, entity, key, names, joins, _list_path(info))

    resolve.__annotations__ = {"info": strawberry.Info, "key": key_type, "return": dict}
    return resolve


@dataclass(frozen=True)
class RelationField:
    """What a generated relation field follows; the fast path reads it to load per list."""

    relation: RelationInfo
    target: EntityInfo


# The relation resolvers, by function: strawberry keeps the function as the field's resolver,
# so the fast path finds a field's relation without calling it.
RELATION_FIELDS: WeakKeyDictionary[Callable[..., Any], RelationField] = WeakKeyDictionary()


class CutRows(list[dict[Any, Any]]):
    """A relation list's rows under one parent, cut at the relation's bound: more rows matched.
    The loader hands these out; the field's completion reports the list as truncated."""


def deliver(context: RequestContext, width: int, placed: int) -> None:
    """Counts `placed` related rows about to be placed under parents against the request's
    value budget, before they are shaped: each placement is a copy in the answer."""
    if placed:
        context.current.budget.charge(placed, width)


@dataclass(frozen=True)
class RelationLoad:
    """How one relation field at one list path loads: the target fields its selection needs
    and the request's loader for them. The same for every row of every list at that path."""

    relation: RelationInfo
    names: tuple[str, ...]
    joins: tuple[str, ...]
    # The field's path with list indices as `*`, as errors and withheld paths name it.
    path: tuple[str | int, ...]

    @property
    def width(self) -> int:
        """The values each related row counts for in the request's budget."""
        return values_per_row(self.names, self.joins)

    def loader(self, context: RequestContext) -> DataLoader[Hashable, list[dict[Any, Any]]]:
        relation = self.relation
        # One loader per field path and selection: lists at one path batch together.
        key = (relation.source, relation.name, tuple(k for k in self.path if k != "*"), self.names, self.joins)
        return context.loader(key, lambda: _loader(context, relation, self.names, self.joins, self.path))


def relation_load(
    field: RelationField,
    nodes: Iterable[FieldNode],
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Any,
    path: tuple[str | int, ...],
) -> RelationLoad:
    names, joins = needs(field.target, child_fields(nodes, fragments, variables))
    return RelationLoad(field.relation, tuple(names), tuple(joins), path)


def refusal(context: RequestContext, relation: RelationInfo) -> str | None:
    """Why following `relation` is not released to this request, or None if it is."""
    verdict = context.plan.relation(relation.source, relation.name)
    if verdict.decision is Decision.DENIED:
        return verdict.reason or "not released to you"
    return None


def relation_resolver(relation: RelationInfo, target: EntityInfo) -> Any:
    field = RelationField(relation, target)

    async def resolve(root: dict[Any, Any], info: strawberry.Info) -> Any:
        context: RequestContext = info.context
        reason = refusal(context, relation)
        if reason is not None:
            # One error per (relation, list) with a count, like a withheld field.
            context.withhold(_list_path(info), reason, 1)
            return None
        value = root.get((JOIN, relation.field))
        if value is None:
            return [] if relation.many else None
        raw = _raw(info)
        load = relation_load(field, raw.field_nodes, raw.fragments, raw.variable_values, _list_path(info))
        rows = await load.loader(context).load(value)
        deliver(context, load.width, len(rows))
        if not relation.many:
            return rows[0] if rows else None
        if type(rows) is CutRows:
            context.truncated.add(tuple(info.path.as_list()))
            return list(rows)
        return rows

    RELATION_FIELDS[resolve] = field
    return resolve


def _loader(
    context: RequestContext,
    relation: RelationInfo,
    names: Sequence[str],
    joins: Sequence[str],
    path: tuple[str | int, ...],
) -> DataLoader[Hashable, list[dict[Any, Any]]]:
    async def load(values: list[Hashable]) -> list[list[dict[Any, Any]]]:
        found = await context.reader.related(context.current, relation, names, joins, values)
        base = (*path, "*") if relation.many else path
        report(context, base, found.released)
        grouped, cut = found.grouped, found.cut
        return [CutRows(grouped[value]) if value in cut else grouped.get(value, []) for value in values]

    return DataLoader(load_fn=load)


def input_spec(value: Any) -> Any:
    """A strawberry input object as a plain mapping keyed by GraphQL names, nulls dropped."""
    if value is None:
        return None
    if isinstance(value, list):
        return [input_spec(item) for item in value]
    definition = getattr(value, "__strawberry_definition__", None)
    if definition is None:
        return value
    out: dict[str, Any] = {}
    for field in definition.fields:
        item = getattr(value, field.python_name)
        if item is None or item is strawberry.UNSET:
            continue
        out[field.graphql_name or field.python_name] = input_spec(item)
    return out
