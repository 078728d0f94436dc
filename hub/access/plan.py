"""The access plan: every decision a request needs, made once before any data is read.

For each (entity, field) and relation the request selects, a decision PLAIN / MASKED /
DENIED, and for each entity a row rule as a connector filter. Resolvers only look decisions up;
they never ask the policy, and nothing is decided per row.

`AccessPolicy` is the seam the Casbin policy fills in; `ReleaseEverything` is the policy of a hub
with no policy loaded yet: every authenticated principal gets every field plain.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from hub.access.semijoin import MAX_HOPS, RowScope
from hub.access.suppression import DEFAULT_MIN_GROUP
from hub.auth.principal import Principal
from hub.catalog import Catalog, EntityInfo, FieldInfo, RelationInfo
from hub.errors import Forbidden, Internal


class Decision(enum.Enum):
    PLAIN = "PLAIN"
    MASKED = "MASKED"
    DENIED = "DENIED"


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    # Why, for DENIED and MASKED: shown to the caller in the FORBIDDEN error and `explain`.
    reason: str = ""
    # Equality lookups (a single `eq`) are allowed on this field although it is not released
    # plain: a blind-indexed field where the policy allows `lookup`.
    lookup: bool = False


PLAIN = Verdict(Decision.PLAIN)


class AccessPolicy(Protocol):
    @property
    def version(self) -> str: ...

    def field(self, principal: Principal, purpose: str | None, entity: EntityInfo, item: FieldInfo) -> Verdict: ...

    def relation(self, principal: Principal, purpose: str | None, relation: RelationInfo) -> Verdict: ...

    def row_rule(self, principal: Principal, purpose: str | None, entity: EntityInfo) -> RowScope: ...

    def attributes_used(self, principal: Principal) -> tuple[tuple[str, str], ...]:
        """The principal's attributes its row rules read (part of a cached plan's key)."""
        ...

    def next_change(self, after: datetime) -> datetime | None:
        """When decisions may next change by themselves (a grant starting or ending)."""
        ...


class ReleaseEverything:
    """No policy yet: release every field plain to any authenticated principal."""

    version = "open"

    def field(self, principal: Principal, purpose: str | None, entity: EntityInfo, item: FieldInfo) -> Verdict:
        return PLAIN

    def relation(self, principal: Principal, purpose: str | None, relation: RelationInfo) -> Verdict:
        return PLAIN

    def row_rule(self, principal: Principal, purpose: str | None, entity: EntityInfo) -> RowScope:
        return None

    def attributes_used(self, principal: Principal) -> tuple[tuple[str, str], ...]:
        return ()

    def next_change(self, after: datetime) -> datetime | None:
        return None

    def min_group(self, principal: Principal, purpose: str | None, department: str | None = None) -> int:
        return DEFAULT_MIN_GROUP


@dataclass(frozen=True)
class Selection:
    """What a request's document can reach: fields and relations per entity id."""

    fields: Mapping[str, frozenset[str]]
    relations: Mapping[str, frozenset[str]]


@dataclass
class AccessPlan:
    principal: Principal
    purpose: str | None
    policy_version: str
    fields: dict[tuple[str, str], Verdict] = field(default_factory=dict)
    relations: dict[tuple[str, str], Verdict] = field(default_factory=dict)
    # Per entity: a filter, or a scope whose semi-joins the reader resolves per request.
    row_rules: dict[str, RowScope] = field(default_factory=dict)
    # Aggregates of a department's data suppress groups of fewer persons than this
    # (hub/access/suppression.py); a department not named here, the default.
    min_groups: Mapping[str, int] = field(default_factory=dict)

    def min_group(self, department: str) -> int:
        return self.min_groups.get(department, DEFAULT_MIN_GROUP)

    def field(self, entity_id: str, name: str) -> Verdict:
        try:
            return self.fields[(entity_id, name)]
        except KeyError:
            # A resolver reached a field the plan did not see: a bug, never a reason to release.
            raise Internal("the request reached a field its access plan did not cover") from None

    def relation(self, entity_id: str, name: str) -> Verdict:
        try:
            return self.relations[(entity_id, name)]
        except KeyError:
            raise Internal("the request reached a relation its access plan did not cover") from None

    def row_rule(self, entity_id: str) -> RowScope:
        try:
            return self.row_rules[entity_id]
        except KeyError:
            raise Internal("the request reached an entity its access plan did not cover") from None

    def require_readable(self, entity: EntityInfo) -> None:
        """Rows whose key is withheld cannot be listed: every row would lack its identity."""
        if self.field(entity.id, entity.key).decision is Decision.DENIED:
            raise Forbidden(f"rows of {entity.type_name} are not released to you", {"entity": entity.type_name})

    def require_plain(
        self, entity: EntityInfo, names: Iterable[str], use: str, ops: Mapping[str, set[str]] | None = None
    ) -> None:
        """Filters and order may only name fields the caller gets plain, so that they cannot
        reveal a withheld value; equality lookups are allowed where the verdict says `lookup`.
        Checked before any SQL runs."""
        for name in names:
            verdict = self.field(entity.id, name)
            used = (ops or {}).get(name, set())
            # One `eq` pins one candidate value; `in` lists, `or` and `not` would let a caller
            # search for a masked value, so they need the field plain.
            if verdict.lookup and used == {"eq"}:
                continue
            if verdict.decision is not Decision.PLAIN:
                raise Forbidden(
                    f"{use} on {entity.type_name}.{name} is not allowed: the field is not released plain to you",
                    {"field": f"{entity.type_name}.{name}"},
                )


