"""The leak test: what every demo caller can get out of the whole schema, against the oracle.

Every demo caller, with no purpose, with each purpose the seed's grants name, and with one
purpose no grant names (`statistics`, a control), runs generated queries over every entity:
list pages and by-key reads selecting every scalar field, every relation one level deep, and a
filter (`eq` a real value, `isNull`) and an order on every field. Each response is checked
against the policy oracle (`tests/policy_oracle.py`, written from the rules, not from Casbin)
and the true demo data (`hub.demo.generate`), matched row by row (pages are in key order, or
in the order asked for, within the caller's row rules):

- a withheld field is null, with one FORBIDDEN error and the right count per (field, list);
- a masked value is exactly the mask of the true value, so it never tells more than its mask;
- no resident ID number or mobile number appears anywhere in a body, error texts included,
  unless it is the value of a field released plain to that caller at that path;
- filters, order and by-key reads on a field not released plain are refused before any SQL
  runs (a single `eq` on a blind-indexed field is allowed where the policy allows lookups), and
  so is every read of an entity whose key is withheld (its rows would have no identity);
- a relation is followed only where the oracle's `follow` allows it, its join field is plain
  or searchable, and the target's key is not withheld; else it is null with one FORBIDDEN error
  per (relation, list);
- `extensions.access` lists exactly the masked and withheld paths.

Every request is made once, by a module fixture; each test checks one property of them all.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
import pytest
from sqlalchemy import event

from hub.access.plan import Decision
from hub.auth.principal import Principal
from hub.catalog import Catalog, EntityInfo, FieldInfo
from hub.catalog.manifest import FieldType, HashMask, RoundMask
from hub.crypto.keyring import Keyring
from hub.crypto.masks import column_mask
from hub.demo.callers import CALLERS, Caller
from hub.demo.generate import generate
from hub.policy.snapshot import Snapshot, load_purposes, load_seed
from hub.services import Services
from tests.conftest import Hub
from tests.integration.queries import Condition, Follow, Root, batches, render
from tests.policy_oracle import decide, effective_roles, follows, outcome

Row = dict[str, Any]

# The live policy of the demo: the seed, as version 1.
SNAPSHOT: Snapshot = load_seed().model_copy(update={"version": 1})
LIVE_VERSION = "1"
GRANTED = sorted({grant.purpose for grant in SNAPSHOT.grants})
# A purpose code no grant names: it must decide exactly as no purpose does.
UNGRANTED = "statistics"
assert UNGRANTED in load_purposes() and UNGRANTED not in GRANTED
# Only a grant's purpose changes a decision of the seed; the rest stand in for each other.
PURPOSES: tuple[str | None, ...] = (None, *GRANTED, UNGRANTED)

PAGE = 100  # rows of a list page; a second page starts at this offset
RELATION_PAGE = 100  # rows of a relation's list under one parent (HUB_RELATION_PAGE_SIZE)
PARENTS = 10  # parent rows under which every relation is followed
FEW_PARENTS = {"population.District": 1}  # a district has about 1,500 residents
NARROWED = 5  # rows asked of a filtered or ordered list
KEYS_PER_ENTITY = 3  # by-key reads: the first, middle and last key of the demo data

ID_NUMBER = re.compile(r"(?<!\d)\d{17}[\dX](?!\d)")
MOBILE = re.compile(r"(?<!\d)1\d{10}(?!\d)")
HASH = re.compile(r"[0-9a-f]{64}")
ID_WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]


def is_id_number(text: str) -> bool:
    """18 characters whose last is the GB 11643 check character of the first 17."""
    check = (12 - sum(int(c) * w for c, w in zip(text[:17], ID_WEIGHTS, strict=True)) % 11) % 11
    return text[17] == ("X" if check == 10 else str(check))


def sensitive(text: str) -> list[str]:
    """Resident ID numbers and mobile numbers in `text`, wherever they sit."""
    return [m for m in ID_NUMBER.findall(text) if is_id_number(m)] + MOBILE.findall(text)


# --- the truth: the demo data, and what the oracle says each caller gets ------------------------


class Truth:
    """The demo's rows by entity id, keyed by field name and in key order."""

    def __init__(self, catalog: Catalog, keyring: Keyring) -> None:
        self.catalog = catalog
        data = generate()
        self.rows: dict[str, list[Row]] = {}
        for entity in catalog:
            names = {item.column: item.name for item in entity.fields.values()}
            rows = [
                {names[c]: v for c, v in raw.items() if c in names}
                for raw in data[entity.department][entity.table.name]
            ]
            key = entity.fields[entity.key]
            if key.encrypted and key.blind_index:
                # An encrypted key orders by its blind index, which stands in for it.
                index = keyring.blind_index(key.blind_index)
                self.rows[entity.id] = sorted(rows, key=lambda row: index.digest(row[key.name]))
            else:
                self.rows[entity.id] = sorted(rows, key=lambda row: row[entity.key])
        self._indexes: dict[tuple[str, str], dict[Any, list[Row]]] = {}
        self._ordered: dict[tuple[str, str], list[Row]] = {}

    def matching(self, entity: EntityInfo, name: str, value: Any) -> list[Row]:
        """Rows whose `name` equals `value`, in key order."""
        index = self._indexes.get((entity.id, name))
        if index is None:
            index = self._indexes[(entity.id, name)] = {}
            for row in self.rows[entity.id]:
                index.setdefault(row[name], []).append(row)
        return index.get(value, [])

    def ordered(self, entity: EntityInfo, name: str) -> list[Row]:
        """Rows ordered by `name` ascending, NULLs last, ties in key order (the sort is stable)."""
        found = self._ordered.get((entity.id, name))
        if found is None:
            found = self._ordered[(entity.id, name)] = sorted(
                self.rows[entity.id], key=lambda r: (r[name] is None, r[name] if r[name] is not None else 0)
            )
        return found

    def zone(self, entity: EntityInfo) -> ZoneInfo:
        return ZoneInfo(self.catalog.departments[entity.department].connection.timezone)


