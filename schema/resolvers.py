"""The strawberry resolvers of generated fields: read the selection, ask the reader through
schema/loading.py, shape the answer.

No decision is made here: the access plan was made before execution, the reader applies it,
and the release step has already masked or withheld what it must.
"""

from enum import Enum
from typing import Any, Optional

import strawberry

from hub.access.read import JOIN, ListRead, PageArgs
from hub.catalog import EntityInfo, RelationInfo
from hub.errors import HubError
from schema.context import RequestContext
from schema.inputs import input_spec
from schema.loading import (
    RELATION_FIELDS,
    CutRows,
    RelationField,
    deliver,
    detached,
    lookup,
    needs,
    refusal,
    relation_load,
    report,
)
from schema.selection import child_fields


def _raw(info: strawberry.Info) -> Any:
    return info._raw_info


def _list_path(info: strawberry.Info) -> tuple[str | int, ...]:
    # Indices become `*`: one error per (field, list), not one per row.
    return tuple("*" if isinstance(key, int) else key for key in info.path.as_list())


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


def key_resolver(entity: EntityInfo, key_type: Any) -> Any:
    async def resolve(info: strawberry.Info, key: Any) -> dict[Any, Any] | None:
        raw = _raw(info)
        names, joins = needs(entity, child_fields(raw.field_nodes, raw.fragments, raw.variable_values))
        return await lookup(info.context, entity, key, names, joins, _list_path(info))

    resolve.__annotations__ = {"info": strawberry.Info, "key": key_type, "return": dict}
    return resolve


def ref_resolver(entity: EntityInfo) -> Any:
    async def resolve(root: dict[Any, Any], info: strawberry.Info) -> str | None:
        context: RequestContext = info.context
        return context.reader.refs.of_row(context.plan, entity, root, root.get((JOIN, entity.key)))

    resolve.__annotations__ = {"root": dict, "info": strawberry.Info, "return": Optional[str]}  # noqa: UP045
    return resolve


def relation_resolver(relation: RelationInfo, target: EntityInfo) -> Any:
    field = RelationField(relation, target)

    async def follow(root: dict[Any, Any], info: strawberry.Info) -> Any:
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
        definition = raw.parent_type.fields[raw.field_name]
        load = relation_load(field, raw.field_nodes, raw.fragments, raw.variable_values, _list_path(info), definition)
        try:
            rows = await load.loader(context).load(value)
        except HubError as error:
            if error.code == "INTERNAL":
                raise
            # The load's error, the same for every row of the list: one error between them,
            # kept without this frame (which holds the context that keeps the error).
            context.fail_relation(_list_path(info), detached(error), 1)
            return None
        deliver(context, load.width, len(rows))
        if not relation.many:
            return rows[0] if rows else None
        if type(rows) is CutRows:
            context.truncated.add(tuple(info.path.as_list()))
            return list(rows)
        return rows

    if relation.many:
        # A list's `filter`, `orderBy` and `first` are read from the field node by
        # relation_load (as the fast path reads them): the same arguments reach the same
        # loader either way. The parameters give the field its arguments.
        async def resolve_list(
            root: dict[Any, Any], info: strawberry.Info, filter: Any = None, orderBy: Any = None, first: Any = None
        ) -> Any:
            return await follow(root, info)

        RELATION_FIELDS[resolve_list] = field
        return resolve_list

    async def resolve(root: dict[Any, Any], info: strawberry.Info) -> Any:
        return await follow(root, info)

    RELATION_FIELDS[resolve] = field
    return resolve
