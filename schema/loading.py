"""What both executors share to load entity rows for a selection: the fields a selection
needs, lookups by key, relation loads and the request's loaders that batch them, refusals of
relations, the value budget's charge for placed rows, and the reports of what the release step
masked or withheld.

graphql-core's normal path reaches these through the strawberry resolvers in
schema/resolvers.py; the fast path (schema/execution/) and direct plans call them for a whole
list or lookup at once. Either way a request makes the same reads and the same reports.
"""

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from graphql import FieldNode, FragmentDefinitionNode, GraphQLField
from graphql.execution.values import VariableValues, get_argument_values
from strawberry.dataloader import DataLoader

from hub.access.budget import values_per_row
from hub.access.plan import Decision
from hub.access.read import NO_ARGS, RelationArgs
from hub.access.release import Released
from hub.catalog import EntityInfo, RelationInfo
from hub.errors import HubError
from schema.context import RequestContext
from schema.inputs import input_spec
from schema.selection import child_fields

# Every entity type's global reference (hub/lineage/refs.py); no manifest field may take the name.
REF_FIELD = "ref"


def needs(entity: EntityInfo, fields: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Entity fields selected, and fields relations (and links to shared entities) need as
    join values."""
    names = [name for name in fields if name in entity.fields]
    joins = [entity.relations[name].field for name in fields if name in entity.relations]
    if entity.links:
        joins.extend(entity.links[name][1] for name in fields if name in entity.links)
    if REF_FIELD in fields:
        # A reference is made from the key as stored (a blind index for an encrypted key).
        joins.append(entity.key)
    return names, list(dict.fromkeys(joins))


def report(context: RequestContext, base: tuple[str | int, ...], released: Released) -> None:
    for name, reason in released.withheld.items():
        context.withhold((*base, name), reason, len(released.rows))
    context.masked.update((*base, name) for name in released.masked)
    for name, count in released.unreadable.items():
        path = (*base, name)
        context.unreadable[path] = context.unreadable.get(path, 0) + count
    if released.left_out:
        # At the list the rows are missing from (`*` is its rows), or at a single row's field.
        at = base[:-1] if base and base[-1] == "*" else base
        context.left_out[at] = context.left_out.get(at, 0) + released.left_out


async def lookup(
    context: RequestContext,
    entity: EntityInfo,
    key: Any,
    names: Sequence[str],
    joins: Sequence[str],
    path: tuple[str | int, ...],
) -> dict[Any, Any] | None:
    """The released row of `entity` whose key is `key`, with the fields `names` (and the
    join values `joins`), or None; what it masked or withheld is reported at `path`. The by-key
    resolver and direct plans (schema/execution/direct.py) both read through it."""
    value = int(key) if entity.fields[entity.key].type.value == "Int" else str(key)
    released = await context.reader.by_key(context.current, entity, value, names, joins)
    report(context, path, released)
    return released.rows[0] if released.rows else None


@dataclass(frozen=True)
class RelationField:
    """What a generated relation field follows; the fast path reads it to load per list."""

    relation: RelationInfo
    target: EntityInfo


# The relation resolvers, by function: strawberry keeps the function as the field's resolver,
# so the fast path finds a field's relation without calling it (schema/resolvers.py fills it).
RELATION_FIELDS: WeakKeyDictionary[Callable[..., Any], RelationField] = WeakKeyDictionary()


class CutRows(list[dict[Any, Any]]):
    """A relation list's rows under one parent, cut at the relation's bound: more rows matched.
    The loader hands these out; the field's completion reports the list as truncated."""


def deliver(context: RequestContext, width: int, placed: int) -> None:
    """Counts `placed` related rows about to be placed under parents against the request's
    value budget, before they are shaped: each placement is a copy in the answer."""
    if placed:
        context.current.budget.charge(placed, width)


@dataclass(frozen=True)
class RelationLoad:
    """How one relation field at one list path loads: the target fields its selection needs
    and the request's loader for them. The same for every row of every list at that path."""

    relation: RelationInfo
    names: tuple[str, ...]
    joins: tuple[str, ...]
    # The field's path with list indices as `*`, as errors and withheld paths name it.
    path: tuple[str | int, ...]
    # A list's filter, order and rows per parent: one field node's, the same for every row.
    args: RelationArgs = NO_ARGS

    @property
    def width(self) -> int:
        """The values each related row counts for in the request's budget."""
        return values_per_row(self.names, self.joins)

    def loader(self, context: RequestContext) -> DataLoader[Hashable, list[dict[Any, Any]]]:
        relation = self.relation
        # One loader per field path and selection: lists at one path batch together.
        # The arguments too: a filter's values are plain data, told apart by their repr.
        path = tuple(k for k in self.path if k != "*")
        key = (relation.source, relation.name, path, self.names, self.joins, repr(self.args))
        return context.loader(
            key, lambda: request_loader(context, relation, self.names, self.joins, self.path, self.args)
        )


def relation_load(
    field: RelationField,
    nodes: Sequence[FieldNode],
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Any,
    path: tuple[str | int, ...],
    definition: GraphQLField,
) -> RelationLoad:
    names, joins = needs(field.target, child_fields(nodes, fragments, variables))
    args = relation_args(definition, nodes[0], variables) if field.relation.many else NO_ARGS
    return RelationLoad(field.relation, tuple(names), tuple(joins), path, args)


def relation_args(definition: GraphQLField, node: FieldNode, variables: Any) -> RelationArgs:
    """A relation list's arguments as the reader takes them. Fields merged under one response
    key have the same arguments (validation ensures it), so the first node's are the list's."""
    if not node.arguments:
        return NO_ARGS
    if variables is not None and not isinstance(variables, VariableValues):
        variables = VariableValues({}, dict(variables))
    given = get_argument_values(definition, node, variables)
    order = tuple(member.value for member in given.get("orderBy") or ())
    return RelationArgs(input_spec(given.get("filter")), order, given.get("first"))


def refusal(context: RequestContext, relation: RelationInfo) -> str | None:
    """Why following `relation` is not released to this request, or None if it is."""
    verdict = context.plan.relation(relation.source, relation.name)
    if verdict.decision is Decision.DENIED:
        return verdict.reason or "not released to you"
    return None


def request_loader(
    context: RequestContext,
    relation: RelationInfo,
    names: Sequence[str],
    joins: Sequence[str],
    path: tuple[str | int, ...],
    args: RelationArgs = NO_ARGS,
) -> DataLoader[Hashable, list[dict[Any, Any]]]:
    async def load(values: list[Hashable]) -> list[list[dict[Any, Any]] | BaseException]:
        try:
            found = await context.reader.related(context.current, relation, names, joins, values, args)
        except HubError as error:
            if error.code == "INTERNAL":
                raise  # logged with its traceback (HubSchema.process_errors)
            # The caller's error for every value, as raising it would give; but returned, and
            # without the frames it was raised through. Raised, strawberry's dispatch_batch
            # catches it and sets it on each value's future, so its traceback holds that
            # frame, whose batch holds those futures, which hold the error: a cycle around the
            # request's loader and context (~1,000 objects a list) that only the cyclic
            # collector frees: under bench.load with finance down, 2.5-2.9 s of the hub's CPU
            # went to collections in 20 s, against 2.0 s with all up (bench/README.md, "Load").
            # The operator's record of the failure was made where it arose (hub/access/failure.py).
            return [detached(error)] * len(values)
        base = (*path, "*") if relation.many else path
        report(context, base, found.released)
        grouped, cut = found.grouped, found.cut
        return [CutRows(grouped[value]) if value in cut else grouped.get(value, []) for value in values]

    return DataLoader(load_fn=load)


def detached(error: HubError) -> HubError:
    """`error` without the frames it was raised through, nor the error it replaced (a caller's
    error needs neither: its code, message and extensions are all it shows)."""
    error.__traceback__ = None
    error.__context__ = None
    error.__cause__ = None
    return error
