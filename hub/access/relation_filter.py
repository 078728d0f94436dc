"""A caller's filter, checked against the access plan and compiled into a row scope, including
conditions on related records in other departments' databases:
`{expenditures: {some: {amount: {gt: "10000"}}}}`, `{civilAffairsDeliveries: {none: {}}}`,
`{feedback: {every: {score: {gte: 4}}}}`.

A relation condition becomes a key-set semi-join (hub/access/semijoin.py, the machinery row
rules that follow relations use): one statement on the related side reads the join column of
the related rows matching the nested filter AND the related entity's row rule, and this side
keeps the rows whose join value is IN (`some`) or NOT IN (`none`) that set, in lists of at most
5,000 values, bounded by HUB_MAX_SEMIJOIN_KEYS related rows (LIMIT_EXCEEDED past it, never cut).
`every F` is `none (NOT F)`: no visible related row fails F (a related row on which F is
unknown, a NULL compared, does not fail it, as SQL's NOT of unknown is unknown).

Nothing here may become an oracle: the caller must be allowed to follow the relation; the nested
filter names only fields of the related entity released plain to the caller, or blind-indexed
identifiers with a single `eq` where the policy allows lookups (counted against the lookup quota
by schema/lookups.py before any SQL); and the related entity's row rule limits the key set, so
a `none` cannot reveal rows the caller may not see. Every check runs before any SQL.

Relation conditions stand at the top of a filter or under `and`, not under `or` or `not` (`not`
of `some` is `none`); `every` holds no relation conditions of its own (its negation could not
be one key set). They nest at most MAX_HOPS relations deep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import Not
from hub.access.plan import AccessPlan, Decision
from hub.access.semijoin import MAX_HOPS, RowScope, Scoped, SemiJoin, conjoin_scopes, split_relations
from hub.catalog import Catalog, EntityInfo
from hub.catalog.filters import FilterSpec, Indexer, compile_filter
from hub.errors import BadUserInput, Forbidden, LimitExceeded

QUANTIFIERS = ("some", "none", "every")
# Relation conditions in one filter: each is a statement on another department's database.
MAX_RELATION_CONDITIONS = 10


def compile_checked(
    catalog: Catalog,
    plan: AccessPlan,
    entity: EntityInfo,
    spec: FilterSpec | None,
    indexer: Indexer,
    hops: int = 0,
    conditions: list[int] | None = None,
) -> RowScope:
    """`spec` on `entity` as a row scope, once every field and relation it names has passed the
    caller's access plan (FORBIDDEN naming the first that does not, before any SQL).
    `conditions` counts the relation conditions of the whole filter (shared while nesting)."""
    if not spec:
        return None
    counted = [0] if conditions is None else conditions
    local, followed = split_relations(entity, spec)
    compiled = compile_filter(entity, local, indexer)
    plan.require_plain(entity, sorted(compiled.fields), "filtering", compiled.ops)
    if not followed:
        return compiled.where
    if hops >= MAX_HOPS:
        raise BadUserInput(f"a filter may follow at most {MAX_HOPS} relations in a row")
    joins: list[SemiJoin] = []
    for name, condition in followed:
        joins.extend(_joins(catalog, plan, entity, name, condition, indexer, hops, counted))
    return Scoped(compiled.where, tuple(joins)) if joins else compiled.where


def _joins(
    catalog: Catalog,
    plan: AccessPlan,
    entity: EntityInfo,
    name: str,
    condition: Any,
    indexer: Indexer,
    hops: int,
    counted: list[int],
) -> list[SemiJoin]:
    relation = entity.relations[name]
    where = f"{entity.type_name}.{name}"
    if not isinstance(condition, Mapping) or not condition or set(condition) - set(QUANTIFIERS):
        raise BadUserInput(f"{where} takes some, none or every, each a filter on {relation.target}")
    verdict = plan.relation(entity.id, name)
    if verdict.decision is Decision.DENIED:
        raise Forbidden(
            f"filtering on {where} is not allowed: {verdict.reason or 'you may not follow it'}",
            {"field": where},
        )
    target = catalog.entity(relation.target)
    plan.require_readable(target)
    source, target_field = entity.fields[relation.field], target.fields[relation.target_field]
    if target_field.encrypted != source.encrypted:
        # One side holds blind indexes or ciphertext, the other plain values: no SQL can match
        # them (a relation's rows are joined in memory; a filter runs in SQL).
        here, there = ("plain", "encrypted") if target_field.encrypted else ("encrypted", "plain")
        raise BadUserInput(f"{where} cannot be filtered on: {relation.field} is {here} here and {there} there")
    rule = plan.row_rule(target.id)
    out = []
    for quantifier in QUANTIFIERS:
        nested = condition.get(quantifier)
        if nested is None:
            continue
        counted[0] += 1
        if counted[0] > MAX_RELATION_CONDITIONS:
            raise LimitExceeded(
                f"a filter may hold at most {MAX_RELATION_CONDITIONS} conditions on related records",
                {"limit": MAX_RELATION_CONDITIONS},
            )
        if quantifier == "every":
            inner: RowScope = _negation(plan, target, nested, indexer, where)
            if inner is None:
                continue  # every related row meets no condition: true of every row
        else:
            inner = compile_checked(catalog, plan, target, nested, indexer, hops + 1, counted)
        # The related entity's row rule bounds the key set: rows the caller may not see neither
        # make a `some` true nor a `none` false.
        scope = conjoin_scopes(inner, rule)
        out.append(SemiJoin(relation, source, target, target_field, scope, quantifier != "some", "filter"))
    return out


def _negation(plan: AccessPlan, target: EntityInfo, spec: FilterSpec, indexer: Indexer, where: str) -> Not | None:
    """NOT `spec` on the related entity, for `every` (None where `spec` sets no condition): its
    fields must be plain (a negated `eq` is a search, never a single lookup)."""
    local, followed = split_relations(target, spec)
    if followed:
        raise BadUserInput(f"{where}: `every` may not hold conditions on further relations; use `none`")
    compiled = compile_filter(target, local, indexer)
    negated = {name: {f"not:{op}" for op in ops} for name, ops in compiled.ops.items()}
    plan.require_plain(target, sorted(compiled.fields), "filtering", negated)
    return None if compiled.where is None else Not(compiled.where)
