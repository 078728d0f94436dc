"""One aggregate field of a request: its access checks, its statement, and its release.

Decided before any SQL runs, from the request's access plan: the entity must be readable (then
`count` is allowed); every group key and measure names a field the caller gets PLAIN (FORBIDDEN
naming the field otherwise); encrypted fields may only be counted distinct, on their blind
index (BAD_USER_INPUT without one). The filter obeys the rules of a list's filter, conditions
on related records included (hub/access/relation_filter.py: checked before any SQL, the related
row rules bounding their key sets), and the entity's row rule is added to it, so a district
office's counts cover its district only.

Then one statement reads every group (at most `max_groups`; past that LIMIT_EXCEEDED), and the
release step suppresses small groups (hub/access/suppression.py) over all of them before the
order is finished and the page is cut: paging cannot undo a suppression.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from connectors.aggregates import AggregateOrder, AggregateQuery, Bucket, GroupKey, Measure, Measured
from hub.access.plan import AccessPlan, Decision
from hub.access.read import PageArgs, Reader, RequestAccess
from hub.access.relation_filter import compile_checked
from hub.access.semijoin import Scoped, conjoin_scopes
from hub.access.suppression import PERSONS, Suppression, suppress
from hub.catalog import EntityInfo
from hub.catalog.filters import FilterSpec
from hub.catalog.manifest import FieldType
from hub.errors import BadUserInput, Forbidden, LimitExceeded

# The measures a caller may ask for per field, by their GraphQL names.
MEASURES = {
    "sum": Measure.SUM,
    "avg": Measure.AVG,
    "min": Measure.MIN,
    "max": Measure.MAX,
    "countDistinct": Measure.COUNT_DISTINCT,
}
COUNT = "count"
BUCKET = "bucket"
NUMERIC = frozenset({FieldType.INT, FieldType.FLOAT, FieldType.DECIMAL})
# Types whose order a minimum or maximum means something in (booleans have none a user wants).
ORDERED = NUMERIC | {FieldType.ID, FieldType.STRING, FieldType.DATE, FieldType.DATETIME}
# The field types each measure takes: the generated measure types offer exactly these
# (schema/aggregates.py), and an order by a measure is refused here for any other.
MEASURE_TYPES: dict[str, frozenset[FieldType]] = {
    "sum": NUMERIC,
    "avg": NUMERIC,
    "min": ORDERED,
    "max": ORDERED,
    "countDistinct": frozenset(FieldType),
}


@dataclass(frozen=True)
class AggregateRead:
    """One aggregate field as its resolver asks for it. `measures` are (measure name, field
    name) pairs; `order` is (label, descending) pairs, a label being `count`, `bucket`, a group
    field's name or `<measure>.<field>`."""

    entity: EntityInfo
    filter_spec: FilterSpec | None = None
    group_by: Sequence[str] = ()
    bucket: tuple[str, Bucket] | None = None
    measures: Sequence[tuple[str, str]] = ()
    order: Sequence[tuple[str, bool]] = ()
    first: int | None = None
    after: str | None = None
    # Whether the answer's groups, and its measures over every row, are selected: one
    # statement for either or both.
    want_groups: bool = True
    want_total: bool = False
    # The most groups the statement may return, every one answered (no page): for the reports,
    # which join every group in the hub under their own bound. None: the reader's page bound.
    bound: int | None = None


class TooManyGroups(LimitExceeded):
    """More groups than the read's bound: refused, never cut."""

    def __init__(self, message: str, bound: int) -> None:
        super().__init__(message)
        self.bound = bound


@dataclass(slots=True)
class Cell:
    """One group (or the total): its key, its measures by label, and whether it is suppressed
    (then its measures are withheld)."""

    key: dict[str, Any]
    values: dict[str, Any]
    suppressed: bool = False

    def measure(self, label: str) -> Any:
        return None if self.suppressed else self.values.get(label)


@dataclass
class AggregateResult:
    # The measures over every row; None when not selected.
    total: Cell | None
    groups: list[Cell]
    has_next: bool
    end_cursor: str | None
    suppressed: int
    # The fields aggregated (group keys and measures), for the access record and extensions.
    fields: list[str] = field(default_factory=list)


def label(measure: str, name: str) -> str:
    return f"{measure}.{name}"


