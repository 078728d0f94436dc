"""The policy snapshot: rules, role hierarchy, row rules and grants as one versioned value.

A snapshot is immutable; a change makes a new one with the next version. It is stored as JSON
in the hub database and seeded from `policies/default.yaml`. Validation against the catalog
names the entry that is wrong, so a bad import or edit is refused whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.access.semijoin import MAX_HOPS, compile_scope
from hub.catalog import Catalog, EntityInfo
from hub.errors import HubError
from hub.policy.coverage import check_coverage

# Grant and load_purposes lived here once; they are re-exported for code that imports them so.
from hub.policy.grants import Grant as Grant
from hub.policy.grants import grant_problem
from hub.policy.terms import POLICIES, Terms
from hub.policy.terms import load_purposes as load_purposes

TIERS = ("L1", "L2", "L3", "L4")
ACTIONS = ("read", "mask", "follow", "lookup")
PLACEHOLDER = re.compile(r"^\$principal\.([A-Za-z_][A-Za-z0-9_]*)$")
ROLE = r"^[a-z][a-z0-9_]*$"
# Roles the hub itself acts on, whatever the rules say: policy administration, and reading
# /metrics (monitoring, which the policy gives no data).
BUILT_IN_ROLES = ("admin", "data_steward", "monitoring")


class SnapshotError(Exception):
    """A policy snapshot or change is invalid; the message names the entry."""


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(Frozen):
    role: str = Field(pattern=ROLE)
    domain: str = Field(pattern=r"^(\*|own|[a-z][a-z0-9_]*)$")
    object: str  # a tier, `relation`, an entity id or a field id
    action: Literal["read", "mask", "follow", "lookup"]
    effect: Literal["allow", "deny"] = "allow"

    def line(self) -> list[str]:
        return [self.role, self.domain, self.object, self.action, self.effect]


class Inheritance(Frozen):
    role: str = Field(pattern=ROLE)
    inherits: str = Field(pattern=ROLE)
    domain: str = Field(default="*", pattern=r"^(\*|[a-z][a-z0-9_]*)$")

    def line(self) -> list[str]:
        return [self.role, self.inherits, self.domain]


class RowRule(Frozen):
    role: str = Field(pattern=ROLE)
    entity: str
    # A filter in the GraphQL filter shape; string values `$principal.<attribute>` are replaced
    # by the caller's attribute when the plan is made. A key may name a relation of the entity
    # with a filter on its target (`{patient: {districtCode: {eq: ...}}}`): a key-set semi-join.
    filter: dict[str, Any]


class MinGroup(Frozen):
    """Aggregates suppress groups of fewer than `k` persons for callers with `role` stating
    `purpose` (`*`: any); where several lines apply, the largest k. Without a line, 5."""

    role: str = Field(pattern=ROLE)
    purpose: str = Field(default="*", pattern=r"^(\*|[a-z][a-z0-9_]*)$")
    # k = 1 shows every group: an operator's choice for a caller whose access is itself audited
    # (the demo's auditor under purpose audit, docs/lineage.md).
    k: int = Field(ge=1, le=1000)


class Snapshot(Frozen):
    version: int = 0
    rules: tuple[Rule, ...] = ()
    hierarchy: tuple[Inheritance, ...] = ()
    row_rules: tuple[RowRule, ...] = ()
    grants: tuple[Grant, ...] = ()
    min_group_sizes: tuple[MinGroup, ...] = ()

    def to_json(self) -> dict[str, Any]:
        # Without sizes the stored form stays as it was before they existed.
        unset = set() if self.min_group_sizes else {"min_group_sizes"}
        return self.model_dump(mode="json", exclude={"version", *unset})

    def role_names(self) -> set[str]:
        """The roles this policy gives meaning to, and the hub's own (admin, data_steward, monitoring):
        the only roles an app may be given."""
        named = {r.role for r in self.rules} | {r.role for r in self.row_rules}
        named |= {h.role for h in self.hierarchy} | {h.inherits for h in self.hierarchy}
        return named | set(BUILT_IN_ROLES)

    @classmethod
    def from_json(cls, version: int, data: Mapping[str, Any]) -> Snapshot:
        return cls.model_validate({**data, "version": version})


def parse_seed(raw: Mapping[str, Any], now: datetime | None = None) -> Snapshot:
    """A snapshot from the YAML seed format (rules and hierarchy as lists). A seed grant gives
    its window either as `valid_from`/`valid_until` or as `valid_for_days`, counted from `now`
    (the moment of seeding), so the demo's grants keep the longest-grant rule whenever it starts."""
    now = now or datetime.now(UTC)
    try:
        rules = [Rule(role=r[0], domain=r[1], object=r[2], action=r[3], effect=r[4]) for r in raw.get("rules", [])]
        hierarchy = [Inheritance(role=h[0], inherits=h[1], domain=h[2]) for h in raw.get("hierarchy", [])]
        row_rules = [RowRule.model_validate(r) for r in raw.get("row_rules", [])]
        grants = [
            Grant.model_validate({"id": f"seed-{i + 1}", **_window(g, now)})
            for i, g in enumerate(raw.get("grants", []))
        ]
        min_groups = [MinGroup.model_validate(m) for m in raw.get("min_group_sizes", [])]
    except (ValidationError, IndexError, TypeError, KeyError, AttributeError, ValueError) as exc:
        raise SnapshotError(f"the policy seed is malformed: {_first(exc)}") from None
    return Snapshot(
        version=0,
        rules=tuple(rules),
        hierarchy=tuple(hierarchy),
        row_rules=tuple(row_rules),
        grants=tuple(grants),
        min_group_sizes=tuple(min_groups),
    )