@dataclass
class Viewer:
    """One caller with one purpose, and everything the oracle decides for it."""

    caller: Caller
    purpose: str | None
    principal: Principal
    decisions: dict[tuple[str, str], Decision]
    lookups: set[tuple[str, str]]
    followed: dict[tuple[str, str], bool]
    row_rules: dict[str, list[Mapping[str, Any]]]
    _visible: dict[str, list[Row]] = field(default_factory=dict)
    _visible_ids: dict[str, set[int]] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.caller.name} (purpose {self.purpose})"

    def decision(self, entity: EntityInfo, name: str) -> Decision:
        return self.decisions[(entity.id, name)]

    def searchable(self, entity: EntityInfo, name: str) -> bool:
        """A blind-indexed field the caller may look up by one equality (not if withheld)."""
        return (entity.id, name) in self.lookups and self.decision(entity, name) is not Decision.DENIED

    def readable(self, entity: EntityInfo) -> bool:
        """Rows whose key is withheld are not released at all: they would have no identity."""
        return self.decision(entity, entity.key) is not Decision.DENIED

    def may_narrow(self, entity: EntityInfo, name: str, op: str | None) -> bool:
        """May a filter (`op`) or an order (`op` None) name this field?"""
        if self.decision(entity, name) is Decision.PLAIN:
            return True
        return op == "eq" and self.searchable(entity, name)

    def follows(self, catalog: Catalog, entity: EntityInfo, name: str) -> bool:
        """A relation is followed where a `follow` line allows it and following it reveals
        nothing withheld: its join value must be plain or searchable to the caller, and the
        target's rows readable."""
        relation = entity.relations[name]
        target = catalog.entity(relation.target)
        return (
            self.followed[(entity.id, name)] and self.may_narrow(entity, relation.field, "eq") and self.readable(target)
        )

    def visible(self, entity: EntityInfo, truth: Truth) -> list[Row]:
        """The entity's rows that pass every row rule of the caller's roles, in key order."""
        rows = self._visible.get(entity.id)
        if rows is None:
            specs = self.row_rules.get(entity.id, [])
            rows = self._visible[entity.id] = [
                r for r in truth.rows[entity.id] if all(self._holds(s, r, entity, truth) for s in specs)
            ]
        return rows

    def only_visible(self, entity: EntityInfo, rows: list[Row], truth: Truth) -> list[Row]:
        if entity.id not in self.row_rules:
            return rows
        visible = self.visible_ids(entity, truth)
        return [row for row in rows if id(row) in visible]

    def visible_ids(self, entity: EntityInfo, truth: Truth) -> set[int]:
        ids = self._visible_ids.get(entity.id)
        if ids is None:
            ids = self._visible_ids[entity.id] = set(map(id, self.visible(entity, truth)))
        return ids

    def _holds(self, spec: Mapping[str, Any], row: Row, entity: EntityInfo, truth: Truth) -> bool:
        for name, ops in spec.items():
            relation = entity.relations.get(name)
            if relation is not None:
                # A rule through a relation holds where some related row holds the inner rule.
                target = truth.catalog.entity(relation.target)
                join = row[relation.field]
                related = [] if join is None else truth.matching(target, relation.target_field, join)
                if not any(self._holds(ops, other, target, truth) for other in related):
                    return False
                continue
            for op, value in ops.items():
                # The seed's row rules are equalities (on a field, or through relations to one);
                # anything else would need this oracle to grow.
                assert op == "eq" and name in row, f"row rule {spec} is not an equality on a field"
                if isinstance(value, str) and value.startswith("$principal."):
                    attribute = value.removeprefix("$principal.")
                    if attribute not in self.principal.attributes:
                        return False  # a missing attribute matches nothing
                    value = self.principal.attributes[attribute]
                if row[name] != value:
                    return False
        return True