async def aggregate(reader: Reader, request: RequestAccess, read: AggregateRead) -> AggregateResult:
    entity, plan = read.entity, request.plan
    plan.require_readable(entity)
    limit = reader._limit(PageArgs(read.first)) if read.bound is None else read.bound
    # The filter as a list's: relation conditions (`some`/`none`/`every`) are checked against
    # the plan here, before any SQL, and run as key-set semi-joins under the related row rules.
    filtered = compile_checked(reader.catalog, plan, entity, read.filter_spec, reader._index_value)
    groups, measures, used = _terms(plan, entity, read)
    order = _order(read, groups, measures)
    offset = _offset(reader, request, entity, read)
    suppression = _suppression(plan, entity)
    if suppression is not None:
        measures = (*measures, Measured(PERSONS, Measure.COUNT_DISTINCT, suppression.column))
    scope = conjoin_scopes(filtered, plan.row_rule(entity.id))
    where = await reader._scoped(request, scope) if isinstance(scope, Scoped) else scope
    connector = reader.connectors[entity.department]
    bound = reader.max_page if read.bound is None else read.bound
    cells: list[Cell] = []
    total: Cell | None = None
    if groups and read.want_groups:
        # Every group, so that suppression is decided over all of them; the page is cut after.
        # The total, where selected too, comes from the same statement.
        query = AggregateQuery(entity.table, measures, groups, where, order, bound, with_total=read.want_total)
        found = await reader._run(entity, connector.aggregate(query))
        if found.has_more:
            raise TooManyGroups(f"{entity.type_name} has more than {bound} groups here: filter or group by less", bound)
        cells = _cells(groups, found.rows)
        total = None if found.total is None else Cell({}, found.total)
    elif read.want_total or not groups:
        found = await reader._run(entity, connector.aggregate(AggregateQuery(entity.table, measures, (), where)))
        total = Cell({}, found.rows[0])
    if not groups:
        # Ungrouped, the whole set is the one group.
        cells = [total] if total is not None and read.want_groups else []
    suppressed = 0 if suppression is None else suppress(cells, total, suppression)
    if suppressed:
        # Suppressed groups go last, by key: their place in an order by a measure would tell
        # how their hidden values compare with the others'.
        shown = [c for c in cells if not c.suppressed]
        hidden = sorted((c for c in cells if c.suppressed), key=lambda c: _key_order(c, groups))
        cells = shown + hidden
    page = cells[offset : offset + limit]
    has_next = len(cells) > offset + limit
    cursor = reader.cursors.encode(_tag(request, entity), [offset + limit]) if has_next else None
    request.record.add_aggregate(entity.id, used, suppressed)
    return AggregateResult(total, page, has_next, cursor, suppressed, used)


def _cells(groups: Sequence[GroupKey], rows: Sequence[dict[str, Any]]) -> list[Cell]:
    """The groups' cells, each key read from its row: per group (up to 10,000), no
    comprehension of its own."""
    labels = [g.label for g in groups]
    if len(labels) == 1:
        (only,) = labels
        return [Cell({only: row[only]}, row) for row in rows]
    keys = itemgetter(*labels)
    return [Cell(dict(zip(labels, keys(row), strict=True)), row) for row in rows]