def _window(entry: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    if "valid_for_days" not in entry:
        return dict(entry)
    days = entry["valid_for_days"]
    if not isinstance(days, int) or isinstance(days, bool) or not 0 < days <= 3660:
        raise ValueError("valid_for_days is a whole number of days")
    rest = {k: v for k, v in entry.items() if k != "valid_for_days"}
    return {**rest, "valid_from": now, "valid_until": now + timedelta(days=days)}


def to_seed(snapshot: Snapshot) -> dict[str, Any]:
    """The seed (export) format of a snapshot: what `parse_seed` reads back."""
    return {
        "rules": [rule.line() for rule in snapshot.rules],
        "hierarchy": [h.line() for h in snapshot.hierarchy],
        "row_rules": [r.model_dump(mode="json") for r in snapshot.row_rules],
        "grants": [g.model_dump(mode="json") for g in snapshot.grants],
        **({"min_group_sizes": [m.model_dump() for m in snapshot.min_group_sizes]} if snapshot.min_group_sizes else {}),
    }


def load_seed(folder: Path = POLICIES, now: datetime | None = None) -> Snapshot:
    return parse_seed(yaml.safe_load((folder / "default.yaml").read_text(encoding="utf-8")), now)


def _first(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
    if isinstance(exc, ValueError):
        return str(exc)
    return "an entry has the wrong shape"


def validate(snapshot: Snapshot, catalog: Catalog, terms: Terms, coverage: bool = True) -> None:
    """Every rule, row rule and grant names things that exist, every grant keeps the grant
    invariants (hub.policy.grants), and (`coverage`, for a whole policy) a role with row rules
    has one for every entity about persons it can read; raise SnapshotError if not."""
    fields = {f"{e.id}.{f}" for e in catalog for f in e.fields}
    relations = {f"{e.id}.{r}" for e in catalog for r in e.relations}
    departments = set(catalog.departments)
    for rule in snapshot.rules:
        known = rule.object in TIERS or rule.object == "relation" or rule.object in catalog.entities
        if not known and rule.object not in fields and rule.object not in relations:
            raise SnapshotError(f"rule {rule.line()}: {rule.object} is not a tier, entity, field or relation")
        if rule.domain not in ("*", "own") and rule.domain not in departments:
            raise SnapshotError(f"rule {rule.line()}: {rule.domain} is not a department")
    _check_hierarchy(snapshot)
    for row_rule in snapshot.row_rules:
        entity = catalog.entities.get(row_rule.entity)
        if entity is None:
            raise SnapshotError(f"row rule of {row_rule.role}: {row_rule.entity} is not an entity")
        where = f"row rule of {row_rule.role} on {row_rule.entity}"
        _check_filter(row_rule.filter, entity, catalog, where)
        try:
            # Compiled as it will be at plan time (with stand-in attributes), so an operator or
            # value the hub cannot use is refused now, not on every later request.
            stand_in = substitute(row_rule.filter, dict.fromkeys(placeholders(row_rule.filter), "x"))
            compile_scope(catalog, entity, stand_in)
        except HubError as exc:
            raise SnapshotError(f"{where}: {exc.message}") from None
    ids: set[str] = set()
    for grant in snapshot.grants:
        where = f"grant {grant.id}"
        if grant.id in ids:
            raise SnapshotError(f"{where}: the id is used twice")
        ids.add(grant.id)
        entity = catalog.entities.get(grant.entity)
        if entity is None:
            raise SnapshotError(f"{where}: {grant.entity} is not an entity")
        if grant.field is not None and grant.field not in entity.fields:
            raise SnapshotError(f"{where}: {grant.field} is not a field of {grant.entity}")
        problem = grant_problem(grant, entity, terms)
        if problem is not None:
            raise SnapshotError(f"{where}: {problem}")
    if coverage:
        gap = check_coverage(snapshot, catalog)
        if gap:
            raise SnapshotError(gap)


def prune(snapshot: Snapshot, catalog: Catalog, terms: Terms) -> tuple[Snapshot, list[str]]:
    """The snapshot without the entries that name what this catalog lacks, and what was
    dropped: seeding the demo's policy on another catalog keeps its tier-wide lines."""
    dropped: list[str] = []

    def keep(item: Any, check: Snapshot) -> bool:
        try:
            # One entry at a time: coverage is a property of the whole policy, checked at start.
            validate(check, catalog, terms, coverage=False)
        except SnapshotError as exc:
            dropped.append(str(exc))
            return False
        return True

    empty = Snapshot()
    rules = tuple(r for r in snapshot.rules if keep(r, empty.model_copy(update={"rules": (r,)})))
    row_rules = tuple(r for r in snapshot.row_rules if keep(r, empty.model_copy(update={"row_rules": (r,)})))
    grants = tuple(g for g in snapshot.grants if keep(g, empty.model_copy(update={"grants": (g,)})))
    return snapshot.model_copy(update={"rules": rules, "row_rules": row_rules, "grants": grants}), dropped


# Casbin's role manager follows at most ten links; deeper chains would be cut silently.
MAX_HIERARCHY_DEPTH = 8


def _check_hierarchy(snapshot: Snapshot) -> None:
    parents: dict[str, set[str]] = {}
    for line in snapshot.hierarchy:
        parents.setdefault(line.role, set()).add(line.inherits)

    def depth(role: str, path: tuple[str, ...]) -> int:
        if role in path:
            raise SnapshotError(f"role hierarchy: {' -> '.join((*path, role))} is a cycle")
        return 1 + max((depth(p, (*path, role)) for p in parents.get(role, ())), default=0)

    for role in parents:
        if depth(role, ()) - 1 > MAX_HIERARCHY_DEPTH:
            raise SnapshotError(f"role hierarchy: {role} inherits through more than {MAX_HIERARCHY_DEPTH} levels")


def _check_filter(spec: Any, entity: EntityInfo, catalog: Catalog, where: str, under: str = "", hops: int = 0) -> None:
    """`under` is the `or` or `not` the spec stands under: a relation may not (a semi-join
    restricts rows; it is not an alternative)."""
    if not isinstance(spec, dict):
        raise SnapshotError(f"{where}: a filter is a mapping such as {{field: {{eq: value}}}}")
    for key, value in spec.items():
        if key in ("and", "or"):
            if not isinstance(value, list):
                raise SnapshotError(f"{where}: `{key}` takes a list")
            for item in value:
                _check_filter(item, entity, catalog, where, under or ("or" if key == "or" else ""), hops)
        elif key == "not":
            _check_filter(value, entity, catalog, where, under or "not", hops)
        elif key in entity.relations:
            if under:
                raise SnapshotError(f"{where}: the relation {key} may not stand under `{under}`")
            if hops >= MAX_HOPS:
                raise SnapshotError(f"{where}: a row rule may follow at most {MAX_HOPS} relations in a row")
            target = catalog.entity(entity.relations[key].target)
            _check_filter(value, target, catalog, f"{where} through {key}", "", hops + 1)
        elif key not in entity.fields:
            raise SnapshotError(f"{where}: {key} is not a field or relation of {entity.id}")
        elif not isinstance(value, dict):
            raise SnapshotError(f"{where}: {key} takes operators such as {{eq: ...}}")
        else:
            for op, operand in value.items():
                if op == "in" and not isinstance(operand, list):
                    raise SnapshotError(f"{where}: {key}.in takes a list of plain values")
                if isinstance(operand, list):
                    if placeholders(operand) or not all(_scalar(v) for v in operand):
                        raise SnapshotError(f"{where}: {key}.{op} takes a list of plain values")
                elif not _scalar(operand):
                    raise SnapshotError(f"{where}: {key}.{op} takes a plain value")


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def substitute(spec: Any, attributes: Mapping[str, str]) -> Any:
    """Replace `$principal.<attribute>` strings. (A caller lacking an attribute its row rule
    reads gets no rows at all: SnapshotPolicy.row_rule checks before substituting.)"""
    if isinstance(spec, dict):
        return {k: substitute(v, attributes) for k, v in spec.items()}
    if isinstance(spec, list):
        return [substitute(v, attributes) for v in spec]
    if isinstance(spec, str):
        match = PLACEHOLDER.match(spec)
        if match:
            return attributes.get(match.group(1), MISSING)
    return spec


class _Missing(str):
    """The value of an attribute the principal lacks: equal to no stored value."""


MISSING = _Missing("\x00missing-attribute\x00")


def placeholders(spec: Any) -> set[str]:
    if isinstance(spec, dict):
        return set().union(*(placeholders(v) for v in spec.values())) if spec else set()
    if isinstance(spec, list):
        return set().union(*(placeholders(v) for v in spec)) if spec else set()
    if isinstance(spec, str):
        match = PLACEHOLDER.match(spec)
        return {match.group(1)} if match else set()
    return set()