def viewer(catalog: Catalog, caller: Caller, purpose: str | None, now: datetime) -> Viewer:
    principal = Principal(caller.name, caller.department, caller.roles, caller.attributes)
    decisions: dict[tuple[str, str], Decision] = {}
    lookups: set[tuple[str, str]] = set()
    followed: dict[tuple[str, str], bool] = {}
    for entity in catalog:
        for item in entity.fields.values():
            decisions[(entity.id, item.name)] = decide(SNAPSHOT, principal, purpose, entity, item, now)
            objects = (item.tier.value, entity.id, f"{entity.id}.{item.name}")
            if (
                item.blind_index is not None
                and outcome(SNAPSHOT, principal, entity.department, objects, "lookup") == "allow"
            ):
                lookups.add((entity.id, item.name))
        for relation in entity.relations.values():
            followed[(entity.id, relation.name)] = follows(SNAPSHOT, principal, relation, catalog)
    roles = effective_roles(SNAPSHOT, principal)
    row_rules: dict[str, list[Mapping[str, Any]]] = {}
    for rule in SNAPSHOT.row_rules:
        if rule.role in roles:
            row_rules.setdefault(rule.entity, []).append(rule.filter)
    return Viewer(caller, purpose, principal, decisions, lookups, followed, row_rules)


# --- generated queries ---------------------------------------------------------------------------


