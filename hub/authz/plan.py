"""The access plan: every decision a request needs, made once before any data is read.

For each (entity, field) and relation the request selects, a decision PLAIN / MASKED /
DENIED, and for each entity a row rule as a connector filter. Resolvers only look decisions up;
they never ask the policy, and nothing is decided per row.

`AccessPolicy` is the seam the Casbin policy fills in; `ReleaseEverything` is the policy of a hub
with no policy loaded yet: every authenticated principal gets every field plain.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from connectors.base import Filter
from hub.catalog import Catalog, EntityInfo, FieldInfo, RelationInfo
from hub.errors import Forbidden, Internal
from hub.principal import Principal


class Decision(enum.Enum):
    PLAIN = "PLAIN"
    MASKED = "MASKED"
    DENIED = "DENIED"


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    # Why, for DENIED and MASKED: shown to the caller in the FORBIDDEN error and `explain`.
    reason: str = ""


PLAIN = Verdict(Decision.PLAIN)


class AccessPolicy(Protocol):
    @property
    def version(self) -> str: ...

    def field(self, principal: Principal, purpose: str | None, entity: EntityInfo, item: FieldInfo) -> Verdict: ...

    def relation(self, principal: Principal, purpose: str | None, relation: RelationInfo) -> Verdict: ...

    def row_rule(self, principal: Principal, purpose: str | None, entity: EntityInfo) -> Filter | None: ...


class ReleaseEverything:
    """No policy yet: release every field plain to any authenticated principal."""

    version = "open"

    def field(self, principal: Principal, purpose: str | None, entity: EntityInfo, item: FieldInfo) -> Verdict:
        return PLAIN

    def relation(self, principal: Principal, purpose: str | None, relation: RelationInfo) -> Verdict:
        return PLAIN

    def row_rule(self, principal: Principal, purpose: str | None, entity: EntityInfo) -> Filter | None:
        return None


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
    row_rules: dict[str, Filter | None] = field(default_factory=dict)

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

    def row_rule(self, entity_id: str) -> Filter | None:
        try:
            return self.row_rules[entity_id]
        except KeyError:
            raise Internal("the request reached an entity its access plan did not cover") from None

    def require_plain(self, entity: EntityInfo, names: Iterable[str], use: str) -> None:
        """Filters and order may only name fields the caller gets plain, so that they cannot
        reveal a withheld value; checked before any SQL runs."""
        for name in names:
            verdict = self.field(entity.id, name)
            if verdict.decision is not Decision.PLAIN:
                raise Forbidden(
                    f"{use} on {entity.type_name}.{name} is not allowed: the field is not released plain to you",
                    {"field": f"{entity.type_name}.{name}"},
                )


class Planner:
    """Builds access plans from a policy over the catalog."""

    def __init__(self, catalog: Catalog, policy: AccessPolicy) -> None:
        self.catalog = catalog
        self.policy = policy

    def plan(self, principal: Principal, purpose: str | None, selection: Selection) -> AccessPlan:
        policy = self.policy
        plan = AccessPlan(principal, purpose, policy.version)
        entity_ids = set(selection.fields) | set(selection.relations)
        # Related rows pass their own plan: a relation's target needs its row rule even when
        # none of its fields is selected.
        for entity_id, names in selection.relations.items():
            relations = self.catalog.entity(entity_id).relations
            entity_ids.update(relations[name].target for name in names)
        for entity_id in entity_ids:
            entity = self.catalog.entity(entity_id)
            plan.row_rules[entity_id] = policy.row_rule(principal, purpose, entity)
            # Filters and order may name fields outside the selection, so every field of a
            # reachable entity is decided; the cost is per field, once per request.
            for item in entity.fields.values():
                plan.fields[(entity_id, item.name)] = policy.field(principal, purpose, entity, item)
            for name in selection.relations.get(entity_id, frozenset()):
                relation = entity.relations[name]
                plan.relations[(entity_id, name)] = policy.relation(principal, purpose, relation)
        return plan
