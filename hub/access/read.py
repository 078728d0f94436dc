"""Reading entity data for a request: the plan's decisions turned into connector queries.

One statement per list (plus one for a selected total count) and one per chunk of related keys
(the connector's `fetch_by`). Only the columns the caller selected and may see are fetched;
filters, row rules, order and page are pushed into the statement, never applied after the
fetch. A relation's rows are bounded per parent in that statement, and every read is counted
against the request's value budget (hub/access/budget.py) before its rows are released.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.base import (
    UNREADABLE,
    Compare,
    Connector,
    ConnectorError,
    Filter,
    Op,
    OrderKey,
    Page,
    Query,
    QueryError,
    UnavailableError,
    conjoin,
)
from hub.access.budget import ValueBudget, values_per_row
from hub.access.cursor import Cursors
from hub.access.plan import AccessPlan, Decision
from hub.access.record import AccessRecord
from hub.access.relation_filter import compile_checked
from hub.access.release import Released, ReleasedRow, Releaser
from hub.access.semijoin import DEFAULT_MAX_KEYS, KeySets, Scoped, conjoin_scopes
from hub.catalog import Catalog, EntityInfo, RelationInfo
from hub.catalog.filters import FilterSpec, compile_order, spellings
from hub.catalog.model import FieldInfo
from hub.crypto.blind_index import normaliser
from hub.crypto.cells import FieldCells, index_bytes, index_form, row_keys
from hub.crypto.live import LiveKeyring
from hub.errors import BadUserInput, DepartmentUnavailable, Forbidden, Internal, LimitExceeded
from hub.health.guard import CircuitOpenError
from hub.lineage.refs import References

log = logging.getLogger("hub.access")

# Released rows carry the raw values relations join on under (JOIN, field) keys: the join may be
# allowed where the field itself is not released, and string-keyed readers never see them.
JOIN = "join"


@dataclass(frozen=True, slots=True)
class SealedJoin:
    """The join value of an encrypted field whose relation reaches a plain column: its value,
    decrypted in memory to query the plain side by value, and never released (it travels
    under a JOIN key, which no caller's field reads; its repr hides it, so no log shows it)."""

    # The stored blind index beside it (None without one), for relations to indexed targets.
    index: bytes | None
    plain: str = field(repr=False)


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
class ListResult:
    released: Released
    has_next: bool
    end_cursor: str | None
    total: int | None


@dataclass
class RequestAccess:
    """What one GraphQL request carries into the reader."""

    plan: AccessPlan
    record: AccessRecord
    budget: ValueBudget
    # The key sets of row rules that follow relations, fetched once per request when needed.
    key_sets: KeySets | None = None


@dataclass
class RelatedRows:
    """A relation's rows for a batch of join values: grouped by value, their release, and the
    values whose lists were cut at the relation's bound."""

    grouped: dict[Hashable, list[ReleasedRow]]
    released: Released
    cut: set[Hashable]


class Reader:
    def __init__(
        self,
        catalog: Catalog,
        connectors: Mapping[str, Connector],
        releaser: Releaser,
        keys: LiveKeyring,
        cursors: Cursors,
        default_page: int = 100,
        max_page: int = 10_000,
        max_semijoin_keys: int = DEFAULT_MAX_KEYS,
        *,
        relation_page: int = 100,
        max_relation_page: int = 1_000,
        max_values: int = 1_000_000,
        max_report_rows: int = 250_000,
        refs: References | None = None,
    ) -> None:
        self.catalog = catalog
        # Global references of the records read (hub/lineage/refs.py).
        self.refs = refs or References()
        self.cursors = cursors
        self.connectors = connectors
        self.releaser = releaser
        self.keys = keys
        self.default_page = default_page
        self.max_page = max_page
        self.max_semijoin_keys = max_semijoin_keys
        self.relation_page = relation_page
        self.max_relation_page = max_relation_page
        self.max_values = max_values
        # The accountability reports' per-key rows per request (hub/accountability/bound.py).
        self.max_report_rows = max_report_rows
        # Per entity, its encrypted fields some relation joins to a plain column: their values
        # are fetched and decrypted (in memory, never released) to query the plain side.
        self._sealed = _sealed_joins(catalog)

    def budget(self) -> ValueBudget:
        """A fresh value budget, for one request."""
        return ValueBudget(self.max_values)

    async def page(self, request: RequestAccess, read: ListRead) -> ListResult:
        entity, names, joins, page = read.entity, read.names, read.joins, read.page
        filter_spec, order, want_total, want_cursor = read.filter_spec, read.order, read.want_total, read.want_cursor
        plan = request.plan
        plan.require_readable(entity)
        limit = self._limit(page)
        if page.offset is not None and page.offset < 0:
            raise BadUserInput("`offset` must not be negative")
        if page.offset and page.after is not None:
            raise BadUserInput("give `after` or `offset`, not both")
        # Every check (fields, relations followed, order) before any statement runs.
        filtered = compile_checked(self.catalog, plan, entity, filter_spec, self._index_value)
        keys, order_fields = compile_order(entity, order)
        plan.require_plain(entity, sorted(order_fields), "ordering")
        scope = conjoin_scopes(filtered, plan.row_rule(entity.id))
        where = await self._scoped(request, scope) if isinstance(scope, Scoped) else scope
        columns = self._columns(plan, entity, names, joins)
        query = Query(entity.table, (), where, keys, limit, page.offset or 0)
        full_order = query.full_order()
        tag = f"{plan.principal.subject}|{_order_tag(entity, full_order)}"
        after = self.cursors.decode(tag, page.after) if page.after is not None else None
        if want_cursor:
            columns = _union(columns, [k.column for k in full_order])
        connector = self.connectors[entity.department]
        width = values_per_row(names, joins)
        async with request.budget.reading(limit, width) as allowed:
            # Fewer rows than the page asks for when the budget has less left: a row past
            # them is then not a next page but a refusal.
            capped = allowed < limit
            query = Query(entity.table, columns, where, keys, allowed if capped else limit, page.offset or 0, after)
            if want_total:
                fetched, total = await asyncio.gather(
                    self._run(entity, connector.fetch(query)),
                    self._run(entity, connector.count(entity.table, where)),
                )
            else:
                fetched, total = await self._run(entity, connector.fetch(query)), None
            page_rows: Page = fetched
            request.budget.charge(page_rows.count + int(capped and page_rows.has_more), width)
        released = await self._release(request, entity, page_rows, names, joins)
        end_cursor = None
        if want_cursor and page_rows.count:
            # From the last row fetched, left out or not, so the next page starts after it.
            at = _last_readable(page_rows, [k.column for k in full_order])
            if at is not None:
                end_cursor = self.cursors.encode(tag, [page_rows.column(k.column)[at] for k in full_order])
        return ListResult(released, page_rows.has_more, end_cursor, total)

    async def by_key(
        self, request: RequestAccess, entity: EntityInfo, key: Any, names: Sequence[str], joins: Sequence[str]
    ) -> Released:
        plan = request.plan
        # A by-key read is an equality filter on the key: without it a caller could confirm
        # guesses of a masked key (an ID number) one request at a time.
        plan.require_readable(entity)
        verdict = plan.field(entity.id, entity.key)
        if verdict.decision is not Decision.PLAIN and not verdict.lookup:
            plan.require_plain(entity, [entity.key], "a lookup by key", {entity.key: {"eq"}})
        key_info = entity.fields[entity.key]
        if key_info.encrypted:
            # An encrypted key is found by its blind index, never by decrypting the column.
            key = self._index_value(key_info, str(key))
        rule = plan.row_rule(entity.id)
        if isinstance(rule, Scoped):
            rule = await self._scoped(request, rule)
        where = conjoin(Compare(entity.table.key, Op.EQ, key), rule)
        query = Query(entity.table, self._columns(plan, entity, names, joins), where, (), 1)
        # One row at most: counted after the read, without a reservation (a by-key request
        # is small, and its every step is paid on each of many requests).
        request.budget.check()
        # `_run` inlined: a by-key read is the whole of a small request, and each coroutine
        # layer between the request and the driver is paid on every suspension and resumption.
        try:
            page = await self.connectors[entity.department].fetch(query)
        except (QueryError, ConnectorError) as error:
            raise _failure(entity, error) from None
        request.budget.charge(page.count, values_per_row(names, joins))
        return await self._release(request, entity, page, names, joins)

    async def related(
        self,
        request: RequestAccess,
        relation: RelationInfo,
        names: Sequence[str],
        joins: Sequence[str],
        values: Sequence[Hashable],
        args: RelationArgs = NO_ARGS,
    ) -> RelatedRows:
        """Rows of the relation's target whose target field is one of `values`, grouped by
        that value, and the release (what was withheld or masked); read by the connector's
        `fetch_by`, one statement per chunk of at most BATCH_CHUNK values with the target's
        row rule and the list's filter in each. A list keeps its first `args.first` rows
        (the relation page by default) in its order, then by key (a to-one relation its
        first row); the values whose lists were cut are named."""
        plan = request.plan
        verdict = plan.relation(relation.source, relation.name)
        if verdict.decision is Decision.DENIED:
            raise Forbidden(verdict.reason or f"following {relation.name} is not allowed")
        target = self.catalog.entity(relation.target)
        source_field = self.catalog.entity(relation.source).fields[relation.field]
        target_field = target.fields[relation.target_field]
        bound = self._relation_limit(args.first) if relation.many else 1
        # Every check (fields, relations followed, order) before any statement runs.
        filtered = compile_checked(self.catalog, plan, target, args.filter_spec, self._index_value)
        order, order_fields = compile_order(target, args.order)
        plan.require_plain(target, sorted(order_fields), "ordering")
        scope = conjoin_scopes(filtered, plan.row_rule(target.id))
        rule = await self._scoped(request, scope) if isinstance(scope, Scoped) else scope
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
                wanted[value] = self._index_value(target_field, str(value))
        return await self._matching(
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

    async def shared(
        self,
        request: RequestAccess,
        entity: EntityInfo,
        field: str,
        values: Sequence[Hashable],
        names: Sequence[str],
        joins: Sequence[str],
        many: bool,
    ) -> RelatedRows:
        """Rows of `entity` whose `field` is one of `values` (blind-index digests for an
        encrypted field), grouped by value: a shared entity's rows for a Federation gateway's
        batch of keys (schema/federation.py). One statement per chunk, with the entity's row
        rule; a list keeps the relation page's rows per value. The plan must release `field`
        plain or for lookups: the keys name rows by it."""
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
        rule = await self._scoped(request, scope) if isinstance(scope, Scoped) else scope
        wanted: dict[Hashable, Hashable] = {}
        for value in values:
            if value is not None and value not in wanted:
                wanted[value] = index_form(item, value) if item.index_column is not None else value  # type: ignore[arg-type]
        bound = self._relation_limit(None) if many else 1
        return await self._matching(request, entity, item, wanted, names, joins, bound, many, rule, ())

    async def _matching(
        self,
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
        columns = _union(self._columns(request.plan, target, names, joins), [match_column])
        unique = list(dict.fromkeys(wanted.values()))
        normal = normaliser(unseal) if unseal is not None else None
        if unseal is not None:
            sealed = [value.plain for value in wanted if isinstance(value, SealedJoin)]
            unique = list(dict.fromkeys(each for plain in sealed for each in spellings(unseal, plain)))

        def matched(match: Any) -> Any:
            if normal is not None:
                return None if match is None else normal(str(match))
            return _join_value(target_field, match)

        connector = self.connectors[target.department]
        width = values_per_row(names, joins)
        budget = request.budget

        def charge(page: Page) -> None:
            # Each chunk is counted as it is read: a request refused here (or by a read
            # running beside this one) sends no further chunk's statement. A row past a
            # capped read's limit is counted too, and is what passes the budget.
            budget.charge(page.count + int(page.has_more), width)

        async with budget.reading(len(unique) * bound, width) as allowed:
            capped = allowed < len(unique) * bound
            rows: Page = await self._run(
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
        released = await self._release(request, target, rows, names, joins)
        by_match: dict[Hashable, list[ReleasedRow]] = defaultdict(list)
        for match, out in zip(_kept(released, rows.column(match_column)), released.rows, strict=True):
            by_match[matched(match)].append(out)
        if normal is None:
            wanted = {value: _join_value(target_field, match) for value, match in wanted.items()}
        grouped = {value: by_match.get(match, []) for value, match in wanted.items()}
        cut = {value for value, match in wanted.items() if match in cut_matches}
        return RelatedRows(grouped, released, cut)

    async def _release(
        self,
        request: RequestAccess,
        entity: EntityInfo,
        rows: Page,
        names: Sequence[str],
        joins: Sequence[str],
    ) -> Released:
        record = request.record
        keyring = self.keys.keyring
        released = await self.releaser.release_paced(request.plan, record, entity, rows, names)
        if released.unknown_keys and await self.keys.refresh(since=keyring):
            # Values under a data-key version made since the keyring was loaded (a rotation while
            # serving): release again with the reloaded keyring, counting the rows once.
            record.undo_columns(entity.id, released.recorded, len(released.rows))
            released = await self.releaser.release_paced(request.plan, record, entity, rows, names)
        sealed = self._sealed.get(entity.id, ())
        for name in joins:
            item = entity.fields[name]
            if name in sealed:
                self._unseal(entity, item, rows, released)
                continue
            column = item.searchable_column
            values = _kept(released, rows.column(column))
            if column in rows.unreadable:
                # A join value that did not parse joins nothing (the field reports it).
                values = [None if value is UNREADABLE else value for value in values]
            for out, value in zip(released.rows, values, strict=True):
                out[(JOIN, name)] = _join_value(item, value)
        return released

    def _unseal(self, entity: EntityInfo, item: FieldInfo, rows: Page, released: Released) -> None:
        """Each kept row's join value of encrypted `item`, decrypted as a SealedJoin; one that
        does not decrypt joins nothing (the field itself reports it where it is selected)."""
        cells = FieldCells(self.keys.keyring, entity, item)
        stored = _kept(released, rows.column(item.column))
        keys = row_keys(entity, _kept(released, rows.column(entity.table.key)))
        indexes: Sequence[Any] = [None] * len(stored)
        if item.index_column is not None:
            indexes = [index_bytes(v) for v in _kept(released, rows.column(item.index_column))]
        decrypted = cells.decrypt(stored, keys)
        for out, plain, index in zip(released.rows, decrypted, indexes, strict=True):
            out[(JOIN, item.name)] = SealedJoin(index, plain) if isinstance(plain, str) else None

    async def _scoped(self, request: RequestAccess, scope: Scoped) -> Filter | None:
        """A row rule that follows relations, as a filter: its key sets are read once per
        request (under the bound; past it the request is refused, never cut)."""
        if request.key_sets is None:
            budget = request.budget

            async def fetch(entity: EntityInfo, query: Query) -> Page:
                # A key set is values the request holds: one per related row read, counted
                # against its value budget like the rows of its answer.
                budget.check()
                page: Page = await self._run(entity, self.connectors[entity.department].fetch(query))
                budget.charge(page.count, 1)
                return page

            request.key_sets = KeySets(fetch, self.max_semijoin_keys)
        return await request.key_sets.resolve(scope)

    def _index_value(self, item: FieldInfo, value: str) -> Any:
        """`value`'s blind index as `item`'s index column stores it."""
        domain = item.blind_index
        if domain is None:
            raise BadUserInput(f"{item.name} is encrypted and cannot be searched")
        return index_form(item, self.keys.keyring.blind_index(domain).digest(value))

    def _relation_limit(self, first: int | None) -> int:
        """The rows a relation's list keeps per parent."""
        if first is None:
            return self.relation_page
        if first < 1:
            raise BadUserInput("`first` on a relation's list must be at least 1")
        if first > self.max_relation_page:
            raise LimitExceeded(
                f"`first` on a relation's list may be at most {self.max_relation_page}",
                {"limit": self.max_relation_page},
            )
        return first

    def _limit(self, page: PageArgs) -> int:
        if page.first is None:
            return self.default_page
        if page.first < 0:
            raise BadUserInput("`first` must not be negative")
        if page.first > self.max_page:
            raise LimitExceeded(f"`first` may be at most {self.max_page}")
        return page.first

    def _columns(
        self, plan: AccessPlan, entity: EntityInfo, names: Sequence[str], joins: Sequence[str]
    ) -> tuple[str, ...]:
        # Withheld fields are never fetched: what is not read cannot leak. Join values are
        # fetched for relations, which have their own decision (an encrypted one that joins a
        # plain column as its ciphertext too, to decrypt the join value).
        wanted = [entity.table.key, *(entity.fields[name].searchable_column for name in joins)]
        sealed = self._sealed.get(entity.id)
        if sealed:
            wanted.extend(entity.fields[name].column for name in joins if name in sealed)
        # Persons touched are recorded whether or not their identifying field is selected (by
        # its blind index where it is encrypted: recording never decrypts).
        wanted.extend(entity.person_columns)
        entity_id, items = entity.id, entity.fields
        for name in names:
            if plan.field(entity_id, name).decision is not Decision.DENIED:
                wanted.append(items[name].column)
        return tuple(dict.fromkeys(wanted))

    @staticmethod
    async def _run(entity: EntityInfo, work: Any) -> Any:
        try:
            return await work
        except (QueryError, ConnectorError) as error:
            raise _failure(entity, error) from None


def _failure(entity: EntityInfo, error: QueryError | ConnectorError) -> Exception:
    """What a connector's failure is to the caller."""
    if isinstance(error, QueryError):
        return Internal("the hub built a query the department database refused")
    # The operator's record of the outage: which department, which read, and the driver's
    # reason (its class and code); the caller is told only that the department is unavailable.
    # A read refused by an open circuit is one of many while it stays open: the breaker logs
    # its changes of state instead.
    reason = error.reason if isinstance(error, UnavailableError) else type(error).__name__
    level = logging.DEBUG if isinstance(error, CircuitOpenError) else logging.WARNING
    log.log(level, "department %s unavailable reading %s: %s", entity.department, entity.id, reason)
    return DepartmentUnavailable(
        f"the {entity.department} department's database is unavailable; try again later",
        {"department": entity.department},
    )


def _sealed_joins(catalog: Catalog) -> dict[str, frozenset[str]]:
    """Per entity, the encrypted fields that a relation joins to a plain (unindexed) column."""
    found: dict[str, set[str]] = {}
    for entity in catalog:
        for relation in entity.relations.values():
            source = entity.fields[relation.field]
            target = catalog.entity(relation.target).fields[relation.target_field]
            if source.encrypted and target.index_column is None:
                found.setdefault(entity.id, set()).add(source.name)
    return {entity_id: frozenset(names) for entity_id, names in found.items()}


def _join_value(item: FieldInfo, value: Any) -> Any:
    # Blind indexes join as bytes, whichever form each department stores them in.
    return index_bytes(value) if item.index_column is not None else value


def _kept(released: Released, values: Sequence[Any]) -> Sequence[Any]:
    """`values`, one per row fetched, for the rows the release kept."""
    kept = released.kept
    return values if kept is None else [values[i] for i in kept]


def _last_readable(page: Page, columns: Sequence[str]) -> int | None:
    """The last row of `page` whose `columns` all read (a cursor holds their values), or None."""
    if not page.unreadable.intersection(columns):
        return page.count - 1
    values = [page.column(name) for name in columns]
    for at in range(page.count - 1, -1, -1):
        if all(column[at] is not UNREADABLE for column in values):
            return at
    return None


def _union(columns: Sequence[str], extra: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*columns, *extra]))


def _order_tag(entity: EntityInfo, order: Sequence[OrderKey]) -> str:
    return entity.id + "|" + ",".join(("-" if k.descending else "") + k.column for k in order)
