"""The related-rows read: a relation's rows for a batch of join values, and a shared entity's
rows for a Federation gateway's batch of keys.

Read by the connector's `fetch_by`, one statement per chunk of values with the target's row
rule (and the relation list's filter) in each; each chunk is charged to the request's value
budget as it is read. A list keeps its first rows per value, and the values whose lists were
cut at that bound are named.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connectors.base import Filter, OrderKey, Page
from hub.access.budget import values_per_row
from hub.access.joins import SealedJoin, join_value, kept, union
from hub.access.plan import Decision
from hub.access.relation_filter import compile_checked
from hub.access.release import Released, ReleasedRow
from hub.access.semijoin import Scoped, conjoin_scopes
from hub.catalog import EntityInfo, RelationInfo
from hub.catalog.filters import FilterSpec, compile_order, spellings
from hub.catalog.model import FieldInfo
from hub.crypto.blind_index import normaliser
from hub.crypto.cells import index_form
from hub.errors import BadUserInput, Forbidden, LimitExceeded

if TYPE_CHECKING:
    from hub.access.read import Reader, RequestAccess


@dataclass(frozen=True)
class RelationArgs:
    """The arguments of a relation's list: a filter and order of the related rows (as a root
    list takes them) and the rows kept per parent (None: the relation page)."""

    filter_spec: FilterSpec | None = None
    order: tuple[tuple[str, bool], ...] = ()
    first: int | None = None


# A relation list asked for without arguments.
NO_ARGS = RelationArgs()


@dataclass
class RelatedRows:
    """A relation's rows for a batch of join values: grouped by value, their release, and the
    values whose lists were cut at the relation's bound."""

    grouped: dict[Hashable, list[ReleasedRow]]
    released: Released
    cut: set[Hashable]


async def read_related(
    reader: Reader,
    request: RequestAccess,
    relation: RelationInfo,
    names: Sequence[str],
    joins: Sequence[str],
    values: Sequence[Hashable],
    args: RelationArgs,
) -> RelatedRows:
    """The relation's rows for `Reader.related`."""
    plan = request.plan
    verdict = plan.relation(relation.source, relation.name)
    if verdict.decision is Decision.DENIED:
        raise Forbidden(verdict.reason or f"following {relation.name} is not allowed")
    target = reader.catalog.entity(relation.target)
    source_field = reader.catalog.entity(relation.source).fields[relation.field]
    target_field = target.fields[relation.target_field]
    bound = _relation_limit(reader, args.first) if relation.many else 1
    # Every check (fields, relations followed, order) before any statement runs.
    filtered = compile_checked(reader.catalog, plan, target, args.filter_spec, reader._index_value)
    order, order_fields = compile_order(target, args.order)
    plan.require_plain(target, sorted(order_fields), "ordering")
    scope = conjoin_scopes(filtered, plan.row_rule(target.id))
    rule = await reader._scoped(request, scope) if isinstance(scope, Scoped) else scope
    # The value each join value is looked up by. Encrypted fields join on blind indexes of
    # one domain; a plain source joining an encrypted target is indexed here.
    wanted: dict[Hashable, Hashable] = {}
    # An encrypted source joining a plain column: by the decrypted values in each spelling
    # a plain column may hold (an ID number's X as x: catalog/filters.py); rows are matched
    # back in the domain's normal form.
    unseal = source_field.encrypted and target_field.index_column is None
    domain = source_field.blind_index or target_field.blind_index or ""
    normal = normaliser(domain)
    for value in values:
        if value is None or value in wanted:
            continue
        if unseal:
            if isinstance(value, SealedJoin):
                wanted[value] = normal(value.plain)
        elif target_field.index_column is None:
            wanted[value] = value
        elif source_field.encrypted:
            index = value.index if isinstance(value, SealedJoin) else value
            if index is not None:
                wanted[value] = index_form(target_field, index)  # type: ignore[arg-type]
        else:
            wanted[value] = reader._index_value(target_field, str(value))
    return await _matching(
        reader,
        request,
        target,
        target_field,
        wanted,
        names,
        joins,
        bound,
        relation.many,
        rule,
        order,
        unseal=domain if unseal else None,
    )