def sent(value: Any, zone: ZoneInfo) -> Any:
    """A stored value as a GraphQL variable."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=zone)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def read_roots(truth: Truth) -> Iterator[Root]:
    """List pages (first and second) and by-key reads of every entity, every scalar field."""
    for entity in truth.catalog:
        fields = tuple(entity.fields)
        yield Root(f"{entity.list_field}_page", entity, fields, first=PAGE, total=True)
        yield Root(f"{entity.list_field}_next", entity, fields, first=PAGE, offset=PAGE, total=True)
        keys = [row[entity.key] for row in truth.rows[entity.id]]
        picked = dict.fromkeys(keys[i * (len(keys) - 1) // (KEYS_PER_ENTITY - 1)] for i in range(KEYS_PER_ENTITY))
        for i, key in enumerate(picked):
            yield Root(f"{entity.key_field}_{i}", entity, fields, key=str(key))


def relation_roots(truth: Truth) -> Iterator[Root]:
    """Every relation of every entity, one level deep, every scalar field of the target."""
    for entity in truth.catalog:
        related = []
        for relation in entity.relations.values():
            target = truth.catalog.entity(relation.target)
            related.append(Follow(relation, target, tuple(target.fields)))
        if related:
            first = FEW_PARENTS.get(entity.id, PARENTS)
            yield Root(f"{entity.list_field}_related", entity, tuple(entity.fields), tuple(related), first=first)


def narrowed_roots(v: Viewer, truth: Truth) -> Iterator[Root]:
    """For every field: `eq` a value the caller's rows hold, `isNull`, and ascending order."""
    for entity in truth.catalog:
        fields = tuple(entity.fields)
        rows = v.visible(entity, truth) or truth.rows[entity.id]
        for name, item in entity.fields.items():
            value = next((row[name] for row in rows if row[name] is not None), None)
            alias = f"{entity.list_field}_{name}"
            # An encrypted field is searched by its blind index only, and never ordered by.
            if value is not None and (not item.encrypted or item.blind_index):
                condition = Condition(name, "eq", value, sent(value, truth.zone(entity)))
                yield Root(f"{alias}_eq", entity, fields, first=NARROWED, condition=condition)
            yield Root(f"{alias}_null", entity, fields, first=NARROWED, condition=Condition(name, "isNull"))
            if item.type is not FieldType.BOOLEAN and not item.encrypted:
                yield Root(f"{alias}_order", entity, fields, first=NARROWED, order=name)


def refused(v: Viewer, root: Root) -> bool:
    """Must the hub refuse this root, before it reads anything?"""
    entity = root.entity
    if not v.readable(entity):
        return True
    if root.key is not None and not v.may_narrow(entity, entity.key, "eq"):
        return True
    name = root.narrowed_by
    return name is not None and not v.may_narrow(entity, name, root.condition.op if root.condition else None)


# --- running them --------------------------------------------------------------------------------

Kind = Literal["read", "refused"]


@dataclass
class Exchange:
    viewer: Viewer
    kind: Kind
    roots: list[Root]
    status: int
    text: str
    body: dict[str, Any]
    statements: list[str]

    def where(self, detail: str) -> str:
        return f"{self.viewer}: {detail}"

    @property
    def data(self) -> dict[str, Any]:
        return self.body.get("data") or {}

    def errors(self) -> list[dict[str, Any]]:
        return list(self.body.get("errors") or [])


@dataclass(repr=False)
class Run:
    truth: Truth
    exchanges: list[Exchange]
    _readings: dict[int, Reading] = field(default_factory=dict)

    def __repr__(self) -> str:  # pytest shows a failing test's arguments: keep it short
        return f"Run({len(self.exchanges)} exchanges)"

    def reading(self, exchange: Exchange) -> Reading:
        found = self._readings.get(id(exchange))
        if found is None:
            found = self._readings[id(exchange)] = read(exchange, self.truth)
        return found

    def of(self, *kinds: Kind) -> Iterator[Exchange]:
        return (e for e in self.exchanges if e.kind in kinds)


