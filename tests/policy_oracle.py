"""An oracle for field and relation decisions, written from the rules in issue 3, not from Casbin.

It reads the same snapshot data as the hub (rules, role hierarchy, grants) and decides in plain
Python, so that the truth table and the property test compare two independent readings of the
rules:

- A principal's effective roles are its own roles plus, transitively, every role they inherit
  through hierarchy lines whose domain is `*` or the principal's department.
- A rule line applies to a question when its role is an effective role; its domain is `*`, the
  department that owns the data, or `own` while the owner is the principal's department; its
  object is the field's tier, the entity id or the field id; and its action is the one asked.
- For an action, a deny line that applies wins; else an allow line that applies allows; else
  nothing is said.
- A field is plain if reading it is allowed; else (unless reading it is denied) plain if an
  active grant to the principal's department for the stated purpose names its entity (sensitive,
  L3, fields only) or the field itself; else masked if masking it is allowed, the field has a
  mask and the field is not core (L4); else withheld.
- A relation is followed if a `follow` line allows it; its tier is `relation`, its objects are
  also the relation id and the source entity id, and its owner is the target's department.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Literal

from hub.access.plan import Decision
from hub.auth.principal import Principal
from hub.catalog import Catalog, EntityInfo, FieldInfo, RelationInfo
from hub.catalog.manifest import Tier
from hub.policy.snapshot import Grant, Snapshot

Outcome = Literal["allow", "deny", "none"]


def effective_roles(snapshot: Snapshot, principal: Principal) -> frozenset[str]:
    """The principal's roles and every role they inherit in its department, transitively."""
    roles = set(principal.roles)
    lines = [h for h in snapshot.hierarchy if h.domain in ("*", principal.department)]
    grew = True
    while grew:
        grew = False
        for line in lines:
            if line.role in roles and line.inherits not in roles:
                roles.add(line.inherits)
                grew = True
    return frozenset(roles)


def outcome(snapshot: Snapshot, principal: Principal, owner: str, objects: Collection[str], action: str) -> Outcome:
    """What the rule lines say about one action on data of `owner` named by `objects`."""
    roles = effective_roles(snapshot, principal)
    said: Outcome = "none"
    for rule in snapshot.rules:
        if rule.role not in roles or rule.action != action or rule.object not in objects:
            continue
        if not (rule.domain in ("*", owner) or (rule.domain == "own" and owner == principal.department)):
            continue
        if rule.effect == "deny":
            return "deny"
        said = "allow"
    return said


def releasing_grants(
    snapshot: Snapshot, principal: Principal, purpose: str | None, entity: EntityInfo, item: FieldInfo, now: datetime
) -> list[Grant]:
    """Active grants that release this field plain to the principal for this purpose."""
    if purpose is None:
        return []
    return [
        grant
        for grant in snapshot.grants
        if grant.department == principal.department
        and grant.entity == entity.id
        and grant.purpose == purpose
        and grant.valid_from <= now < grant.valid_until
        and (grant.field == item.name or (grant.field is None and item.tier is Tier.L3))
    ]


def decide(
    snapshot: Snapshot, principal: Principal, purpose: str | None, entity: EntityInfo, item: FieldInfo, now: datetime
) -> Decision:
    objects = (item.tier.value, entity.id, f"{entity.id}.{item.name}")
    read = outcome(snapshot, principal, entity.department, objects, "read")
    if read == "allow":
        return Decision.PLAIN
    if read != "deny" and releasing_grants(snapshot, principal, purpose, entity, item, now):
        return Decision.PLAIN
    mask = outcome(snapshot, principal, entity.department, objects, "mask")
    if mask == "allow" and item.mask is not None and item.tier is not Tier.L4:
        return Decision.MASKED
    return Decision.DENIED


def follows(snapshot: Snapshot, principal: Principal, relation: RelationInfo, catalog: Catalog) -> bool:
    owner = catalog.entity(relation.target).department
    objects = ("relation", relation.source, f"{relation.source}.{relation.name}")
    return outcome(snapshot, principal, owner, objects, "follow") == "allow"
