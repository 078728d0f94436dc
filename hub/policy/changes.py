"""Policy edits and who may make them.

A change is a list of edits applied to one snapshot as a whole: either every edit lands in the
next version or none does. Admins may make any edit that keeps the policy valid (the grant
invariants of hub.policy.grants hold for them too). A department's data steward may only grant
and revoke, on their own department's data, to another known department that is not public,
for fields they themselves read plain and never core (L4) data, starting no earlier than a few
minutes ago, for at most the configured number of days; and revoke only grants a steward made
on their department's data. A steward may also set and remove the smallest group size k of
aggregates (`min_group_sizes`) on their own department's data, never below the default of 5:
lowering k further, or setting it for every department's data (`*`), is an admin's decision.
Nobody may set k below 1 (hub.policy.snapshot.MIN_GROUP_FLOOR). Nobody else may change anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from hub.access.plan import Decision
from hub.access.suppression import DEFAULT_MIN_GROUP
from hub.auth.principal import Principal
from hub.catalog import Catalog
from hub.catalog.manifest import Tier
from hub.errors import BadUserInput, Forbidden
from hub.policy.decisions import SnapshotPolicy
from hub.policy.grants import Grant
from hub.policy.snapshot import (
    MIN_GROUP_CEILING,
    MIN_GROUP_FLOOR,
    Inheritance,
    MinGroup,
    MinGroupKey,
    RowRule,
    Rule,
    Snapshot,
    SnapshotError,
)
from hub.policy.terms import Terms, TermsError

ADMIN = "admin"
STEWARD = "data_steward"
# One change is reviewed as a whole; a bound keeps it reviewable and cheap to validate.
MAX_EDITS = 100
# A steward's grant may start this long before the request: clock skew, not backdating.
STEWARD_BACKDATE = timedelta(minutes=5)


class MinGroupEdit(MinGroupKey):
    """A group size line as an edit sends it: k is checked against its bounds when the edit
    applies, so a refused k is recorded with the change like any other refusal."""

    k: int


class Edit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Literal[
        "add_rule",
        "remove_rule",
        "add_inheritance",
        "remove_inheritance",
        "add_row_rule",
        "remove_row_rule",
        "grant",
        "revoke",
        "set_min_group_size",
        "remove_min_group_size",
    ]
    rule: Rule | None = None
    inheritance: Inheritance | None = None
    row_rule: RowRule | None = None
    grant: Grant | None = None
    grant_id: str | None = None
    # set_min_group_size: the line (replacing one of the same role, purpose and department);
    # remove_min_group_size: which line.
    min_group: MinGroupEdit | None = None
    min_group_key: MinGroupKey | None = None


EDITS = TypeAdapter(list[Edit])


def parse_edits(raw: Any) -> list[Edit]:
    try:
        edits = EDITS.validate_python(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise BadUserInput(f"edit {where}: {error['msg']}") from None
    if not edits:
        raise BadUserInput("a change needs at least one edit")
    if len(edits) > MAX_EDITS:
        raise BadUserInput(f"a change has at most {MAX_EDITS} edits; split it")
    return edits


def stamp(actor: Principal, edits: Sequence[Edit]) -> list[Edit]:
    """The edits with each grant's author and capacity set by the hub, not the caller: a
    grant is recorded as made by whoever made it, as admin or as steward."""
    capacity = "admin" if ADMIN in actor.roles else "data_steward"
    out = []
    for edit in edits:
        if edit.op == "grant" and edit.grant is not None:
            grant = edit.grant.model_copy(update={"granted_as": capacity})
            edit = edit.model_copy(update={"grant": grant})
        out.append(edit)
    return out


def apply(snapshot: Snapshot, edits: Sequence[Edit]) -> Snapshot:
    """The snapshot after every edit, at the next version; SnapshotError if one cannot apply."""
    rules = list(snapshot.rules)
    hierarchy = list(snapshot.hierarchy)
    row_rules = list(snapshot.row_rules)
    grants = list(snapshot.grants)
    min_groups = list(snapshot.min_group_sizes)
    for number, edit in enumerate(edits, start=1):
        where = f"edit {number} ({edit.op})"
        if edit.op == "add_rule":
            _add(rules, _need(edit.rule, where, "rule"), where)
        elif edit.op == "remove_rule":
            _remove(rules, _need(edit.rule, where, "rule"), where)
        elif edit.op == "add_inheritance":
            _add(hierarchy, _need(edit.inheritance, where, "inheritance"), where)
        elif edit.op == "remove_inheritance":
            _remove(hierarchy, _need(edit.inheritance, where, "inheritance"), where)
        elif edit.op == "add_row_rule":
            _add(row_rules, _need(edit.row_rule, where, "row_rule"), where)
        elif edit.op == "remove_row_rule":
            _remove(row_rules, _need(edit.row_rule, where, "row_rule"), where)
        elif edit.op == "set_min_group_size":
            line = _min_group(_need(edit.min_group, where, "min_group"), where)
            min_groups = [m for m in min_groups if m.key() != line.key()] + [line]
        elif edit.op == "remove_min_group_size":
            key: MinGroupKey = _need(edit.min_group_key, where, "min_group_key")
            kept_lines = [m for m in min_groups if m.key() != key.key()]
            if len(kept_lines) == len(min_groups):
                raise SnapshotError(f"{where}: there is no such line")
            min_groups = kept_lines
        elif edit.op == "grant":
            grant = _need(edit.grant, where, "grant")
            if any(g.id == grant.id for g in grants):
                raise SnapshotError(f"{where}: a grant with id {grant.id} exists")
            grants.append(grant)
        else:
            grant_id = _need(edit.grant_id, where, "grant_id")
            kept = [g for g in grants if g.id != grant_id]
            if len(kept) == len(grants):
                raise SnapshotError(f"{where}: there is no grant {grant_id}")
            grants = kept
    return Snapshot(
        version=snapshot.version + 1,
        rules=tuple(rules),
        hierarchy=tuple(hierarchy),
        row_rules=tuple(row_rules),
        grants=tuple(grants),
        # Carried over by every edit: a change that left them out would lower every k to 5.
        min_group_sizes=tuple(min_groups),
    )


def _min_group(sent: MinGroupEdit, where: str) -> MinGroup:
    try:
        return MinGroup.model_validate(sent.model_dump())
    except ValidationError:
        raise SnapshotError(f"{where}: k is a whole number from {MIN_GROUP_FLOOR} to {MIN_GROUP_CEILING}") from None


def concerned(actor: Principal, edits: Sequence[Edit], snapshot: Snapshot) -> set[str]:
    """The departments a change concerns, for the trail's admin event (a steward reads those of
    its department): the actor's, each edited entity's, each grant's recipient, each rule's
    domain; "*" where an edit reaches every department (a rule on a tier or for all domains)."""
    out = {actor.department}

    def of(object_id: str) -> str:
        department, dot, _ = object_id.partition(".")
        return department if dot else "*"

    for edit in edits:
        if edit.rule is not None:
            domain = edit.rule.domain
            out.add("*" if domain in ("*", "own") else domain)
            out.add(of(edit.rule.object))
        if edit.inheritance is not None:
            out.add("*" if edit.inheritance.domain == "*" else edit.inheritance.domain)
        if edit.row_rule is not None:
            out.add(of(edit.row_rule.entity))
        for line in (edit.min_group, edit.min_group_key):
            if line is not None:
                # A group size line on "*" reaches every department's data.
                out.add(line.department)
        grants = [edit.grant] if edit.grant is not None else [g for g in snapshot.grants if g.id == edit.grant_id]
        for grant in grants:
            out.update((grant.department, of(grant.entity)))
    return out


def _need(value: Any, where: str, name: str) -> Any:
    if value is None:
        raise SnapshotError(f"{where}: give `{name}`")
    return value


def _add(items: list[Any], item: Any, where: str) -> None:
    if item in items:
        raise SnapshotError(f"{where}: it is already there")
    items.append(item)


def _remove(items: list[Any], item: Any, where: str) -> None:
    if item not in items:
        raise SnapshotError(f"{where}: there is no such entry")
    items.remove(item)


def authorize(
    actor: Principal,
    edits: Sequence[Edit],
    current: SnapshotPolicy,
    catalog: Catalog,
    terms: Terms,
) -> None:
    """Raise Forbidden, naming the first edit the actor may not make."""
    if ADMIN in actor.roles:
        return
    if STEWARD not in actor.roles:
        raise Forbidden("only admins and data stewards may change the access policy")
    by_id = {g.id: g for g in current.snapshot.grants}
    for number, edit in enumerate(edits, start=1):
        where = f"edit {number} ({edit.op})"
        if edit.op == "revoke":
            grant = by_id.get(edit.grant_id or "")
            if grant is None:
                continue  # apply() says there is no such grant
            owner = catalog.entities.get(grant.entity)
            if owner is None or owner.department != actor.department:
                raise Forbidden(f"{where}: a steward may only revoke grants on their own department's data")
            if grant.granted_as != STEWARD:
                raise Forbidden(f"{where}: grant {grant.id} was made by an admin; only an admin revokes it")
            continue
        if edit.op in ("set_min_group_size", "remove_min_group_size"):
            _check_steward_min_group(actor, edit, where)
            continue
        if edit.op != "grant" or edit.grant is None:
            raise Forbidden(
                f"{where}: a data steward may only grant, revoke and set group sizes; rules and roles are for admins"
            )
        _check_steward_grant(actor, edit.grant, current, catalog, terms, where)


def _check_steward_min_group(actor: Principal, edit: Edit, where: str) -> None:
    """A steward sets or removes k on their own department's data only, never below the default."""
    line = edit.min_group if edit.op == "set_min_group_size" else edit.min_group_key
    if line is None:
        return  # apply() asks for it
    if line.department != actor.department:
        raise Forbidden(
            f"{where}: a steward may only set group sizes on their own department's data ({actor.department})"
        )
    if isinstance(line, MinGroupEdit) and line.k < DEFAULT_MIN_GROUP:
        raise Forbidden(
            f"{where}: a steward may not set k below {DEFAULT_MIN_GROUP}; lowering it further is for an admin"
        )


