"""The generated aggregate field of each entity: its types, its arguments and its resolver.

`<department><Entities>Aggregate(filter, groupBy, bucket, orderBy, first, after)` returns
`{ count, sum {...}, avg {...}, min {...}, max {...}, countDistinct {...}, groups { key {...,
bucket}, count, sum {...}, ..., suppressed }, pageInfo }`. The resolver only reads the
selection and the arguments: every decision (which fields may be aggregated, the row rule,
the suppression of small groups) is made by hub/access/aggregate.py from the access plan.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import types
from dataclasses import dataclass
from typing import Any, Optional

import strawberry
from strawberry.types.field import StrawberryField

from connectors.aggregates import Bucket
from hub.access.aggregate import (
    BUCKET,
    COUNT,
    MEASURES,
    NUMERIC,
    ORDERED,
    AggregateRead,
    Cell,
    aggregate,
    label,
)
from hub.catalog import EntityInfo, FieldInfo
from hub.catalog.manifest import FieldType, snake
from hub.errors import BadUserInput
from schema.context import RequestContext
from schema.inputs import input_spec
from schema.scalars import PYTHON_TYPE, PageInfo
from schema.selection import child_fields


@strawberry.enum(description="Calendar periods to group moments and dates by, in the department's time zone.")
class AggregatePeriod(enum.Enum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


@strawberry.enum(description="What groups are ordered by: their count, key, bucket, or a measure of a field.")
class AggregateOrderBy(enum.Enum):
    COUNT = "count"
    KEY = "key"
    BUCKET = "bucket"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    COUNT_DISTINCT = "countDistinct"


def aggregate_field_name(entity: EntityInfo) -> str:
    """`<department><Entities>Aggregate`: the entity's list field, then `Aggregate`."""
    return entity.list_field + "Aggregate"


def group_type_name(entity: EntityInfo) -> str:
    return f"{entity.type_name}AggregateGroup"


def _new_class(name: str, annotations: dict[str, Any], namespace: dict[str, Any]) -> type:
    body = {"__annotations__": annotations, **namespace}
    return types.new_class(name, (), {}, lambda ns: ns.update(body))


def _measure_type(entity: EntityInfo, name: str, items: list[tuple[FieldInfo, Any]], about: str) -> type | None:
    if not items:
        return None
    annotations = {item.name: Optional[kind] for item, kind in items}  # noqa: UP045
    namespace = {item.name: strawberry.field(name=item.name) for item, _ in items}
    return strawberry.type(_new_class(f"{entity.type_name}{name}", annotations, namespace), description=about)


@dataclass
class AggregateTypes:
    """The types one entity's aggregate field is made of."""

    entity: EntityInfo
    result: type
    field_enum: type[enum.Enum]
    bucket_input: type
    order_input: type


def _sum_type(item: FieldInfo) -> Any:
    # A sum of whole numbers may pass GraphQL's 32-bit Int: a Float holds it.
    return float if item.type is FieldType.INT else PYTHON_TYPE[item.type]


def _avg_type(item: FieldInfo) -> Any:
    return decimal.Decimal if item.type is FieldType.DECIMAL else float


