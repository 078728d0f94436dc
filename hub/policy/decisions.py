"""The policy of one snapshot: field, relation and row decisions for a principal and purpose.

The rules, in order (deny always wins):
1. a `read` line for one of the caller's roles (by tier, entity or field) releases a field plain;
2. else an active grant to the caller's department, for the stated purpose, on the entity
   (sensitive, L3, fields) or on the field itself (any tier) releases it plain;
3. else a `mask` line releases it masked, if the field has a mask and is not core (L4): core
   data is never masked into hints;
4. else the field is withheld.
A `deny` line for the action skips its step. Relations need a `follow` line. Row rules of all
the caller's roles on an entity must all hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from connectors.base import In
from hub.access.plan import Decision, Verdict
from hub.access.semijoin import RowScope, compile_scope, conjoin_scopes
from hub.access.suppression import DEFAULT_MIN_GROUP
from hub.auth.principal import Principal
from hub.catalog import Catalog, EntityInfo, FieldInfo, RelationInfo
from hub.catalog.manifest import Tier
from hub.policy.enforcer import Ask, Enforcer
from hub.policy.grants import Grant, grant_problem
from hub.policy.snapshot import Snapshot, placeholders, substitute
from hub.policy.terms import Terms

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Explanation:
    decision: Decision
    reason: str
    rules: list[list[str]] = field(default_factory=list)
    grants: list[Grant] = field(default_factory=list)


class SnapshotPolicy:
    """Decisions under one immutable snapshot; safe to share between concurrent requests."""

    def __init__(
        self, snapshot: Snapshot, catalog: Catalog, clock: Clock = utc_now, terms: Terms | None = None
    ) -> None:
        self.snapshot = snapshot
        self.catalog = catalog
        self.clock = clock
        # With terms, a grant that breaks an invariant (hub.policy.grants) releases nothing even
        # if it is stored: a policy written before a rule tightened fails closed.
        self.terms = terms
        self.enforcer = Enforcer(snapshot)
        # Objects that rules name besides tiers: a field not named here is decided by its
        # tier alone, so its answer can be shared with its tier's other fields.
        self._named = {rule.object for rule in snapshot.rules}
        self._memo: dict[tuple[str, ...], tuple[str, list[str]]] = {}

    @property
    def version(self) -> str:
        return str(self.snapshot.version)

    # --- the AccessPolicy protocol -----------------------------------------------------------

    def field(self, principal: Principal, purpose: str | None, entity: EntityInfo, item: FieldInfo) -> Verdict:
        explained = self.explain_field(principal, purpose, entity, item)
        # A field withheld from the caller (by tier or by a deny line) is not searchable either.
        lookup = explained.decision is not Decision.DENIED and self.lookup(principal, entity, item)
        return Verdict(explained.decision, explained.reason, lookup)

    def lookup(self, principal: Principal, entity: EntityInfo, item: FieldInfo) -> bool:
        """Equality lookups on a blind-indexed field, where a `lookup` line allows them."""
        if item.blind_index is None:
            return False
        field_id = f"{entity.id}.{item.name}"
        outcome, _ = self._ask(principal, entity.department, entity.id, field_id, item.tier.value, "lookup")
        return outcome == "allow"

    def relation(self, principal: Principal, purpose: str | None, relation: RelationInfo) -> Verdict:
        explained = self.explain_relation(principal, relation)
        return Verdict(explained.decision, explained.reason)

    def row_rule(self, principal: Principal, purpose: str | None, entity: EntityInfo) -> RowScope:
        roles = self.roles(principal)
        filters: list[RowScope] = []
        for rule in self.snapshot.row_rules:
            if rule.entity == entity.id and rule.role in roles:
                if not placeholders(rule.filter) <= set(principal.attributes):
                    # A caller without an attribute its row rule reads sees no rows at all, under
                    # whatever operator the rule uses.
                    return In(entity.table.key, ())
                spec = substitute(rule.filter, principal.attributes)
                # A rule that follows a relation becomes a semi-join, resolved per request.
                filters.append(compile_scope(self.catalog, entity, spec))
        return conjoin_scopes(*filters)

    # --- explanations ------------------------------------------------------------------------

    def explain_field(
        self, principal: Principal, purpose: str | None, entity: EntityInfo, item: FieldInfo
    ) -> Explanation:
        field_id = f"{entity.id}.{item.name}"
        tier = item.tier.value
        outcome, rules = self._ask(principal, entity.department, entity.id, field_id, tier, "read")
        if outcome == "allow":
            return Explanation(Decision.PLAIN, "", [rules])
        denied = [rules] if outcome == "deny" else []
        grants = [] if outcome == "deny" else self.grants_for(principal, purpose, entity, item)
        if grants:
            return Explanation(Decision.PLAIN, "", denied, grants)
        mask_outcome, mask_rules = self._ask(principal, entity.department, entity.id, field_id, tier, "mask")
        if mask_outcome == "allow" and item.mask is not None and item.tier is not Tier.L4:
            why = f"masked: {tier} data of {entity.department}" + (
                f" needs a grant for purpose {purpose}" if purpose else " needs a grant and a stated purpose"
            )
            return Explanation(Decision.MASKED, why, [*denied, mask_rules])
        if mask_outcome == "deny":
            denied.append(mask_rules)
        if denied:
            why = f"{entity.id}.{item.name} is denied to you by a policy rule"
        else:
            why = f"{tier} data of {entity.department} is not released to {principal.department}" + (
                "" if purpose else " without a stated purpose and a grant"
            )
        return Explanation(Decision.DENIED, why, denied)

    def explain_relation(self, principal: Principal, relation: RelationInfo) -> Explanation:
        target = self.catalog.entity(relation.target)
        relation_id = f"{relation.source}.{relation.name}"
        outcome, rules = self._ask(principal, target.department, relation.source, relation_id, "relation", "follow")
        if outcome == "allow":
            return Explanation(Decision.PLAIN, "", [rules])
        return Explanation(
            Decision.DENIED, f"following {relation.name} is not allowed", [rules] if outcome == "deny" else []
        )

    def grants_for(self, principal: Principal, purpose: str | None, entity: EntityInfo, item: FieldInfo) -> list[Grant]:
        if purpose is None:
            return []
        now = self.clock()
        return [
            grant
            for grant in self.snapshot.grants
            if grant.department == principal.department
            and grant.entity == entity.id
            and grant.purpose == purpose
            and (grant.field == item.name or (grant.field is None and item.tier is Tier.L3))
            and grant.active(now)
            and (self.terms is None or grant_problem(grant, entity, self.terms) is None)
        ]

    # --- what plans depend on, for caching ----------------------------------------------------

    def roles(self, principal: Principal) -> set[str]:
        """The caller's roles with every role they inherit in its department, for row rules
        (Casbin follows the same hierarchy for rule lines)."""
        found = set(principal.roles)
        frontier = list(found)
        while frontier:
            role = frontier.pop()
            for line in self.snapshot.hierarchy:
                if line.role == role and line.domain in ("*", principal.department) and line.inherits not in found:
                    found.add(line.inherits)
                    frontier.append(line.inherits)
        return found

    def attributes_used(self, principal: Principal) -> tuple[tuple[str, str], ...]:
        """The caller's attributes that its row rules read: part of a cached plan's key."""
        names: set[str] = set()
        roles = self.roles(principal)
        for rule in self.snapshot.row_rules:
            if rule.role in roles:
                names |= placeholders(rule.filter)
        # A missing attribute is keyed apart from an empty one: they decide differently.
        return tuple(sorted((n, principal.attributes.get(n, "\x00missing")) for n in names))

    def min_group(self, principal: Principal, purpose: str | None, department: str | None = None) -> int:
        """The fewest persons an aggregate's group of `department`'s data may show
        (hub/access/suppression.py): the largest k of the lines for the caller's roles, purpose
        and that department, else the default."""
        roles = self.roles(principal)
        sizes = [
            line.k
            for line in self.snapshot.min_group_sizes
            if line.role in roles and line.purpose in ("*", purpose) and line.department in ("*", department)
        ]
        return max(sizes, default=DEFAULT_MIN_GROUP)

    def next_change(self, after: datetime) -> datetime | None:
        """The earliest grant start or end after `after`: cached plans expire there."""
        moments = [m for g in self.snapshot.grants for m in (g.valid_from, g.valid_until) if m > after]
        return min(moments) if moments else None

    # --- asking Casbin ----------------------------------------------------------------------

    def _ask(
        self, principal: Principal, owner: str, entity_id: str, item_id: str, tier: str, action: str
    ) -> tuple[str, list[str]]:
        """Across the caller's roles: `deny` if any role's answer is an explicit deny, `allow`
        if any allows, else `none`."""
        found_allow: list[str] | None = None
        for role in sorted(principal.roles) or [""]:
            specific = entity_id in self._named or item_id in self._named
            key = (
                role,
                principal.department,
                owner,
                entity_id if specific else "",
                item_id if specific else "",
                tier,
                action,
            )
            answer = self._memo.get(key)
            if answer is None:
                ask = Ask(role, principal.department, owner, entity_id, item_id, tier, action)
                answer = self._memo[key] = self.enforcer.outcome(ask)
            outcome, line = answer
            if outcome == "deny":
                return "deny", line
            if outcome == "allow" and found_allow is None:
                found_allow = line
        return ("allow", found_allow) if found_allow is not None else ("none", [])
