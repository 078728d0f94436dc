"""Traces: walking the lineage graph breadth-first from one record, hop by hop.

Each hop reads, per entity it reaches, one statement (hub/access/matching.py) with the
caller's row rule and columns, and releases the rows as any read does; recorded links of the
hop's records are read in one statement of the hub database. Records already reached are not
read again (cycle-safe). At `max_nodes` the trace stops and names the frontier: the records
whose neighbours were not all read.

Edges keep the data's orientation whichever way the trace walks: `source` is the record that
holds the reference (the delivery that is `funded_by` an expenditure). A reference the caller
may not follow, or to a record the row rules hide from them, is an edge marked hidden, with no
key: the trace tells that something is there, never what.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.access.matching import read_matching
from hub.access.plan import AccessPlan, Decision
from hub.access.read import JOIN, Reader, RequestAccess
from hub.access.release import Released
from hub.catalog import Catalog, EntityInfo
from hub.catalog.manifest import RefValues
from hub.catalog.model import EdgeInfo
from hub.crypto.cells import index_bytes
from hub.errors import BadUserInput, LimitExceeded
from hub.lineage.edges import Direction, steps_from, walks
from hub.lineage.links import Link
from hub.lineage.refs import PLAIN_REF, RecordRef, from_stored, plain_ref, stored_key

MAX_DEPTH = 8
DEFAULT_MAX_NODES = 1_000
MAX_NODES = 10_000

# The recorded links touching a hop's records (entity id, stored key), active ones only.
LinkSource = Callable[[Sequence[tuple[str, str]]], Awaitable[list[Link]]]


@dataclass
class Node:
    id: str
    entity: EntityInfo
    raw: Any  # the key as stored (a blind index's 32 bytes for an encrypted key)
    row: dict[Any, Any]
    depth: int


@dataclass(frozen=True)
class Edge:
    kind: str
    source: str | None  # node ids; None where the record is hidden
    target: str | None
    hidden: bool = False
    recorded: bool = False


@dataclass
class Trace:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    truncated: bool = False
    frontier: list[str] = field(default_factory=list)
    # Why some edges were not followed (an entity or a field not released to the caller).
    refusals: set[str] = field(default_factory=set)
    # Every release made, by entity: the caller reports what was masked or withheld.
    releases: list[tuple[EntityInfo, Released]] = field(default_factory=list)
    statements: int = 0


@dataclass(frozen=True)
class TraceArgs:
    start: RecordRef
    direction: Direction
    depth: int
    kinds: frozenset[str] | None
    max_nodes: int
    # The fields of each entity the caller selected on its records.
    names: Mapping[str, Sequence[str]]
    joins: Mapping[str, Sequence[str]]


def check_bounds(depth: int, max_nodes: int, kinds: Sequence[str] | None, known_kinds: set[str]) -> None:
    if not 1 <= depth <= MAX_DEPTH:
        raise LimitExceeded(f"`depth` must be between 1 and {MAX_DEPTH}", {"limit": MAX_DEPTH})
    if not 1 <= max_nodes <= MAX_NODES:
        raise LimitExceeded(f"`maxNodes` must be between 1 and {MAX_NODES}", {"limit": MAX_NODES})
    if kinds is not None:
        if len(kinds) > len(known_kinds):
            raise BadUserInput("`kinds` names more kinds than there are")
        unknown = sorted(set(kinds) - known_kinds)
        if unknown:
            raise BadUserInput(f"unknown edge kind {unknown[0][:40]!r}; one of {', '.join(sorted(known_kinds))}")


@dataclass
class _Pending:
    kind: str
    holder_forward: bool  # True: `node` holds the reference; False: the row read holds it
    node: Node
    to: str  # the entity read for it
    match_field: str  # the field of `to` that holds `value`
    value: Hashable
    recorded: bool = False


class Tracer:
    def __init__(self, catalog: Catalog, reader: Reader, links: LinkSource | None = None) -> None:
        self.catalog = catalog
        self.reader = reader
        self.links = links

    async def trace(self, request: RequestAccess, args: TraceArgs) -> Trace:
        plan = request.plan
        start = args.start
        result = Trace()
        plan.require_readable(start.entity)
        raw = start.raw if start.raw is not None else self._index(start.entity, start.plain)
        first = await self._read(request, args, result, start.entity, {start.entity.key: [raw]}, 2)
        if not first:
            # One answer for a record that does not exist and one hidden from the caller.
            raise BadUserInput("no record you may see has that reference")
        seen: dict[tuple[str, Hashable], Node] = {}
        frontier = [self._node(result, seen, start.entity, first[0], 0)]
        for hop in range(1, args.depth + 1):
            if not frontier:
                break
            pending = self._steps(plan, args, result, frontier)
            if self.links is not None:
                pending.extend(await self._recorded(plan, args, result, frontier))
            wanted: dict[str, dict[str, set[Hashable]]] = defaultdict(lambda: defaultdict(set))
            for item in pending:
                wanted[item.to][item.match_field].add(item.value)
            room = args.max_nodes - len(result.nodes)
            found: dict[str, list[dict[Any, Any]]] = {}
            for entity_id, matches in wanted.items():
                entity = self.catalog.entity(entity_id)
                known = sum(1 for key in seen if key[0] == entity_id)
                found[entity_id] = await self._read(request, args, result, entity, matches, room + known + 1)
            frontier, cut = self._place(result, seen, pending, found, hop, args.max_nodes)
            if cut:
                result.truncated = True
                result.frontier = [node.id for node in cut]
                break
        return result

    async def _read(
        self,
        request: RequestAccess,
        args: TraceArgs,
        result: Trace,
        entity: EntityInfo,
        matches: Mapping[str, Any],
        limit: int,
    ) -> list[dict[Any, Any]]:
        names = list(args.names.get(entity.id, ()))
        key = entity.fields[entity.key]
        if key.encrypted and plan_plain(request.plan, entity, entity.key) and entity.key not in names:
            # The plain reference of an encrypted key needs the key itself, released plain.
            names.append(entity.key)
        joins = list(dict.fromkeys([entity.key, *matches, *self._edge_fields(entity), *args.joins.get(entity.id, ())]))
        matched = await read_matching(self.reader, request, entity, matches, names, joins, limit)
        result.statements += 1
        result.releases.append((entity, matched.released))
        for row in matched.released.rows:
            row[ENTITY] = entity.type_name
        return matched.released.rows

    def _edge_fields(self, entity: EntityInfo) -> list[str]:
        """The fields of `entity` any edge joins on, as holder or as target."""
        out = [edge.field for edge in entity.lineage]
        for other in self.catalog:
            for edge in other.lineage:
                if entity.id in edge.targets and edge.target_field is not None:
                    out.append(edge.target_field)
        return out

    def _steps(self, plan: AccessPlan, args: TraceArgs, result: Trace, frontier: list[Node]) -> list[_Pending]:
        pending: list[_Pending] = []
        for node in frontier:
            for step in steps_from(self.catalog, node.entity.id, args.direction, args.kinds):
                edge = step.edge
                target = self.catalog.entity(step.to)
                reason = refusal(plan, self.catalog, edge, target if step.forward else node.entity)
                if step.forward:
                    value = node.row.get((JOIN, edge.field))
                    if value is None:
                        continue
                    match = edge.target_field or target.key
                    if edge.values is RefValues.GLOBAL_REF:
                        value, match = _named_key(target, value)
                        if value is None:
                            continue
                    if reason is not None:
                        result.refusals.add(reason)
                        result.edges.append(Edge(edge.kind, node.id, None, hidden=True))
                        continue
                    pending.append(_Pending(edge.kind, True, node, step.to, match, value))
                else:
                    if reason is not None:
                        result.refusals.add(reason)
                        continue
                    if edge.values is RefValues.GLOBAL_REF:
                        if node.entity.fields[node.entity.key].encrypted:
                            continue
                        value = plain_ref(node.entity, node.raw)
                    else:
                        value = node.row.get((JOIN, edge.target_field))
                    if value is not None:
                        pending.append(_Pending(edge.kind, False, node, step.to, edge.field, value))
        return pending

    async def _recorded(self, plan: AccessPlan, args: TraceArgs, result: Trace, frontier: list[Node]) -> list[_Pending]:
        assert self.links is not None
        by_key = {(node.entity.id, stored_key(node.raw)): node for node in frontier}
        pending: list[_Pending] = []
        for link in await self.links(list(by_key)):
            if args.kinds is not None and link.kind not in args.kinds:
                continue
            for forward, here, there in ((True, link.source, link.target), (False, link.target, link.source)):
                node = by_key.get(here)
                if node is None or not walks(link.kind, forward, args.direction):
                    continue
                other = self.catalog.entities.get(there[0])
                if other is None or plan.field(other.id, other.key).decision is Decision.DENIED:
                    result.refusals.add("a recorded link leads to records not released to you")
                    if forward:
                        result.edges.append(Edge(link.kind, node.id, None, hidden=True, recorded=True))
                    continue
                pending.append(_Pending(link.kind, forward, node, other.id, other.key, from_stored(there[1]), True))
        return pending

    def _node(
        self, result: Trace, seen: dict[tuple[str, Hashable], Node], entity: EntityInfo, row: dict[Any, Any], depth: int
    ) -> Node:
        raw = row.get((JOIN, entity.key))
        node = Node(f"n{len(result.nodes)}", entity, raw, row, depth)
        seen[(entity.id, _hashable(raw))] = node
        result.nodes.append(node)
        return node

    def _place(
        self,
        result: Trace,
        seen: dict[tuple[str, Hashable], Node],
        pending: list[_Pending],
        found: Mapping[str, list[dict[Any, Any]]],
        hop: int,
        max_nodes: int,
    ) -> tuple[list[Node], list[Node]]:
        """The hop's new nodes and its edges; the frontier it leaves unfinished if cut."""
        index: dict[tuple[str, str, Hashable], list[dict[Any, Any]]] = defaultdict(list)
        cut = False
        new: list[Node] = []
        for entity_id, rows in found.items():
            entity = self.catalog.entity(entity_id)
            fields = {item.match_field for item in pending if item.to == entity_id}
            for row in rows:
                key = (entity_id, _hashable(row.get((JOIN, entity.key))))
                if key not in seen:
                    if len(result.nodes) >= max_nodes:
                        cut = True
                        continue
                    new.append(self._node(result, seen, entity, row, hop))
                for name in fields:
                    index[(entity_id, name, _hashable(row.get((JOIN, name))))].append(row)
        known: set[tuple[str, str | None, str | None]] = {(e.kind, e.source, e.target) for e in result.edges}
        for item in pending:
            entity_id, name = item.to, item.match_field
            rows = index.get((entity_id, name, _hashable(item.value)), [])
            if not rows and item.holder_forward:
                edge = Edge(item.kind, item.node.id, None, hidden=True, recorded=item.recorded)
                result.edges.append(edge)
                continue
            for row in rows:
                other = seen.get((entity_id, _hashable(row.get((JOIN, self.catalog.entity(entity_id).key)))))
                if other is None:
                    continue
                source, target = (item.node.id, other.id) if item.holder_forward else (other.id, item.node.id)
                if (item.kind, source, target) not in known:
                    known.add((item.kind, source, target))
                    result.edges.append(Edge(item.kind, source, target, recorded=item.recorded))
        frontier_cut = [node for node in result.nodes if node.depth == hop - 1] if cut else []
        return new, frontier_cut

    def _index(self, entity: EntityInfo, plain: Any) -> bytes:
        digest = index_bytes(self.reader._index_value(entity.fields[entity.key], str(plain)))
        assert digest is not None
        return digest