def _terms(
    plan: AccessPlan, entity: EntityInfo, read: AggregateRead
) -> tuple[tuple[GroupKey, ...], tuple[Measured, ...], list[str]]:
    """The group keys and measures of `read`, each checked against the plan before any SQL."""
    used: list[str] = []
    groups: list[GroupKey] = []
    for name in read.group_by:
        if name in used:
            raise BadUserInput(f"groupBy names {name} twice: each field is one group key")
        item = _plain(plan, entity, name, "grouping")
        if item.encrypted:
            raise BadUserInput(f"{entity.type_name}.{name} is encrypted at rest: it can only be counted")
        groups.append(GroupKey(name, item.column))
        used.append(name)
    if read.bucket is not None:
        name, period = read.bucket
        item = _plain(plan, entity, name, "grouping by time")
        if item.type not in (FieldType.DATE, FieldType.DATETIME) or item.encrypted:
            raise BadUserInput(f"{entity.type_name}.{name} is not a date or moment: it has no periods to group by")
        groups.append(GroupKey(BUCKET, item.column, period))
        used.append(name)
    measures: list[Measured] = [Measured(COUNT, Measure.COUNT)]
    for measure_name, name in dict.fromkeys(read.measures):
        measure = MEASURES.get(measure_name)
        found = entity.fields.get(name)
        if measure is None or found is None:
            raise BadUserInput(f"{entity.type_name} has no measure {measure_name} of {name}")
        if found.type not in MEASURE_TYPES[measure_name]:
            # Checked before access: what a field's type allows is in the schema for all to see.
            raise BadUserInput(
                f"{entity.type_name}.{name} is of type {found.type.value}: it has no {measure_name} to order by "
                f"({measure_name} takes {_types(MEASURE_TYPES[measure_name])} fields)"
            )
        item = _plain(plan, entity, name, measure_name)
        column = item.column
        if item.encrypted:
            if measure is not Measure.COUNT_DISTINCT:
                raise BadUserInput(f"{entity.type_name}.{name} is encrypted at rest: it can only be counted")
            if item.index_column is None:
                raise BadUserInput(
                    f"{entity.type_name}.{name} is encrypted without a blind index: "
                    "its distinct values cannot be counted"
                )
            column = item.index_column
        measures.append(Measured(label(measure_name, name), measure, column))
        used.append(name)
    return tuple(groups), tuple(measures), list(dict.fromkeys(used))


def _plain(plan: AccessPlan, entity: EntityInfo, name: str, use: str) -> Any:
    item = entity.fields.get(name)
    if item is None:
        raise BadUserInput(f"{entity.type_name} has no field {name}")
    if plan.field(entity.id, name).decision is not Decision.PLAIN:
        raise Forbidden(
            f"{use} on {entity.type_name}.{name} is not allowed: the field is not released plain to you",
            {"field": f"{entity.type_name}.{name}"},
        )
    return item


def _order(read: AggregateRead, groups: Sequence[GroupKey], measures: Sequence[Measured]) -> tuple[AggregateOrder, ...]:
    labels = {g.label for g in groups} | {m.label for m in measures}
    order: list[AggregateOrder] = []
    seen: set[str] = set()
    for name, descending in read.order:
        if name not in labels:
            raise BadUserInput(f"orderBy names {_shown(name)}, which this aggregate neither groups by nor measures")
        if name in seen:
            raise BadUserInput(f"orderBy names {_shown(name)} twice: each group key or measure orders the groups once")
        seen.add(name)
        order.append(AggregateOrder(name, descending))
    return tuple(order)


def _shown(name: str) -> str:
    """An order's label as the caller wrote its step: `COUNT`, `BUCKET`, `KEY districtCode`,
    `SUM amount`."""
    if name in (COUNT, BUCKET):
        return name.upper()
    measure, dot, field_name = name.partition(".")
    return f"{MEASURES[measure].name} {field_name}" if dot else f"KEY {name}"


def _types(types: frozenset[FieldType]) -> str:
    names = [kind.value for kind in FieldType if kind in types]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def _suppression(plan: AccessPlan, entity: EntityInfo) -> Suppression | None:
    """How small groups of this entity are suppressed for this caller: by distinct persons
    (on the person field's blind index), unless the caller reads that field plain."""
    person = next((item for item in entity.fields.values() if item.person), None)
    if person is None or plan.field(entity.id, person.name).decision is Decision.PLAIN:
        return None
    return Suppression(person.searchable_column, plan.min_group(entity.department))


def _offset(reader: Reader, request: RequestAccess, entity: EntityInfo, read: AggregateRead) -> int:
    if read.after is None:
        return 0
    (offset,) = reader.cursors.decode(_tag(request, entity), read.after)
    if not isinstance(offset, int) or offset < 0:
        raise BadUserInput("`after` is not a cursor of this aggregate")
    return offset


def _tag(request: RequestAccess, entity: EntityInfo) -> str:
    return f"{request.plan.principal.subject}|aggregate|{entity.id}"


def _key_order(cell: Cell, groups: Sequence[GroupKey]) -> tuple[Any, ...]:
    out: list[Any] = []
    for group in groups:
        value = cell.key[group.label]
        out.append((1, 0) if value is None else (0, value))
    return tuple(out)
