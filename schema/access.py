"""The schema extension that makes the access plan once per request, before execution.

It runs after the document is parsed and validated, walks everything the document can reach,
and asks the planner for one plan; resolvers then only read it."""

from collections.abc import Iterator

from graphql import DocumentNode, GraphQLSchema
from strawberry.extensions import SchemaExtension

from hub.access.plan import Selection
from hub.access.read import RequestAccess
from hub.access.record import AccessRecord
from hub.catalog import Catalog
from schema.context import RequestContext
from schema.lineage import LINEAGE_MUTATIONS, LINEAGE_QUERIES
from schema.selection import reachable_fields


def selection_of(
    catalog: Catalog, entity_types: dict[str, str], root_fields: dict[str, str], reached: dict[str, set[str]]
) -> Selection:
    fields: dict[str, frozenset[str]] = {}
    relations: dict[str, frozenset[str]] = {}
    # A list or by-key field reaches its entity even when only `totalCount` is selected.
    for name in reached.get("Query", ()):
        if name in root_fields:
            fields.setdefault(root_fields[name], frozenset())
    for type_name, names in reached.items():
        entity_id = entity_types.get(type_name)
        if entity_id is None:
            continue
        entity = catalog.entity(entity_id)
        fields[entity_id] = frozenset(n for n in names if n in entity.fields)
        relations[entity_id] = frozenset(n for n in names if n in entity.relations)
    if LINEAGE_QUERIES & reached.get("Query", set()) or LINEAGE_MUTATIONS & reached.get("Mutation", set()):
        # A trace may reach, and a link may name, a record of any entity with a lineage role.
        for entity in catalog:
            if entity.lineage_role is not None:
                fields.setdefault(entity.id, frozenset())
    return Selection(fields, relations)


def selection_for(context: RequestContext, schema: GraphQLSchema, document: DocumentNode) -> Selection:
    """What `document` can reach, as the planner takes it: worked out once per compiled
    document (the same object every request, which the planner's cache of plans keys on)."""
    compiled = context.document
    catalog = context.planner.catalog

    def of(reached: dict[str, set[str]]) -> Selection:
        return selection_of(catalog, context.entity_types, context.root_fields, reached)

    if compiled is not None and compiled.document is document:
        return compiled.selection(schema, of)
    return of(reachable_fields(schema, document))


def begin(context: RequestContext, selection: Selection) -> None:
    """Make the request's plan for everything `selection` reaches, its empty access record
    and its value budget: once per request, before any resolver runs."""
    plan = context.planner.plan(context.principal, context.purpose, selection)
    record = AccessRecord(context.principal.subject, context.principal.department, context.purpose, plan.policy_version)
    context.request = RequestAccess(plan, record, context.reader.budget())


class AccessPlanning(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        document = self.execution_context.graphql_document
        if isinstance(context, RequestContext) and document is not None:
            begin(context, selection_for(context, self.execution_context.schema._schema, document))
        yield
