"""Reading entity data for a request: the plan's decisions turned into connector queries.

One statement per list (plus one for a selected total count) and one per chunk of related keys
(the connector's `fetch_by`). Only the columns the caller selected and may see are fetched;
filters, row rules, order and page are pushed into the statement, never applied after the
fetch. A relation's rows are bounded per parent in that statement, and every read is counted
against the request's value budget (hub/access/budget.py) before its rows are released.

The Reader is the entry point and owns what every read shares (columns, release, row rules
that follow relations); the list read is in listing.py, the related rows in related.py, the
values relations join on in joins.py, a connector's failure as the caller sees it in
failure.py.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.base import (
    UNREADABLE,
    Compare,
    Connector,
    ConnectorError,
    Filter,
    Op,
    Page,
    Query,
    QueryError,
    conjoin,
)
from hub.access.budget import ValueBudget, values_per_row
from hub.access.cursor import Cursors
from hub.access.failure import failure
from hub.access.joins import JOIN, SealedJoin, join_value, kept, sealed_joins, unseal
from hub.access.listing import ListRead, ListResult, PageArgs, read_page
from hub.access.plan import AccessPlan, Decision
from hub.access.record import AccessRecord
from hub.access.related import NO_ARGS, RelatedRows, RelationArgs, read_related, read_shared
from hub.access.release import Released, Releaser
from hub.access.semijoin import DEFAULT_MAX_KEYS, KeySets, Scoped
from hub.catalog import Catalog, EntityInfo, RelationInfo
from hub.catalog.model import FieldInfo
from hub.crypto.cells import index_form
from hub.crypto.live import LiveKeyring
from hub.errors import BadUserInput, LimitExceeded
from hub.lineage.refs import References

# The names other modules import from here, wherever they are defined.
__all__ = [
    "JOIN",
    "NO_ARGS",
    "ListRead",
    "ListResult",
    "PageArgs",
    "Reader",
    "RelatedRows",
    "RelationArgs",
    "RequestAccess",
    "SealedJoin",
]


@dataclass
class RequestAccess:
    """What one GraphQL request carries into the reader."""

    plan: AccessPlan
    record: AccessRecord
    budget: ValueBudget
    # The key sets of row rules that follow relations, fetched once per request when needed.
    key_sets: KeySets | None = None


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
        self._sealed = sealed_joins(catalog)

    def budget(self) -> ValueBudget:
        """A fresh value budget, for one request."""
        return ValueBudget(self.max_values)

    async def page(self, request: RequestAccess, read: ListRead) -> ListResult:
        return await read_page(self, request, read)

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
            raise failure(entity, error) from None
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
        return await read_related(self, request, relation, names, joins, values, args)

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
        return await read_shared(self, request, entity, field, values, names, joins, many)

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
                unseal(self.keys.keyring, entity, item, rows, released)
                continue
            column = item.searchable_column
            values = kept(released, rows.column(column))
            if column in rows.unreadable:
                # A join value that did not parse joins nothing (the field reports it).
                values = [None if value is UNREADABLE else value for value in values]
            for out, value in zip(released.rows, values, strict=True):
                out[(JOIN, name)] = join_value(item, value)
        return released

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
            raise failure(entity, error) from None