@pytest.fixture(scope="module")
def run(demo_hub: Hub, demo_services: Services) -> Iterator[Run]:
    catalog = demo_services.catalog
    truth = Truth(catalog, demo_services.keys.keyring)
    tables = {entity.table.name for entity in catalog}
    seen: list[str] = []
    listeners = []
    for connector in demo_services.connectors.values():
        engine = connector.engine.sync_engine  # type: ignore[attr-defined]

        def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if any(table in statement for table in tables):
                seen.append(statement)

        event.listen(engine, "before_cursor_execute", listen)
        listeners.append((engine, listen))
    now = datetime.now(UTC)
    exchanges: list[Exchange] = []
    try:
        for caller in CALLERS:
            for purpose in PURPOSES:
                v = viewer(catalog, caller, purpose, now)
                hub = demo_hub.as_caller(caller.name, purpose)
                roots = [*read_roots(truth), *relation_roots(truth), *narrowed_roots(v, truth)]
                documents: list[tuple[Kind, list[Root]]] = [
                    *(("read", batch) for batch in batches([r for r in roots if not refused(v, r)])),
                    *(("refused", batch) for batch in batches([r for r in roots if refused(v, r)])),
                ]
                for kind, batch in documents:
                    exchanges.append(send(hub, v, kind, batch, seen))
        yield Run(truth, exchanges)
    finally:
        for engine, listen in listeners:
            event.remove(engine, "before_cursor_execute", listen)


def send(hub: Hub, v: Viewer, kind: Kind, roots: list[Root], seen: list[str]) -> Exchange:
    document, variables = render(roots)
    headers = {"Authorization": f"Bearer {hub.token}"}
    if v.purpose is not None:
        headers["X-Hub-Purpose"] = v.purpose
    before = len(seen)
    response = hub.client.post("/graphql", json={"query": document, "variables": variables}, headers=headers)
    body = orjson.loads(response.content)
    return Exchange(v, kind, roots, response.status_code, response.text, body, seen[before:])


# --- reading responses against the truth ---------------------------------------------------------


@dataclass(slots=True)
class Cell:
    """One scalar value in a response, with its decision and (when its row is known) the truth."""

    path: tuple[str, ...]
    item: FieldInfo
    entity: EntityInfo
    decision: Decision
    value: Any
    truth: Any
    known: bool


@dataclass
class RowSet:
    """The rows at one list path (`*` for indices): what the hub must have read and released."""

    entity: EntityInfo
    fields: tuple[str, ...]
    keys: set[Any] = field(default_factory=set)
    received: int = 0
    certain: bool = True

    @property
    def count(self) -> int:
        return len(self.keys)


@dataclass
class Reading:
    cells: list[Cell] = field(default_factory=list)
    rows: dict[tuple[str, ...], RowSet] = field(default_factory=dict)
    # Relations not followed, by path: how many parent rows asked for them.
    not_followed: Counter[tuple[str, ...]] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def expected(root: Root, v: Viewer, truth: Truth) -> tuple[list[Row], int]:
    """The rows a root must return, and how many match over all pages."""
    entity = root.entity
    if root.key is not None:
        visible = v.visible_ids(entity, truth)
        return [r for r in truth.matching(entity, entity.key, root.key) if id(r) in visible], 0
    if root.condition is not None:
        value = None if root.condition.op == "isNull" else root.condition.value
        rows = v.only_visible(entity, truth.matching(entity, root.condition.field, value), truth)
    elif root.order is not None:
        rows = v.only_visible(entity, truth.ordered(entity, root.order), truth)
    else:
        rows = v.visible(entity, truth)
    start = root.offset or 0
    return rows[start : start + (root.first if root.first is not None else PAGE)], len(rows)


def read(exchange: Exchange, truth: Truth) -> Reading:
    """Every scalar value of a response, matched with the true rows it must come from."""
    reading = Reading()
    if exchange.kind != "read":
        return reading
    v = exchange.viewer
    for root in exchange.roots:
        want, total = expected(root, v, truth)
        value = exchange.data.get(root.alias)
        if root.is_list:
            if value is None:
                reading.problems.append(exchange.where(f"{root.alias} is null"))
                continue
            got = value["nodes"]
            if root.total and value["totalCount"] != total:
                reading.problems.append(exchange.where(f"{root.alias} totalCount {value['totalCount']}, not {total}"))
        else:
            got = [value] if value is not None else []
        visit(reading, exchange, truth, root.base, root.entity, root.fields, root.follows, got, want)
    return reading


