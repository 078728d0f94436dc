"""Mask strength: how many values a masked person identifier could still be, for each kind of
caller, given everything else the policy releases to it about the same record.

A resident ID number is 6 digits of area code, 8 of birth date, 3 of sequence (the last odd
for men, even for women) and a check digit computed from the other 17. A mask that hides only
the birth date leaves a few dozen candidates once the birth year is known and the check digit
shown, and a lookup by key confirms the right one. So masks (declared in manifests) are judged
together with the decisions (in the policy): for every caller kind, purpose and identifier
field released masked, the candidates consistent with the visible positions plus the birth
date or year, sex and district released about the same person, on the record itself and on
the records joined to it on the same identifier. A configuration leaving fewer than K
candidates is refused, naming the caller, the field and the count.

The counts are deliberately low estimates (the attacker's side): an area code is known when a
district is; the birth-date count is the smallest over the years that fit.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from hub.access.plan import Decision
from hub.auth.principal import Principal
from hub.catalog import Catalog, EntityInfo, FieldInfo, RelationInfo
from hub.catalog.manifest import PartialMask, YearOnlyMask
from hub.policy.decisions import SnapshotPolicy

DEFAULT_MIN_CANDIDATES = 10_000
LENGTH = {"resident_id": 18, "mobile": 11}
# Valid area codes with h of the six digits hidden (about 3,000 county codes in all, about a
# hundred under a two-digit province, a dozen or so under a city): low estimates.
AREA_CODES = {0: 1, 1: 5, 2: 10, 3: 30, 4: 100, 5: 300, 6: 3_000}
# Mobile numbers start with one of about fifty three-digit network prefixes.
MOBILE_PREFIXES = 50
FIRST_BIRTH_YEAR = 1900


class WeakMask(Exception):
    """A masked identifier leaves too few candidates; the message names caller, field, count."""


@dataclass(frozen=True)
class Weakness:
    department: str
    roles: tuple[str, ...]
    purpose: str | None
    field: str
    candidates: int

    def describe(self, minimum: int) -> str:
        who = f"{self.department} callers with roles {', '.join(self.roles) or '-'}"
        why = f" stating purpose {self.purpose}" if self.purpose else ""
        return (
            f"{who}{why} see {self.field} masked with only {self.candidates:,} possible values "
            f"(at least {minimum:,} are required); widen the mask or release less about the same person"
        )


@dataclass(frozen=True)
class Seen:
    """What one caller sees of one identifier and its person, over the joined records."""

    visible: frozenset[int]
    plain: bool
    birth: str | None  # "date", "year" or None
    sex: bool
    district: bool


def caller_kinds(departments: Iterable[str], roles: Iterable[str], apps: Sequence[Principal]) -> list[Principal]:
    """Every (department, single role) pair, and the registered apps' own role sets."""
    kinds: set[tuple[str, tuple[str, ...]]] = {(d, (r,)) for d in departments for r in roles}
    kinds |= {(a.department, tuple(sorted(a.roles))) for a in apps}
    return [Principal(f"kind:{d}:{'+'.join(r)}", d, r, {}) for d, r in sorted(kinds)]


def weaknesses(policy: SnapshotPolicy, catalog: Catalog, callers: Sequence[Principal], minimum: int) -> list[Weakness]:
    """Every (caller kind, purpose, identifier field) left with fewer than `minimum` values."""
    # A stated purpose only changes decisions through grants naming it.
    purposes: list[str | None] = [None, *sorted({g.purpose for g in policy.snapshot.grants})]
    found: list[Weakness] = []
    for caller in callers:
        for purpose in purposes:
            # Every decision once per caller kind and purpose; the records below reuse them.
            decide = _Decisions(policy, caller, purpose)
            for entity in catalog:
                for item in entity.fields.values():
                    if item.identifier not in LENGTH:
                        continue
                    if decide.field(entity, item) is not Decision.MASKED:
                        continue
                    seen = _seen(decide, catalog, entity, item)
                    if seen.plain:
                        continue  # the caller reads this identifier plain elsewhere anyway
                    count = candidates(str(item.identifier), seen)
                    if count < minimum:
                        field_id = f"{entity.id}.{item.name}"
                        found.append(Weakness(caller.department, caller.roles, purpose, field_id, count))
    return found


def check(policy: SnapshotPolicy, catalog: Catalog, callers: Sequence[Principal], minimum: int) -> None:
    found = weaknesses(policy, catalog, callers, minimum)
    if found:
        weakest = min(found, key=lambda w: w.candidates)
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise WeakMask(weakest.describe(minimum) + more)