async def read_shared(
    reader: Reader,
    request: RequestAccess,
    entity: EntityInfo,
    field: str,
    values: Sequence[Hashable],
    names: Sequence[str],
    joins: Sequence[str],
    many: bool,
) -> RelatedRows:
    """A shared entity's rows for `Reader.shared`."""
    plan = request.plan
    plan.require_readable(entity)
    item = entity.fields[field]
    verdict = plan.field(entity.id, field)
    if verdict.decision is not Decision.PLAIN and not verdict.lookup:
        raise Forbidden(
            f"finding {entity.type_name} by {field} needs {field} released plain to you",
            {"field": f"{entity.type_name}.{field}"},
        )
    scope = plan.row_rule(entity.id)
    rule = await reader._scoped(request, scope) if isinstance(scope, Scoped) else scope
    wanted: dict[Hashable, Hashable] = {}
    for value in values:
        if value is not None and value not in wanted:
            wanted[value] = index_form(item, value) if item.index_column is not None else value  # type: ignore[arg-type]
    bound = _relation_limit(reader, None) if many else 1
    return await _matching(reader, request, entity, item, wanted, names, joins, bound, many, rule, ())


async def _matching(
    reader: Reader,
    request: RequestAccess,
    target: EntityInfo,
    target_field: FieldInfo,
    wanted: Mapping[Hashable, Hashable],
    names: Sequence[str],
    joins: Sequence[str],
    bound: int,
    many: bool,
    rule: Filter | None,
    order: Sequence[OrderKey],
    unseal: str | None = None,
) -> RelatedRows:
    """The rows of `target` whose `target_field` matches a value of `wanted` (given value
    -> the value as stored), grouped by given value: one `fetch_by` statement per chunk.
    `unseal` names the index domain when an encrypted source joins a plain column: the
    given values are decrypted join values, looked up in each spelling a plain column may
    hold and matched back in the domain's normal form."""
    match_column = target_field.searchable_column
    columns = union(reader._columns(request.plan, target, names, joins), [match_column])
    unique = list(dict.fromkeys(wanted.values()))
    normal = normaliser(unseal) if unseal is not None else None
    if unseal is not None:
        sealed = [value.plain for value in wanted if isinstance(value, SealedJoin)]
        unique = list(dict.fromkeys(each for plain in sealed for each in spellings(unseal, plain)))

    def matched(match: Any) -> Any:
        if normal is not None:
            return None if match is None else normal(str(match))
        return join_value(target_field, match)

    connector = reader.connectors[target.department]
    width = values_per_row(names, joins)
    budget = request.budget

    def charge(page: Page) -> None:
        # Each chunk is counted as it is read: a request refused here (or by a read
        # running beside this one) sends no further chunk's statement. A row past a
        # capped read's limit is counted too, and is what passes the budget.
        budget.charge(page.count + int(page.has_more), width)

    async with budget.reading(len(unique) * bound, width) as allowed:
        capped = allowed < len(unique) * bound
        rows: Page = await reader._run(
            target,
            connector.fetch_by(
                target.table,
                match_column,
                unique,
                columns,
                where=rule,
                per_value=bound,
                limit=allowed if capped else None,
                order=order,
                on_chunk=charge,
            ),
        )
    # A to-one relation reads its first row: more rows behind it are no list cut short.
    cut_matches = {matched(m) for m in rows.cut} if many else set()
    # The match value travels outside the released row: the caller may not be allowed it.
    released = await reader._release(request, target, rows, names, joins)
    by_match: dict[Hashable, list[ReleasedRow]] = defaultdict(list)
    for match, out in zip(kept(released, rows.column(match_column)), released.rows, strict=True):
        by_match[matched(match)].append(out)
    if normal is None:
        wanted = {value: join_value(target_field, match) for value, match in wanted.items()}
    grouped = {value: by_match.get(match, []) for value, match in wanted.items()}
    cut = {value for value, match in wanted.items() if match in cut_matches}
    return RelatedRows(grouped, released, cut)


def _relation_limit(reader: Reader, first: int | None) -> int:
    """The rows a relation's list keeps per parent."""
    if first is None:
        return reader.relation_page
    if first < 1:
        raise BadUserInput("`first` on a relation's list must be at least 1")
    if first > reader.max_relation_page:
        raise LimitExceeded(
            f"`first` on a relation's list may be at most {reader.max_relation_page}",
            {"limit": reader.max_relation_page},
        )
    return first
