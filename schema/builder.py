"""Building the strawberry schema from the catalog: one object type, connection, filter and
order per entity, a list field and a by-key field each, and relations across departments."""

import datetime
import logging
import types
from dataclasses import dataclass
from typing import Any, Optional

import strawberry
from graphql import GraphQLError
from strawberry.federation.schema import FederationAny
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext
from strawberry.types.field import StrawberryField

from hub.catalog import Catalog
from hub.config import Settings
from schema.access import AccessPlanning
from schema.accountability import REPORT_FIELDS, accountability_fields
from schema.admin import AdminMutation, AdminQuery
from schema.aggregates import aggregate_field_name, aggregate_root_field, aggregate_types, group_type_name
from schema.audit import AuditQueryFields
from schema.compiled import DocumentCompiler
from schema.entities import EntityTypes, add_field, connection_class, entity_types
from schema.errors import code_of
from schema.execution.direct import DirectPlans
from schema.execution.fast_path import HubExecutor, fast_executor
from schema.execution.operation import Operation
from schema.federation import (
    FEDERATION_VERSION,
    SubgraphSDL,
    asks_federation,
    entities,
    service_field,
    shared_classes,
    subgraph_sdl,
)
from schema.limits import DemandControl
from schema.lineage import lineage_fields
from schema.loading import REF_FIELD
from schema.lookups import Lookups
from schema.parsing import DocumentParsing
from schema.records import bind_union, record_union
from schema.resolvers import key_resolver, list_resolver, ref_resolver, relation_resolver
from schema.scalars import AWARE_DATETIME, PYTHON_TYPE

log = logging.getLogger("hub.schema")


def _default_resolver(source: Any, name: str) -> Any:
    # Entity rows are plain dicts: building an object per row would cost more than the row.
    if type(source) is dict:
        return source.get(name)
    return getattr(source, name)


class HubSchema(strawberry.Schema):
    # Whether errors about variables leave out "Did you mean ..." (validation errors do where
    # the DocumentCompiler is told to): in production mode, suggestions would spell out the
    # schema that introspection keeps to itself.
    hide_suggestions = True

    def _get_custom_context_kwargs(
        self, operation_extensions: dict[str, Any] | None = None, *, sync: bool = False
    ) -> dict[str, Any]:
        # strawberry passes these on to graphql-core's execute(), the one place that takes
        # hide_suggestions for the coercion of variables (strawberry has no setting for it).
        kwargs = super()._get_custom_context_kwargs(operation_extensions, sync=sync)
        kwargs["hide_suggestions"] = self.hide_suggestions
        return kwargs

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # Expected errors (bad input, forbidden, unavailable) are the caller's business; only
        # internal ones are logged, with their traceback, on the server.
        for error in errors:
            if code_of(error) == "INTERNAL":
                log.error("internal error: %s", error.message, exc_info=error.original_error)


class FederatedHubSchema(strawberry.federation.Schema, HubSchema):
    """A hub whose catalog shares entities across hubs: an Apollo Federation 2 subgraph
    (schema/federation.py), `_entities` checked there and read through the same plan."""

    catalog: Catalog
    shared_types: dict[str, type]
    subgraph_sdl: str

    def entities_resolver(self, info: strawberry.Info, representations: list[FederationAny]) -> list[FederationAny]:
        return entities(self.catalog, self.shared_types, representations)


@dataclass
class BuiltSchema:
    schema: HubSchema
    # GraphQL type name -> entity id of the generated entity types.
    entity_types: dict[str, str]
    # Root list and by-key field names -> entity id.
    root_fields: dict[str, str]
    # Parses and validates documents once per text (and trusted documents once per id).
    compiler: DocumentCompiler
    # The direct plans of compiled documents made only of lookups by key; None when the fast
    # path is off, so that everything runs on graphql-core's normal path.
    direct: DirectPlans | None
    # The identifier values a request supplies, for the lookup quota.
    lookups: Lookups
    # Depth, aliases, directives and cost, checked per caller before anything runs.
    limits: DemandControl

    def sdl(self) -> str:
        return self.schema.as_str() + "\n"

    def asks_federation(self, operation: Operation) -> bool:
        """Whether `operation`'s document asks for `_entities` or `_service` (a gateway's)."""
        document = operation.document.document
        if not isinstance(self.schema, FederatedHubSchema) or document is None:
            return False
        return asks_federation(self.schema._schema, document, operation.text)

    def subgraph_sdl(self) -> str | None:
        """What this hub contributes to a Federation composition; None if it shares nothing."""
        if not isinstance(self.schema, FederatedHubSchema):
            return None
        return self.schema.subgraph_sdl