def _check_steward_grant(
    actor: Principal, grant: Grant, current: SnapshotPolicy, catalog: Catalog, terms: Terms, where: str
) -> None:
    entity = catalog.entities.get(grant.entity)
    if entity is None:
        raise SnapshotError(f"{where}: {grant.entity} is not an entity")
    if entity.department != actor.department:
        raise Forbidden(f"{where}: a steward may only grant on their own department's data ({actor.department})")
    try:
        receiver = terms.department(grant.department)
    except TermsError as exc:
        raise SnapshotError(f"{where}: {exc}") from None
    if grant.department == actor.department:
        raise Forbidden(f"{where}: a steward may not grant to their own department")
    if receiver.public:
        raise Forbidden(f"{where}: a steward may not grant to {grant.department}, a public department")
    if grant.granted_by != actor.subject:
        raise Forbidden(f"{where}: a grant is recorded as granted by its author ({actor.subject})")
    now = current.clock()
    # Measured from now, so consecutive or future grants cannot add up to a longer one, and a
    # grant cannot reach back to cover reads made before it.
    latest_end = now + timedelta(days=terms.max_grant_days)
    if grant.valid_from < now - STEWARD_BACKDATE or grant.valid_until > latest_end:
        raise Forbidden(
            f"{where}: a steward may grant from now for at most {terms.max_grant_days} days (until "
            f"{latest_end:%Y-%m-%d %H:%M} UTC)"
        )
    if grant.field is not None:
        items = [entity.fields[grant.field]] if grant.field in entity.fields else []
    else:
        items = [f for f in entity.fields.values() if f.tier is Tier.L3]
    for item in items:
        if item.tier is Tier.L4:
            raise Forbidden(f"{where}: core (L4) data such as {entity.id}.{item.name} is granted only by an admin")
        # What the steward reads plain through rules alone: a grant cannot pass on more.
        explained = current.explain_field(actor, None, entity, item)
        if explained.decision is not Decision.PLAIN or explained.grants:
            raise Forbidden(f"{where}: {entity.id}.{item.name} is not something you read plain yourself")