def _record(catalog: Catalog, entity: EntityInfo, item: FieldInfo) -> list[tuple[EntityInfo, str | None, bool]]:
    """The entity and the entities joined to it on this identifier, each with the relation
    the caller must be allowed to follow to get there (None for the entity itself), and
    whether every record has one (a single relation from this entity: a student's person)."""
    out: list[tuple[EntityInfo, str | None, bool]] = [(entity, None, True)]
    for relation in entity.relations.values():
        if relation.field == item.name:
            out.append((catalog.entity(relation.target), f"{entity.id}.{relation.name}", not relation.many))
    for other in catalog:
        for relation in other.relations.values():
            if relation.target == entity.id and relation.target_field == item.name:
                out.append((other, f"{other.id}.{relation.name}", False))
    return out


class _Decisions:
    def __init__(self, policy: SnapshotPolicy, caller: Principal, purpose: str | None) -> None:
        self.policy, self.caller, self.purpose = policy, caller, purpose
        self._fields: dict[tuple[str, str], Decision] = {}
        self._relations: dict[tuple[str, str], Decision] = {}

    def field(self, entity: EntityInfo, item: FieldInfo) -> Decision:
        key = (entity.id, item.name)
        if key not in self._fields:
            self._fields[key] = self.policy.field(self.caller, self.purpose, entity, item).decision
        return self._fields[key]

    def relation(self, relation: RelationInfo) -> Decision:
        key = (relation.source, relation.name)
        if key not in self._relations:
            self._relations[key] = self.policy.relation(self.caller, self.purpose, relation).decision
        return self._relations[key]


def _seen(decide: _Decisions, catalog: Catalog, entity: EntityInfo, item: FieldInfo) -> Seen:
    visible: set[int] = set()
    plain = False
    birth: str | None = None
    sex = district = False
    length = LENGTH[str(item.identifier)]
    for joined, via, always in _record(catalog, entity, item):
        if via is not None:
            source_id, _, name = via.rpartition(".")
            relation = catalog.entity(source_id).relations[name]
            if decide.relation(relation) is not Decision.PLAIN:
                continue
        for other in joined.fields.values():
            decision = decide.field(joined, other)
            if decision is Decision.DENIED:
                continue
            masked = decision is Decision.MASKED
            if other.identifier == item.identifier:
                # Read plain on a record every row joins to (a student's person), the number is
                # simply known. Read plain on records only some persons have (a health app's
                # own patients), it says nothing about everyone else. Masked, its shown
                # positions add up.
                if masked and isinstance(other.mask, PartialMask):
                    visible |= _positions(other.mask, length)
                elif not masked and always and via is not None and other.name == _join_target(catalog, via):
                    plain = True
            elif other.person_attribute == "birth_date":
                if not masked:
                    birth = "date"
                elif isinstance(other.mask, YearOnlyMask) and birth is None:
                    birth = "year"
            elif other.person_attribute == "sex" and not masked:
                sex = True
            elif other.person_attribute == "district" and not masked:
                district = True
    return Seen(frozenset(visible), plain, birth, sex, district)


def _join_target(catalog: Catalog, via: str) -> str:
    source_id, _, name = via.rpartition(".")
    return catalog.entity(source_id).relations[name].target_field


def _positions(mask: PartialMask, length: int) -> set[int]:
    first = min(mask.keep_first, length)
    last = min(mask.keep_last, length - first)
    return set(range(first)) | set(range(length - last, length))


def candidates(kind: str, seen: Seen) -> int:
    if kind == "mobile":
        hidden_prefix = sum(1 for p in range(3) if p not in seen.visible)
        rest = sum(1 for p in range(3, 11) if p not in seen.visible)
        prefixes: int = min(10**hidden_prefix, MOBILE_PREFIXES if hidden_prefix else 1)
        return prefixes * int(10**rest)
    return _resident_id(seen)


def _resident_id(seen: Seen) -> int:
    hidden = [p for p in range(18) if p not in seen.visible]
    area_hidden = sum(1 for p in hidden if p < 6)
    area = 1 if seen.district else AREA_CODES[area_hidden]
    pattern = tuple(p in seen.visible for p in range(6, 14))
    dates = 1 if seen.birth == "date" else _birth_dates(pattern, seen.birth == "year")
    sequence = 1
    for p in (14, 15, 16):
        if p in hidden:
            # The last sequence digit's parity is the sex.
            sequence *= 5 if p == 16 and seen.sex else 10
    total = area * dates * sequence
    if 17 not in hidden:
        # A shown check digit keeps about one in eleven of the rest.
        total = max(1, total // 11)
    return total


@functools.lru_cache(maxsize=256)
def _birth_dates(visible: tuple[bool, ...], year_known: bool) -> int:
    """The fewest dates any one person could have, given which of YYYYMMDD are shown: the
    smallest group of dates sharing the shown digits (and the year, when it is known)."""
    groups: dict[tuple[str, ...], int] = {}
    day = date(FIRST_BIRTH_YEAR, 1, 1)
    end = date.today()
    while day <= end:
        text = day.strftime("%Y%m%d")
        key = tuple(c if shown else "" for c, shown in zip(text, visible, strict=True))
        if year_known:
            key = (*key, text[:4])
        groups[key] = groups.get(key, 0) + 1
        day += timedelta(days=1)
    return min(groups.values())