def visit(
    reading: Reading,
    exchange: Exchange,
    truth: Truth,
    base: tuple[str, ...],
    entity: EntityInfo,
    fields: tuple[str, ...],
    related: Sequence[Follow],
    got: list[dict[str, Any]],
    want: list[Row] | None,
) -> None:
    v = exchange.viewer
    rows = reading.rows.setdefault(base, RowSet(entity, fields))
    rows.received += len(got)
    if want is not None and len(want) != len(got):
        reading.problems.append(
            exchange.where(f"{'/'.join(base)}: {len(got)} rows where the row rules and page give {len(want)}")
        )
        want = None
    if want is None:
        rows.certain = False
    else:
        rows.keys.update(row[entity.key] for row in want)
    for index, received in enumerate(got):
        true = want[index] if want is not None else None
        for name in fields:
            item = entity.fields[name]
            cell = Cell(
                (*base, name),
                item,
                entity,
                v.decision(entity, name),
                received.get(name),
                true[name] if true else None,
                true is not None,
            )
            reading.cells.append(cell)
        for follow in related:
            relation, target = follow.relation, follow.target
            value = received.get(relation.name)
            path = (*base, relation.name, "*") if relation.many else (*base, relation.name)
            if not v.follows(truth.catalog, entity, relation.name):
                reading.not_followed[(*base, relation.name)] += 1
                if value is not None:
                    reading.problems.append(exchange.where(f"{'/'.join(path)} was followed though it is not allowed"))
                continue
            inner: list[Row] | None = None
            if true is not None:
                join = true[relation.field]
                matches = [] if join is None else truth.matching(target, relation.target_field, join)
                inner = v.only_visible(target, matches, truth)
                # A relation's list holds its first rows by key, up to the bound per parent.
                inner = inner[:RELATION_PAGE] if relation.many else inner[:1]
            nested = (value or []) if relation.many else ([value] if value is not None else [])
            visit(reading, exchange, truth, path, target, follow.fields, (), nested, inner)


def same(received: Any, true: Any, item: FieldInfo, zone: ZoneInfo) -> bool:
    """Is `received` (JSON) the stored value `true`?"""
    if received is None or true is None:
        return received is None and true is None
    if item.type is FieldType.DECIMAL:
        return bool(Decimal(str(received)) == true)
    if item.type is FieldType.DATETIME:
        return bool(datetime.fromisoformat(received) == (true if true.tzinfo else true.replace(tzinfo=zone)))
    if item.type is FieldType.DATE:
        return bool(received == true.isoformat())
    if item.type is FieldType.FLOAT:
        return float(received) == float(true)
    return bool(received == true)


def mask_holds(received: Any, true: Any, item: FieldInfo) -> bool:
    """Is `received` exactly what the field's mask makes of the true value?"""
    assert item.mask is not None
    if isinstance(item.mask, HashMask):
        # The key is per receiving department: only the form and that it hides the value.
        if true is None:
            return received is None
        return isinstance(received, str) and HASH.fullmatch(received) is not None and received != str(true)
    (masked,) = column_mask(item.mask, b"")([true])
    if masked is None or received is None:
        return masked is None and received is None
    if isinstance(item.mask, RoundMask):
        return Decimal(str(received)) == Decimal(str(masked))
    return bool(received == masked)


def withheld_errors(exchange: Exchange) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """FORBIDDEN errors of withheld fields (the ones with a count), by path."""
    found: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for error in exchange.errors():
        if "count" in (error.get("extensions") or {}):
            found.setdefault(tuple(map(str, error.get("path") or [])), []).append(error)
    return found