def aggregate_types(entity: EntityInfo) -> AggregateTypes:
    plain = [item for item in entity.fields.values() if not item.encrypted]
    numeric = [item for item in plain if item.type in NUMERIC]
    ordered = [item for item in plain if item.type in ORDERED]
    name = entity.type_name
    measures: dict[str, type | None] = {
        "sum": _measure_type(entity, "Sums", [(i, _sum_type(i)) for i in numeric], "Sums; nulls are ignored."),
        "avg": _measure_type(
            entity,
            "Averages",
            [(i, _avg_type(i)) for i in numeric],
            "Averages of the values present; decimals rounded half-even to the field's scale.",
        ),
        "min": _measure_type(entity, "Minima", [(i, PYTHON_TYPE[i.type]) for i in ordered], "Smallest values."),
        "max": _measure_type(entity, "Maxima", [(i, PYTHON_TYPE[i.type]) for i in ordered], "Largest values."),
        "countDistinct": _measure_type(
            entity,
            "DistinctCounts",
            [(i, int) for i in entity.fields.values()],
            "Distinct values present; an encrypted field's by its blind index.",
        ),
    }
    members = {snake(item.name).upper(): item.name for item in entity.fields.values()}
    fields = enum.Enum(f"{name}AggregateField", members)  # type: ignore[misc]
    field_enum: type[enum.Enum] = strawberry.enum(
        fields, description=f"The fields of {name} to group by, or to order groups by a measure of."
    )
    key_annotations: dict[str, Any] = {i.name: Optional[PYTHON_TYPE[i.type]] for i in plain}  # noqa: UP045
    key_namespace: dict[str, Any] = {i.name: strawberry.field(name=i.name) for i in plain}
    key_annotations[BUCKET] = Optional[datetime.date]  # noqa: UP045
    key_namespace[BUCKET] = strawberry.field(name=BUCKET, description="The first day of the group's period.")
    key_type = strawberry.type(
        _new_class(f"{name}AggregateKey", key_annotations, key_namespace),
        description="A group's key: the fields grouped by (the others null), and its period's first day.",
    )
    common: dict[str, Any] = {COUNT: Optional[int]}  # noqa: UP045
    for measure, kind in measures.items():
        if kind is not None:
            common[measure] = Optional[kind]  # noqa: UP045
    group_annotations: dict[str, Any] = {"key": key_type, **common, "suppressed": bool}
    group_namespace: dict[str, Any] = {n: strawberry.field(name=n) for n in group_annotations}
    group_namespace["suppressed"] = strawberry.field(
        name="suppressed", description="Too few persons in this group to show its measures: they are null."
    )
    group_type = strawberry.type(
        _new_class(group_type_name(entity), group_annotations, group_namespace), description="One group."
    )
    result_annotations: dict[str, Any] = {**common, "groups": list[group_type], "pageInfo": PageInfo}  # type: ignore[valid-type]
    result_namespace: dict[str, Any] = {n: strawberry.field(name=n) for n in result_annotations}
    result_namespace[COUNT] = strawberry.field(
        name=COUNT, description="Rows matching the filter; null when it would give a suppressed group away."
    )
    result = strawberry.type(
        _new_class(f"{name}Aggregate", result_annotations, result_namespace),
        description=f"Measures over {name} rows, in all and per group.",
    )
    bucket_input = strawberry.input(
        _new_class(
            f"{name}AggregateBucket",
            {"field": field_enum, "period": AggregatePeriod},
            {"field": strawberry.field(name="field"), "period": strawberry.field(name="period")},
        ),
        description="Group by the period holding a date or moment (a Date or DateTime field).",
    )
    order_input = strawberry.input(
        _new_class(
            f"{name}AggregateOrder",
            {"by": AggregateOrderBy, "field": Optional[field_enum], "descending": bool},  # noqa: UP045
            {
                "by": strawberry.field(name="by"),
                "field": strawberry.field(name="field", default=None, description="For KEY and the measures."),
                "descending": strawberry.field(name="descending", default=False),
            },
        ),
        description="One step of the groups' order; every order ends with the group keys, ascending.",
    )
    return AggregateTypes(entity, result, field_enum, bucket_input, order_input)


def aggregate_root_field(types_: AggregateTypes, filter_type: type) -> StrawberryField:
    entity = types_.entity
    resolver = aggregate_resolver(entity)
    annotations: dict[str, Any] = {
        "info": strawberry.Info,
        "filter": Optional[filter_type],  # noqa: UP045
        "groupBy": Optional[list[types_.field_enum]],  # type: ignore[name-defined]  # noqa: UP045
    }
    annotations["bucket"] = Optional[types_.bucket_input]  # noqa: UP045
    annotations.update(
        {
            "orderBy": Optional[list[types_.order_input]],  # type: ignore[name-defined]  # noqa: UP045
            "first": Optional[int],  # noqa: UP045
            "after": Optional[str],  # noqa: UP045
            "return": Optional[types_.result],  # noqa: UP045
        }
    )
    resolver.__annotations__ = annotations
    name = aggregate_field_name(entity)
    field: StrawberryField = strawberry.field(
        resolver=resolver,
        name=name,
        description=f"Counts and measures of {entity.type_name} rows, in all and per group; small groups of "
        "persons are suppressed.",
    )
    field.python_name = name
    return field


def aggregate_resolver(entity: EntityInfo) -> Any:
    async def resolve(
        info: strawberry.Info,
        filter: Any = None,
        groupBy: Any = None,
        bucket: Any = None,
        orderBy: Any = None,
        first: int | None = None,
        after: str | None = None,
    ) -> dict[str, Any]:
        context: RequestContext = info.context
        raw = info._raw_info
        fragments, variables = raw.fragments, raw.variable_values
        top = child_fields(raw.field_nodes, fragments, variables)
        groups = child_fields(top.get("groups", []), fragments, variables)
        arguments = Arguments(
            input_spec(filter),
            [member.value for member in groupBy or []],
            None if bucket is None else (bucket.field.value, bucket.period.value),
            [
                (step.by.value, None if step.field is None else step.field.value, step.descending)
                for step in orderBy or []
            ],
            first,
            after,
        )
        return await answer(context, entity, arguments, top, groups, fragments, variables)

    return resolve