@dataclass(frozen=True)
class Exposure:
    """One difference a change makes for one kind of caller."""

    department: str
    roles: tuple[str, ...]
    purpose: str | None
    field: str
    before: Decision
    after: Decision


RANK = {Decision.DENIED: 0, Decision.MASKED: 1, Decision.PLAIN: 2}


def preview(
    before: SnapshotPolicy,
    after: SnapshotPolicy,
    callers: Sequence[Principal],
    catalog: Catalog,
    purposes: Sequence[str | None],
) -> list[Exposure]:
    """Every (kind of caller, purpose, field) whose decision the change moves, most exposing
    first: which roles gain (or lose) which fields."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    out: list[Exposure] = []
    for caller in callers:
        kind = (caller.department, tuple(sorted(caller.roles)))
        if kind in seen:
            continue
        seen.add(kind)
        for purpose in purposes:
            for entity in catalog:
                for item in entity.fields.values():
                    old = before.explain_field(caller, purpose, entity, item).decision
                    new = after.explain_field(caller, purpose, entity, item).decision
                    if old is not new:
                        out.append(Exposure(kind[0], kind[1], purpose, f"{entity.id}.{item.name}", old, new))
    out.sort(key=lambda e: (RANK[e.before] - RANK[e.after], e.department, e.field))
    return out