# The row key naming a node's GraphQL type, read by the record union's type resolution.
ENTITY = ("entity",)


def plan_plain(plan: AccessPlan, entity: EntityInfo, name: str) -> bool:
    return plan.field(entity.id, name).decision is Decision.PLAIN


def refusal(plan: AccessPlan, catalog: Catalog, edge: EdgeInfo, other: EntityInfo) -> str | None:
    """Why the caller may not follow `edge` to or from `other`, or None. Following an edge
    tells its join value (and that records exist), so, as for a relation, the holder's field
    must be released plain or be searchable, and both ends' records readable at all."""
    holder = catalog.entity(edge.source)
    for entity in (holder, other):
        if plan.field(entity.id, entity.key).decision is Decision.DENIED:
            return f"records of {entity.type_name} are not released to you"
    verdict = plan.field(holder.id, edge.field)
    if verdict.decision is not Decision.PLAIN and not verdict.lookup:
        return f"following {edge.kind} needs {holder.type_name}.{edge.field} released plain to you"
    return None


def _named_key(target: EntityInfo, value: Any) -> tuple[Any, str]:
    """The key a global reference in the data names, if it names a record of `target`."""
    match = PLAIN_REF.match(value) if isinstance(value, str) else None
    if match is None or f"{match.group(1)}.{match.group(2)}" != target.id:
        return None, target.key
    key = target.fields[target.key]
    if key.encrypted:
        return None, target.key
    text = match.group(3)
    return (int(text) if key.type.value == "Int" and text.isdigit() else text), target.key


def _hashable(value: Any) -> Hashable:
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value  # type: ignore[no-any-return]