@dataclass(frozen=True)
class Arguments:
    """An aggregate field's arguments with enums as their values and inputs as plain values,
    as both executors read them: strawberry's converted arguments on the normal path,
    graphql-core's coerced ones on a direct plan (schema/execution/direct_aggregates.py).
    `order` holds each step's (by, field or None, descending)."""

    filter: Any
    group_by: list[str]
    bucket: tuple[str, str] | None
    order: list[tuple[str, str | None, bool]]
    first: int | None
    after: str | None


async def answer(
    context: RequestContext,
    entity: EntityInfo,
    arguments: Arguments,
    top: dict[str, Any],
    groups: dict[str, Any],
    fragments: Any,
    variables: Any,
) -> dict[str, Any]:
    """One aggregate field's value: its read (every check before any SQL), counted for the
    answer's `extensions.access`, shaped as the field's result type reads it."""
    asked = _measures(entity, top, fragments, variables) | _measures(entity, groups, fragments, variables)
    order, ordered_by = order_of(arguments.order)
    asked |= ordered_by
    read = AggregateRead(
        entity,
        arguments.filter,
        arguments.group_by,
        None if arguments.bucket is None else (arguments.bucket[0], Bucket(arguments.bucket[1])),
        sorted(asked),
        order,
        arguments.first,
        arguments.after,
        want_groups="groups" in top,
        want_total=any(name in top for name in (COUNT, *MEASURES)),
    )
    result = await aggregate(context.reader, context.current, read)
    context.count_aggregated((f"{entity.id}.{name}" for name in result.fields), result.suppressed)
    # The measures selected (at the top or per group), each with the fields asked of it.
    selected = {m for m in MEASURES if m in top or m in groups}
    fields = {}
    for measure in MEASURES:
        if measure in selected:
            names = tuple(n for m, n in asked if m == measure)
            fields[measure] = (names, tuple(label(measure, n) for n in names))
    out = _cell(result.total, fields) if result.total is not None else {}
    groups_out = []
    for cell in result.groups:
        shaped = _cell(cell, fields)
        shaped["key"], shaped["suppressed"] = cell.key, cell.suppressed
        groups_out.append(shaped)
    out["groups"] = groups_out
    out["pageInfo"] = {"hasNextPage": result.has_next, "endCursor": result.end_cursor}
    return out


def order_of(steps: list[tuple[str, str | None, bool]]) -> tuple[list[tuple[str, bool]], set[tuple[str, str]]]:
    """The groups' order as labels (hub/access/aggregate.py checks them against the read),
    and the (measure, field) pairs it orders by, which the read must measure."""
    order: list[tuple[str, bool]] = []
    measured: set[tuple[str, str]] = set()
    for by, named, descending in steps:
        if by in (COUNT, BUCKET):
            if named is not None:
                raise BadUserInput(
                    f"orderBy {AggregateOrderBy(by).name} takes no field: give a field to KEY or a measure"
                )
            order.append((by, descending))
        elif named is None:
            raise BadUserInput(f"orderBy {AggregateOrderBy(by).name} needs a field")
        elif by == "key":
            order.append((named, descending))
        else:
            measured.add((by, named))
            order.append((label(by, named), descending))
    return order, measured


def _measures(entity: EntityInfo, selected: dict[str, Any], fragments: Any, variables: Any) -> set[tuple[str, str]]:
    """The (measure, field) pairs a selection asks for."""
    out: set[tuple[str, str]] = set()
    for measure in MEASURES:
        if measure in selected:
            names = child_fields(selected[measure], fragments, variables)
            out.update((measure, name) for name in names if name in entity.fields)
    return out


def _cell(cell: Cell, fields: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]) -> dict[str, Any]:
    """One group's (or the total's) measures: per measure, its fields' names and their labels,
    worked out once per request, since this runs per group, up to 10,000 of them."""
    # A suppressed cell's measures are all withheld (Cell.measure).
    get = _WITHHELD.get if cell.suppressed else cell.values.get
    out: dict[str, Any] = {COUNT: get(COUNT)}
    for measure, (names, labels) in fields.items():
        out[measure] = dict(zip(names, map(get, labels), strict=True))
    return out


_WITHHELD: dict[str, Any] = {}
