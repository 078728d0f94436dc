"""The lineage part of the schema: `trace`, `recordLink` and `retractLink`.

Made per schema, because a trace node's record is the union of the catalog's entity types
(schema/records.py). Resolvers are thin: hub/lineage does the walking, the checks and the
storing; the access plan covers every entity a trace may reach (schema/access.py).
"""

import enum
from datetime import UTC, datetime
from typing import Annotated, Any, Optional

import strawberry

from hub.access.read import JOIN
from hub.catalog.lineage import KINDS
from hub.lineage.edges import Direction
from hub.lineage.recording import Lineage, Recorded
from hub.lineage.refs import from_stored
from hub.lineage.trace import DEFAULT_MAX_NODES, Trace, TraceArgs, check_bounds
from schema.context import RequestContext, available
from schema.loading import report
from schema.records import fields_by_type, needs_by_entity
from schema.selection import child_fields

# Recorded links and traces are reached through these root fields; the access plan then
# covers every entity with a lineage role (schema/access.py).
LINEAGE_QUERIES = frozenset({"trace"})
LINEAGE_MUTATIONS = frozenset({"recordLink", "retractLink"})


@strawberry.enum(name="TraceDirection", description="Which way a trace walks.")
class TraceDirection(enum.Enum):
    UPSTREAM = strawberry.enum_value(
        "UPSTREAM", description="Towards the money: a request, its services, their funding."
    )
    DOWNSTREAM = strawberry.enum_value(
        "DOWNSTREAM", description="Towards the citizen: a budget line, its spending, services, requests, feedback."
    )
    BOTH = strawberry.enum_value("BOTH", description="Both ways.")


@strawberry.type(name="TraceEdge", description="A typed edge between two nodes, in the data's orientation.")
class TraceEdge:
    kind: str = strawberry.field(description="funded_by, allocated_from, fulfils, feedback_on, ...")
    from_: Optional[str] = strawberry.field(  # noqa: UP045
        name="from", description="The node holding the reference; null where the record is hidden."
    )
    to: Optional[str] = strawberry.field(description="The node referred to; null where the record is hidden.")  # noqa: UP045
    hidden: bool = strawberry.field(description="One end is a record you may not see: its key is not told.")
    recorded: bool = strawberry.field(description="A link recorded through the hub, not the departments' own data.")


@strawberry.type(name="RecordedLink", description="A link recorded (or retracted) through the hub.")
class RecordedLink:
    id: int
    kind: str
    from_: Optional[str] = strawberry.field(name="from", description="The `from` record's reference, at your level.")  # noqa: UP045
    to: Optional[str] = strawberry.field(description="The `to` record's reference, at your level.")  # noqa: UP045
    reason: str
    recordedBy: str
    recordedAt: datetime
    retracts: Optional[int] = strawberry.field(description="For a retraction: the link it supersedes.")  # noqa: UP045
    applied: bool = strawberry.field(description="False when a retried idempotency key returned the earlier recording.")


def _lineage(info: strawberry.Info) -> tuple[RequestContext, Lineage]:
    context: RequestContext = info.context
    return context, available(context.lineage, "lineage is not configured")


def _recorded(context: RequestContext, done: Recorded) -> RecordedLink:
    refs, plan = context.reader.refs, context.plan
    link = done.link
    (source, source_row), (target, target_row) = done.source, done.target
    return RecordedLink(
        id=link.id,
        kind=link.kind,
        from_=refs.of_row(plan, source, source_row or {}, from_stored(link.source[1])),
        to=refs.of_row(plan, target, target_row or {}, from_stored(link.target[1])),
        reason=link.reason,
        recordedBy=link.recorded_by,
        recordedAt=datetime.fromtimestamp(link.at_us / 1_000_000, UTC),
        retracts=link.retracts,
        applied=done.applied,
    )


