"""Row-rule coverage: a role limited to some rows is limited on every entity about persons.

A row rule is only as good as its weakest gap: a district office confined to its district's
residents but free to list every district's health visits reads them all. So a role that has
row rules (its own or inherited) must have, for every entity about persons it can read at all,
a row rule, or be denied the entity outright. The policy store refuses a policy with a gap on
import and on every change, and the hub refuses to start on one.

An entity is about persons when it has a field marked `person: true`, a sensitive or core
(L3/L4) field, or a to-one relation to an entity about persons (a feedback row names one
request, which names its caller). A to-many relation does not make an entity about persons:
a district lists its residents, a budget line its expenditures, but their rows say nothing of
any person, and the persons reached through them pass their own row rules.

"Can read" follows the model (`policies/model.conf`) for every department a caller of the role
may belong to: any field released plain (a `read` line or a grant) or masked (a `mask` line,
a field with a mask, not core data), deny lines winning.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from hub.catalog import Catalog, EntityInfo, FieldInfo
from hub.catalog.manifest import Tier

if TYPE_CHECKING:
    from hub.policy.snapshot import Snapshot

# Stands for every caller department the policy does not name.
ELSEWHERE = "\x00another department"


def about_persons(catalog: Catalog) -> set[str]:
    """The ids of the catalog's entities about persons."""
    found = {
        entity.id
        for entity in catalog
        if any(item.person or item.tier in (Tier.L3, Tier.L4) for item in entity.fields.values())
    }
    grown = True
    while grown:
        grown = False
        for entity in catalog:
            if entity.id not in found and any(
                not relation.many and relation.target in found for relation in entity.relations.values()
            ):
                found.add(entity.id)
                grown = True
    return found


def uncovered(snapshot: Snapshot, catalog: Catalog) -> dict[str, list[str]]:
    """Per role with row rules: the entities about persons it can read without one."""
    persons = [catalog.entity(entity_id) for entity_id in sorted(about_persons(catalog))]
    ruled: dict[str, set[str]] = {}
    for rule in snapshot.row_rules:
        ruled.setdefault(rule.role, set()).add(rule.entity)
    if not ruled:
        return {}
    lines = [rule.line() for rule in snapshot.rules]
    hierarchy = [h.line() for h in snapshot.hierarchy]
    granted = {(grant.department, grant.entity) for grant in snapshot.grants}
    roles = {line[0] for line in lines} | {r for h in hierarchy for r in h[:2]} | set(ruled)
    departments = {
        *catalog.departments,
        *(h[2] for h in hierarchy if h[2] != "*"),
        *(department for department, _ in granted),
        ELSEWHERE,
    }
    gaps: dict[str, set[str]] = {}
    for role in sorted(roles):
        for department in sorted(departments):
            closure = _closure(role, department, hierarchy)
            limited = set().union(*(ruled.get(r, set()) for r in closure))
            if not any(r in ruled for r in closure):
                continue
            for entity in persons:
                if entity.id not in limited and _readable(entity, closure, department, lines, granted):
                    gaps.setdefault(role, set()).add(entity.id)
    return {role: sorted(found) for role, found in sorted(gaps.items())}


def check_coverage(snapshot: Snapshot, catalog: Catalog) -> str | None:
    """What is wrong with the policy's row-rule coverage, or None if nothing is."""
    gaps = uncovered(snapshot, catalog)
    if not gaps:
        return None
    listed = "; ".join(f"role {role} has none on {', '.join(entities)}" for role, entities in gaps.items())
    return (
        f"row rules leave entities about persons uncovered: {listed} (the role can read them: give "
        "each a row rule, or deny the role `read` and `mask` of it)"
    )


def _closure(role: str, department: str, hierarchy: list[list[str]]) -> set[str]:
    """`role` and every role it inherits for callers of `department`."""
    found = {role}
    frontier = [role]
    while frontier:
        current = frontier.pop()
        for child, parent, domain in hierarchy:
            if child == current and domain in ("*", department) and parent not in found:
                found.add(parent)
                frontier.append(parent)
    return found


def _readable(
    entity: EntityInfo, roles: set[str], department: str, lines: list[list[str]], granted: set[tuple[str, str]]
) -> bool:
    for item in entity.fields.values():
        read = _outcome(entity, item, roles, department, "read", lines)
        if read == "allow" or (read != "deny" and (department, entity.id) in granted):
            return True
        masked = item.mask is not None and item.tier is not Tier.L4
        if masked and _outcome(entity, item, roles, department, "mask", lines) == "allow":
            return True
    return False


def _outcome(
    entity: EntityInfo, item: FieldInfo, roles: set[str], department: str, action: str, lines: Iterable[list[str]]
) -> str:
    """The model's answer for one field: `deny` if a deny line matches, else `allow` if an
    allow line does, else `none`."""
    objects = (item.tier.value, entity.id, f"{entity.id}.{item.name}")
    allowed = False
    for role, domain, target, act, effect in lines:
        if role not in roles or act != action or target not in objects:
            continue
        if domain not in ("*", entity.department) and not (domain == "own" and entity.department == department):
            continue
        if effect == "deny":
            return "deny"
        allowed = True
    return "allow" if allowed else "none"