@dataclass
class _Decided:
    """Decisions for one cache key, filled entity by entity as requests reach them."""

    policy: AccessPolicy
    expires: datetime | None
    fields: dict[tuple[str, str], Verdict] = field(default_factory=dict)
    relations: dict[tuple[str, str], Verdict] = field(default_factory=dict)
    row_rules: dict[str, RowScope] = field(default_factory=dict)
    # Plans already made under these decisions, by selection object (kept alive here, so its
    # id is not reused): a compiled document's requests share one selection.
    plans: dict[int, tuple[Selection, AccessPlan]] = field(default_factory=dict)


# Plans remembered per cache entry; past it the entry starts again rather than grow.
MAX_PLANS = 1024

PolicySource = Callable[[], AccessPolicy]


class Planner:
    """Builds access plans from the live policy over the catalog.

    Decisions are cached by (policy version, department, roles, purpose, the attributes row
    rules read); an entry expires at the earliest start or end of a grant, so a grant stops
    working at its end without a restart. A plan takes the policy once, so it never mixes two
    versions."""

    def __init__(self, catalog: Catalog, source: PolicySource, clock: Callable[[], datetime] | None = None) -> None:
        self.catalog = catalog
        self._source = source
        self._clock = clock or (lambda: datetime.now(UTC))
        self._cache: dict[tuple[object, ...], _Decided] = {}
        # (principal id, purpose) -> (the principal, the policy, its key); see `_key`.
        self._keys: dict[tuple[int, str | None], tuple[Principal, AccessPolicy, tuple[object, ...]]] = {}
        # Cache hits and misses for /metrics: plain integers, read when scraped.
        self.plan_hits = self.plan_misses = 0
        self.decision_hits = self.decision_misses = 0

    @property
    def policy(self) -> AccessPolicy:
        return self._source()

    def plan(self, principal: Principal, purpose: str | None, selection: Selection) -> AccessPlan:
        policy = self._source()
        decided = self._decided(policy, principal, purpose)
        made = decided.plans.get(id(selection))
        if made is not None and made[0] is selection:
            # The decisions are shared, read-only: nothing changes a plan once it is made.
            self.plan_hits += 1
            known = made[1]
            return AccessPlan(
                principal,
                purpose,
                known.policy_version,
                known.fields,
                known.relations,
                known.row_rules,
                known.min_groups,
            )
        self.plan_misses += 1
        plan = self._make(policy, decided, principal, purpose, selection)
        if len(decided.plans) >= MAX_PLANS:
            decided.plans.clear()
        decided.plans[id(selection)] = (selection, plan)
        return plan

    def field(self, principal: Principal, purpose: str | None, entity: EntityInfo, item: FieldInfo) -> Verdict:
        """One field's decision, from the cache plans use (and expiring with it): for checks
        that need a few fields before the request is planned (the lookup quota)."""
        policy = self._source()
        decided = self._decided(policy, principal, purpose)
        key = (entity.id, item.name)
        found = decided.fields.get(key)
        if found is None:
            found = decided.fields[key] = policy.field(principal, purpose, entity, item)
        return found

    def _make(
        self, policy: AccessPolicy, decided: _Decided, principal: Principal, purpose: str | None, selection: Selection
    ) -> AccessPlan:
        plan = AccessPlan(principal, purpose, policy.version)
        # A policy without the setting (a test's, or the open policy) keeps the default.
        min_group = getattr(policy, "min_group", None)
        if min_group is not None:
            plan.min_groups = {
                department: min_group(principal, purpose, department) for department in self.catalog.departments
            }
        followed = self._filterable(selection)
        entity_ids = set(selection.fields) | set(followed)
        # Related rows pass their own plan: a relation's target needs its row rule even when
        # none of its fields is selected.
        for entity_id, names in followed.items():
            relations = self.catalog.entity(entity_id).relations
            entity_ids.update(relations[name].target for name in names)
        for entity_id in entity_ids:
            entity = self.catalog.entity(entity_id)
            if entity_id not in decided.row_rules:
                decided.row_rules[entity_id] = policy.row_rule(principal, purpose, entity)
                # Filters and order may name fields outside the selection, so every field of a
                # reachable entity is decided; the cost is per field, once per cache entry.
                for item in entity.fields.values():
                    decided.fields[(entity_id, item.name)] = policy.field(principal, purpose, entity, item)
            plan.row_rules[entity_id] = decided.row_rules[entity_id]
            for name in entity.fields:
                plan.fields[(entity_id, name)] = decided.fields[(entity_id, name)]
        for entity_id, names in followed.items():
            entity = self.catalog.entity(entity_id)
            for name in names:
                key = (entity_id, name)
                if key not in decided.relations:
                    decided.relations[key] = self._relation(policy, plan, principal, purpose, entity.relations[name])
                plan.relations[key] = decided.relations[key]
        return plan

    def _filterable(self, selection: Selection) -> dict[str, set[str]]:
        """The relations `selection` follows, and every relation a filter on a reached entity
        may follow (`{expenditures: {some: ...}}`, MAX_HOPS deep): filters come in variables, so
        the plan covers what they could name. Decided once per cache entry, like the fields."""
        followed = {entity_id: set(names) for entity_id, names in selection.relations.items()}
        frontier = set(selection.fields) | set(selection.relations)
        frontier.update(
            self.catalog.entity(entity_id).relations[name].target
            for entity_id, names in selection.relations.items()
            for name in names
        )
        for _ in range(MAX_HOPS):
            reached: set[str] = set()
            for entity_id in frontier:
                relations = self.catalog.entity(entity_id).relations
                followed.setdefault(entity_id, set()).update(relations)
                reached.update(relation.target for relation in relations.values())
            frontier = reached - set(followed)
        return followed

    def _relation(
        self, policy: AccessPolicy, plan: AccessPlan, principal: Principal, purpose: str | None, relation: RelationInfo
    ) -> Verdict:
        """The policy's `follow` decision, narrowed: following a relation reveals its join value
        (and whether related rows exist), so the source's join field must be released plain
        or be searchable, and the target's rows must be readable at all."""
        verdict = policy.relation(principal, purpose, relation)
        if verdict.decision is Decision.DENIED:
            return verdict
        join = plan.fields[(relation.source, relation.field)]
        if join.decision is not Decision.PLAIN and not join.lookup:
            return Verdict(Decision.DENIED, f"following {relation.name} needs {relation.field} released plain to you")
        target = self.catalog.entity(relation.target)
        if plan.fields[(target.id, target.key)].decision is Decision.DENIED:
            return Verdict(Decision.DENIED, f"rows of {target.type_name} are not released to you")
        return verdict

    def _decided(self, policy: AccessPolicy, principal: Principal, purpose: str | None) -> _Decided:
        now = self._clock()
        key = self._key(policy, principal, purpose)
        found = self._cache.get(key)
        if found is not None and found.policy is policy and (found.expires is None or now < found.expires):
            self.decision_hits += 1
            return found
        self.decision_misses += 1
        if len(self._cache) > 10_000:  # many distinct callers: start again rather than grow
            self._cache.clear()
        found = self._cache[key] = _Decided(policy, policy.next_change(now))
        return found

    def _key(self, policy: AccessPolicy, principal: Principal, purpose: str | None) -> tuple[object, ...]:
        """The decisions' cache key; remembered for the last principal objects seen under this
        policy (the token cache hands out one object per app for a while), since working out
        the attributes row rules read costs more than the rest of a cached plan."""
        known = self._keys.get((id(principal), purpose))
        # The version too: a policy object may be changed in place (tests do).
        if known is not None and known[0] is principal and known[1] is policy and known[2][0] == policy.version:
            return known[2]
        key = (
            policy.version,
            principal.department,
            tuple(sorted(principal.roles)),
            purpose,
            policy.attributes_used(principal),
        )
        if len(self._keys) >= MAX_PLANS:
            self._keys.clear()
        self._keys[(id(principal), purpose)] = (principal, policy, key)
        return key