def lineage_fields(union: Any) -> tuple[type, type]:
    """The Query and Mutation mixins of the lineage fields, for the record union `union`."""

    @strawberry.type(name="TraceNode", description="A record reached by a trace.")
    class TraceNode:
        id: str = strawberry.field(description="The node's id within this trace (edges name it).")
        ref: Optional[str] = strawberry.field(description="The record's reference, at your level.")  # noqa: UP045
        entity: str = strawberry.field(description="The record's GraphQL type.")
        depth: int = strawberry.field(description="Hops from the start.")
        record: Optional[union] = strawberry.field(description="The record, released under your access plan.")  # noqa: UP045

    @strawberry.type(name="Trace", description="The records and typed edges reached from one record.")
    class TraceResult:
        nodes: list[TraceNode]
        edges: list[TraceEdge]
        truncated: bool = strawberry.field(description="maxNodes was reached: `frontier` names where it stopped.")
        frontier: list[str] = strawberry.field(description="Nodes whose neighbours were not all read.")
        notFollowed: list[str] = strawberry.field(description="Why some edges were not followed.")
        source: strawberry.Private[Any]

        @strawberry.field(description="The trace as W3C PROV-JSON (written with the `prov` package).")
        def provJson(self) -> str:
            from hub.lineage.prov import prov_json

            return prov_json(self.source)

    @strawberry.type
    class LineageQueryFields:
        @strawberry.field(
            description="Walk the lineage graph from one record's reference: breadth-first, one statement per "
            "entity per hop, every record through your access plan. `depth` 1 to 8 (default 3); `maxNodes` "
            f"default {DEFAULT_MAX_NODES}, at most 10000."
        )
        async def trace(
            self,
            info: strawberry.Info,
            from_: Annotated[str, strawberry.argument(name="from")],
            direction: TraceDirection = TraceDirection.DOWNSTREAM,
            depth: int = 3,
            kinds: Optional[list[str]] = None,  # noqa: UP045
            maxNodes: int = DEFAULT_MAX_NODES,
        ) -> Optional[TraceResult]:  # noqa: UP045
            context, lineage = _lineage(info)
            check_bounds(depth, maxNodes, kinds, set(KINDS))
            catalog = lineage.catalog
            start = context.reader.refs.parse(catalog, context.plan, from_)
            raw = info._raw_info
            path = tuple("*" if isinstance(k, int) else k for k in info.path.as_list())
            top = child_fields(raw.field_nodes, raw.fragments, raw.variable_values)
            node_fields = child_fields(top.get("nodes", []), raw.fragments, raw.variable_values)
            selected = fields_by_type(node_fields.get("record", []), raw.fragments, context.entity_types)
            names, joins = needs_by_entity(catalog, selected, context.entity_types)
            args = TraceArgs(
                start,
                Direction(direction.value),
                depth,
                frozenset(kinds) if kinds is not None else None,
                maxNodes,
                names,
                joins,
            )
            result = await lineage.tracer.trace(context.current, args)
            for _, released in result.releases:
                report(context, (*path, "nodes", "*", "record"), released)
            shaped: TraceResult = _trace(context, result, TraceNode, TraceResult)
            return shaped

    @strawberry.type
    class LineageMutationFields:
        @strawberry.mutation(
            description="Record a link the departments' data lacks (this delivery answered that request). Checked: "
            "both records exist and you may read both, your department owns `from`, the kind fits the records' "
            "lineage roles; a retried idempotencyKey applies once. Recorded in the access trail."
        )
        async def recordLink(
            self,
            info: strawberry.Info,
            from_: Annotated[str, strawberry.argument(name="from")],
            to: str,
            kind: str,
            reason: str,
            idempotencyKey: str,
        ) -> RecordedLink:
            context, lineage = _lineage(info)
            done = await lineage.record(context.current, from_, to, kind, reason, idempotencyKey)
            return _recorded(context, done)

        @strawberry.mutation(description="Supersede a link your department recorded (links are never deleted).")
        async def retractLink(self, info: strawberry.Info, link: int, reason: str, idempotencyKey: str) -> RecordedLink:
            context, lineage = _lineage(info)
            done = await lineage.retract(context.current, link, reason, idempotencyKey)
            return _recorded(context, done)

    return LineageQueryFields, LineageMutationFields


def _trace(context: RequestContext, result: Trace, node_type: Any, trace_type: Any) -> Any:
    refs, plan = context.reader.refs, context.plan
    nodes = [
        node_type(
            id=node.id,
            ref=refs.of_row(plan, node.entity, node.row, node.row.get((JOIN, node.entity.key))),
            entity=node.entity.type_name,
            depth=node.depth,
            record=node.row,
        )
        for node in result.nodes
    ]
    edges = [
        TraceEdge(kind=e.kind, from_=e.source, to=e.target, hidden=e.hidden, recorded=e.recorded) for e in result.edges
    ]
    return trace_type(
        nodes=nodes,
        edges=edges,
        truncated=result.truncated,
        frontier=result.frontier,
        notFollowed=sorted(result.refusals),
        source=(result, nodes),
    )