def withheld_paths(exchange: Exchange, reading: Reading) -> dict[tuple[str, ...], int | None]:
    """Paths that must carry one FORBIDDEN error with a count (None where the rows read are
    not known): withheld fields of lists that released rows, and relations not followed."""
    paths: dict[tuple[str, ...], int | None] = {}
    for base, rows in reading.rows.items():
        if rows.received == 0 and rows.count == 0:
            continue
        for name in rows.fields:
            if exchange.viewer.decision(rows.entity, name) is Decision.DENIED:
                paths[(*base, name)] = rows.count if rows.certain else None
    paths.update(reading.not_followed)
    return paths


def masked_paths(exchange: Exchange, reading: Reading) -> set[tuple[str, ...]]:
    return {
        (*base, name)
        for base, rows in reading.rows.items()
        if rows.received or rows.count
        for name in rows.fields
        if exchange.viewer.decision(rows.entity, name) is Decision.MASKED
    }


def report(problems: list[str], checks: int) -> str:
    shown = "\n".join(problems[:40])
    return f"{len(problems)} of {checks} checks failed:\n{shown}"


# --- the tests -----------------------------------------------------------------------------------


def test_every_generated_query_runs_as_the_live_policy(run: Run) -> None:
    problems = [
        e.where(f"HTTP {e.status}, policy {e.body.get('extensions', {}).get('access', {}).get('policyVersion')}")
        for e in run.exchanges
        if e.status != 200 or e.body.get("extensions", {}).get("access", {}).get("policyVersion") != LIVE_VERSION
    ]
    assert run.exchanges and not problems, report(problems, len(run.exchanges))


def test_no_caller_receives_a_value_the_policy_withholds(run: Run) -> None:
    problems: list[str] = []
    checks = 0
    for exchange in run.of("read"):
        reading = run.reading(exchange)
        for cell in reading.cells:
            if cell.decision is Decision.DENIED:
                checks += 1
                if cell.value is not None:
                    problems.append(exchange.where(f"{'/'.join(cell.path)} = {cell.value!r} is withheld"))
        errors = withheld_errors(exchange)
        wanted = withheld_paths(exchange, reading)
        for path, count in wanted.items():
            checks += 1
            found = errors.get(path, [])
            if len(found) != 1:
                problems.append(exchange.where(f"{len(found)} FORBIDDEN errors for withheld {'/'.join(path)}"))
                continue
            extensions = found[0]["extensions"]
            if extensions.get("code") != "FORBIDDEN" or not extensions.get("reason"):
                problems.append(exchange.where(f"{'/'.join(path)}: error {extensions}"))
            if count is not None and extensions["count"] != count:
                problems.append(exchange.where(f"{'/'.join(path)}: count {extensions['count']}, not {count}"))
        for path in set(errors) - set(wanted):
            problems.append(exchange.where(f"a FORBIDDEN error for {'/'.join(path)}, which is not withheld"))
    assert checks and not problems, report(problems, checks)


def test_masked_values_never_reveal_more_than_their_mask(run: Run) -> None:
    problems: list[str] = []
    checks = 0
    for exchange in run.of("read"):
        for cell in run.reading(exchange).cells:
            if cell.decision is not Decision.MASKED or not cell.known:
                continue
            checks += 1
            if not mask_holds(cell.value, cell.truth, cell.item):
                problems.append(
                    exchange.where(f"{'/'.join(cell.path)} = {cell.value!r}, not the mask of {cell.truth!r}")
                )
    assert checks and not problems, report(problems, checks)


def test_no_plain_id_number_or_mobile_where_a_mask_is_required(run: Run) -> None:
    problems: list[str] = []
    checks = 0
    for exchange in run.exchanges:
        released: Counter[str] = Counter()
        for cell in run.reading(exchange).cells:
            if cell.decision is Decision.PLAIN and isinstance(cell.value, str):
                released.update(sensitive(cell.value))
        found = Counter(sensitive(exchange.text))
        checks += 1
        for value, times in (found - released).items():
            problems.append(exchange.where(f"{value} appears {times} time(s) outside plain fields"))
    assert checks and not problems, report(problems, checks)