def build_schema(catalog: Catalog, settings: Settings | None = None, *, fast_path: bool = True) -> BuiltSchema:
    """The schema of `catalog`. `fast_path`: complete entity rows with shapers (schema/execution/fast_path.py);
    off, every field takes graphql-core's normal path (the differential test compares the two)."""
    limits = DemandControl(settings)
    # Production mode without settings; suggestions are shown only where the schema is
    # public anyway (introspection on).
    introspection = settings.introspection if settings else False
    compiler = DocumentCompiler(
        [],
        limits.settings.max_tokens,
        introspection=introspection,
        hide_suggestions=not introspection,
    )
    generated = entity_types(catalog)
    _add_relations(catalog, generated)
    _add_refs(generated)
    shared = shared_classes(catalog, generated) if catalog.shared else {}
    query_fields: list[StrawberryField] = []
    for types_ in generated.values():
        strawberry.type(types_.object_type, description=types_.entity.description or None)
        types_.connection = connection_class(types_.entity, types_.object_type)
        query_fields.extend(_root_fields(types_))
        query_fields.append(aggregate_root_field(aggregate_types(types_.entity), types_.filter))
    # The generated fields sit beside the fixed admin and trail fields on one Query type.
    names = {t.entity.type_name: entity_id for entity_id, t in generated.items()}
    sdl = SubgraphSDL()
    if shared:
        query_fields.append(service_field(sdl))
    namespace = {f.python_name: f for f in query_fields}
    annotations = {f.python_name: f.type_annotation for f in query_fields}
    union = record_union([t.object_type for t in generated.values()])
    lineage_query, lineage_mutation = lineage_fields(union)
    query = types.new_class(
        "Query",
        (AdminQuery, AuditQueryFields, lineage_query, accountability_fields(catalog, union)),
        {},
        lambda ns: ns.update({**namespace, "__annotations__": annotations}),
    )
    mutation = strawberry.type(
        types.new_class("Mutation", (AdminMutation, lineage_mutation), {}),
        name="Mutation",
        description="Policy administration and recorded lineage links; every change is recorded.",
    )
    federated: dict[str, Any] = (
        {"types": list(shared.values()), "federation_version": FEDERATION_VERSION} if shared else {}
    )
    schema = (FederatedHubSchema if shared else HubSchema)(
        query=strawberry.type(query),
        mutation=mutation,
        config=StrawberryConfig(auto_camel_case=False, default_resolver=_default_resolver),
        # Factories: each request gets fresh extension objects.
        extensions=[
            lambda: DocumentParsing(compiler),
            AccessPlanning,
        ],
        # Aggregate groups are plain dicts too: the fast path shapes their lists.
        execution_context_class=(
            fast_executor([*names, *(group_type_name(t.entity) for t in generated.values())], _default_resolver)
            if fast_path
            else HubExecutor
        ),
        scalar_overrides={datetime.datetime: AWARE_DATETIME},
        **federated,
    )
    schema.hide_suggestions = not introspection
    bind_union(schema._schema)
    limits.bind(
        schema._schema,
        names,
        [aggregate_field_name(t.entity) for t in generated.values()],
        REPORT_FIELDS if catalog.demand is not None else (),
    )
    compiler.bind(schema._schema, limits.screen)
    roots = {f: t.entity.id for t in generated.values() for f in (t.entity.list_field, t.entity.key_field)}
    # Aggregate fields are roots too: their entity is planned, their filter counted for the
    # lookup quota as a list's is (direct plans take by-key fields and, by documents made only of
    # aggregates, aggregate fields: schema/execution/direct_aggregates.py).
    roots.update((aggregate_field_name(t.entity), t.entity.id) for t in generated.values())
    if isinstance(schema, FederatedHubSchema):
        schema.catalog, schema.shared_types = catalog, shared
        sdl.text = schema.subgraph_sdl = subgraph_sdl(schema.as_str(), set(roots))
    direct = DirectPlans(schema._schema, catalog, roots, _default_resolver) if fast_path else None
    lookups = Lookups(schema._schema, catalog, roots, names)
    return BuiltSchema(schema, names, roots, compiler, direct, lookups, limits)


def _add_relations(catalog: Catalog, generated: dict[str, EntityTypes]) -> None:
    for entity_id, types_ in generated.items():
        for relation in catalog.entity(entity_id).relations.values():
            target = generated[relation.target]
            # Nullable, lists too: a related department being unavailable nulls this field only,
            # never the parent row.
            item: Any = list[target.object_type] if relation.many else target.object_type  # type: ignore[name-defined]
            annotation: Any = Optional[item]  # noqa: UP045
            resolver = relation_resolver(relation, target.entity)
            resolver.__annotations__ = {"root": dict, "info": strawberry.Info, "return": annotation}
            if relation.many:
                # A list takes the root list's filter and order, and the rows kept per parent.
                resolver.__annotations__.update(
                    filter=Optional[target.filter],  # noqa: UP045
                    orderBy=Optional[list[target.order]],  # type: ignore[name-defined]  # noqa: UP045
                    first=Optional[int],  # noqa: UP045
                )

            description = relation.description or (
                f"{'All' if relation.many else 'The'} {target.entity.type_name} whose "
                f"{relation.target_field} equals this {relation.field}."
            )
            add_field(
                types_.object_type,
                relation.name,
                annotation,
                strawberry.field(resolver=resolver, name=relation.name, description=description),
            )


def _add_refs(generated: dict[str, EntityTypes]) -> None:
    for types_ in generated.values():
        add_field(
            types_.object_type,
            REF_FIELD,
            Optional[str],  # noqa: UP045
            strawberry.field(
                resolver=ref_resolver(types_.entity),
                name=REF_FIELD,
                description=(
                    "The record's global reference: `department:Entity:key` where you read the key plain, "
                    "else a sealed reference that only you can trace from."
                ),
            ),
        )


def _root_fields(types_: EntityTypes) -> list[StrawberryField]:
    entity = types_.entity
    listing = list_resolver(entity, types_.filter, types_.order)
    # Nullable: one department being unavailable must not wipe the other fields' data.
    listing.__annotations__["return"] = Optional[types_.connection]  # noqa: UP045
    key_type = PYTHON_TYPE[entity.fields[entity.key].type]
    by_key = key_resolver(entity, key_type)
    by_key.__annotations__["return"] = Optional[types_.object_type]  # noqa: UP045
    fields = [
        strawberry.field(
            resolver=listing,
            name=entity.list_field,
            description=f"{entity.type_name} rows: filter, order and page them. {entity.description}".strip(),
        ),
        strawberry.field(
            resolver=by_key,
            name=entity.key_field,
            description=f"One {entity.type_name} by its key ({entity.key}); null if there is none you may see.",
        ),
    ]
    # create_type names attributes after python_name, which defaults to the resolver's name.
    for field in fields:
        field.python_name = field.graphql_name or ""
    return fields