def test_access_extension_lists_exactly_the_masked_and_withheld_paths(run: Run) -> None:
    problems: list[str] = []
    checks = 0
    for exchange in run.of("read", "refused"):
        reading = run.reading(exchange)
        masked = {"/".join(path) for path in masked_paths(exchange, reading)}
        withheld = {"/".join(path) for path in withheld_paths(exchange, reading)}
        access = exchange.body.get("extensions", {}).get("access", {})
        checks += 2
        if set(access.get("masked", [])) != masked:
            got = set(access.get("masked", []))
            problems.append(exchange.where(f"masked lists {sorted(got - masked)} and lacks {sorted(masked - got)}"))
        if set(access.get("withheld", [])) != withheld:
            got = set(access.get("withheld", []))
            problems.append(
                exchange.where(f"withheld lists {sorted(got - withheld)} and lacks {sorted(withheld - got)}")
            )
    assert checks and not problems, report(problems, checks)


def test_rows_and_plain_values_are_the_true_ones_within_the_row_rules(run: Run) -> None:
    problems: list[str] = []
    checks = 0
    for exchange in run.of("read"):
        reading = run.reading(exchange)
        checks += len(exchange.roots)
        problems.extend(reading.problems)
        for error in exchange.errors():
            if "count" not in (error.get("extensions") or {}):
                problems.append(exchange.where(f"unexpected error {error}"))
        for cell in reading.cells:
            if cell.decision is Decision.PLAIN and cell.known:
                checks += 1
                if not same(cell.value, cell.truth, cell.item, run.truth.zone(cell.entity)):
                    problems.append(exchange.where(f"{'/'.join(cell.path)} = {cell.value!r}, not {cell.truth!r}"))
    assert checks and not problems, report(problems, checks)


def refusals(run: Run, narrowed: bool) -> tuple[list[str], int]:
    """Problems with the roots that must be refused: narrowed ones (a filter or an order), or
    the others (reads of rows whose key is withheld, by-key reads on a key not released)."""
    problems: list[str] = []
    checks = 0
    for exchange in run.of("refused"):
        errors = {tuple(map(str, e.get("path") or [])): e for e in exchange.errors()}
        roots = [root for root in exchange.roots if (root.narrowed_by is not None) == narrowed]
        for root in roots:
            checks += 1
            error = errors.get((root.alias,))
            if exchange.data.get(root.alias) is not None:
                problems.append(exchange.where(f"{root.alias} answered {exchange.data[root.alias]!r:.200}"))
            if error is None or error["extensions"].get("code") != "FORBIDDEN":
                problems.append(exchange.where(f"{root.alias} was not refused with FORBIDDEN: {error}"))
        if roots and len(exchange.errors()) != len(exchange.roots):
            problems.append(exchange.where(f"{len(exchange.errors())} errors for {len(exchange.roots)} refused roots"))
        if roots and exchange.statements:
            problems.append(exchange.where(f"{len(exchange.statements)} statements ran: {exchange.statements[0]!r}"))
    return problems, checks


def test_filters_and_order_on_unreleased_fields_are_refused_before_any_query(run: Run) -> None:
    problems, checks = refusals(run, narrowed=True)
    assert checks and not problems, report(problems, checks)


def test_rows_with_a_withheld_key_or_read_by_an_unreleased_key_are_refused_before_any_query(run: Run) -> None:
    problems, checks = refusals(run, narrowed=False)
    assert checks and not problems, report(problems, checks)


def test_filters_and_order_on_released_fields_answer(run: Run) -> None:
    problems: list[str] = []
    checks = 0
    for exchange in run.of("read"):
        refused_paths = {tuple(map(str, e.get("path") or [])) for e in exchange.errors()}
        for root in exchange.roots:
            if root.narrowed_by is None:
                continue
            checks += 1
            if exchange.data.get(root.alias) is None or (root.alias,) in refused_paths:
                problems.append(exchange.where(f"{root.alias} was refused though the oracle allows it"))
    assert checks and not problems, report(problems, checks)
