"""The hub as an Apollo Federation 2 subgraph: entities shared across hubs, `_entities` and the
subgraph's SDL (docs/federation.md).

A manifest's `shared` declarations (hub/catalog/shared.py) become one object type each, with
`@key` on its key field: `Resident @key(fields: "residentIndex")`, whose other fields list this
hub's rows that hold the key (`person`, `healthVisits`). Each member entity gets a link field
(`PopulationPerson.resident`) that leads to it, so a gateway can go from one hub's row to the
rows other hubs hold for the same key.

Nothing here decides access. A member's rows are read by `Reader.shared`, with the request's
access plan (made before execution, as for every read), its row rules and its release step,
batched by a loader: all the keys of one gateway call at one path are one statement per chunk.
A key that is a blind index travels as the 64 hex digits of its digest; a link or a lookup by
it needs the member field released plain or for lookups, as following a relation does. Where
this hub's index key differs from the fingerprint the declaration names, the shared entity is
not served: the hub says why instead of answering with keys no other hub can match.
"""

from __future__ import annotations

import re
import types
from collections.abc import Hashable, Sequence
from typing import Any, Optional

import strawberry
from graphql import (
    DocumentNode,
    FieldDefinitionNode,
    GraphQLSchema,
    NamedTypeNode,
    ObjectTypeDefinitionNode,
    TypeDefinitionNode,
    parse,
    print_ast,
)
from strawberry.dataloader import DataLoader

from hub.access.budget import values_per_row
from hub.access.plan import Decision
from hub.access.read import JOIN
from hub.catalog import Catalog
from hub.catalog.model import SharedInfo, SharedMember
from hub.errors import BadUserInput, DataIntegrity, LimitExceeded
from hub.health.shared_keys import KeyState, key_state
from schema.context import RequestContext
from schema.entities import EntityTypes, add_field
from schema.loading import CutRows, deliver, needs, report
from schema.selection import child_fields, reachable_fields

FEDERATION_VERSION = "2.3"
LINK = (
    f'extend schema @link(url: "https://specs.apollo.dev/federation/v{FEDERATION_VERSION}", '
    'import: ["@key", "@shareable"])'
)
# Representations one `_entities` call may carry: a gateway sends one per row it joins.
MAX_REPRESENTATIONS = 1000
MAX_PLAIN_KEY = 200
INDEX_KEY = re.compile(r"^[0-9a-f]{64}$")
# Fields the Federation specification adds; the SDL a hub serves leaves them to the gateway.
FEDERATION_FIELDS = frozenset({"_service", "_entities"})
FEDERATION_TYPES = frozenset({"_Service", "_Entity", "_Any"})
# Object types every hub defines alike: marked @shareable for composition.
SHAREABLE = frozenset({"PageInfo"})


@strawberry.type(name="_Service")
class Service:
    sdl: str


class SubgraphSDL:
    """The SDL `_service` answers, made once the schema it is printed from exists."""

    text = ""


def service_field(sdl: SubgraphSDL) -> Any:
    def resolve() -> Service:
        return Service(sdl=sdl.text)

    field: Any = strawberry.field(resolver=resolve, name="_service", description="This hub as a Federation subgraph.")
    field.python_name = "_service"
    return field


def shared_classes(catalog: Catalog, generated: dict[str, EntityTypes]) -> dict[str, type]:
    """The strawberry type of each shared entity, by type name; and their link fields, added to
    the member entities' (undecorated) classes."""
    classes: dict[str, type] = {}
    for shared in catalog.shared.values():
        annotations: dict[str, Any] = {shared.key: strawberry.ID}
        namespace: dict[str, Any] = {
            shared.key: strawberry.field(name=shared.key, description="The key this entity is shared under.")
        }
        for member in shared.members.values():
            target = generated[member.entity]
            item: Any = list[target.object_type] if member.many else target.object_type  # type: ignore[name-defined]
            resolver = _member_resolver(shared, member)
            resolver.__annotations__ = {"root": Any, "info": strawberry.Info, "return": Optional[item]}  # noqa: UP045
            annotations[member.name] = Optional[item]  # noqa: UP045
            namespace[member.name] = strawberry.field(
                resolver=resolver,
                name=member.name,
                description=f"This hub's {target.entity.type_name} rows whose {member.field} is the key.",
            )
        body = {"__annotations__": annotations, **namespace}
        cls = types.new_class(shared.type_name, (), {}, lambda ns, body=body: ns.update(body))  # type: ignore[misc]
        description = f"Shared across hubs under {shared.key}" + (
            f", the blind index of {shared.index_domain}." if shared.index_domain else "."
        )
        classes[shared.type_name] = strawberry.federation.type(cls, keys=[shared.key], description=description)
    for entity_id, types_ in generated.items():
        for link, (type_name, field) in types_.entity.links.items():
            shared = catalog.shared[type_name]
            resolver = _link_resolver(shared, classes[type_name], field, entity_id)
            annotation: Any = Optional[classes[type_name]]  # noqa: UP045
            resolver.__annotations__ = {"root": dict, "info": strawberry.Info, "return": annotation}
            add_field(
                types_.object_type,
                link,
                annotation,
                strawberry.field(
                    resolver=resolver, name=link, description=f"The {type_name} this row belongs to, across hubs."
                ),
            )
    return classes


def _path(info: strawberry.Info) -> tuple[str | int, ...]:
    return tuple("*" if isinstance(key, int) else key for key in info.path.as_list())


def key_refusal(context: RequestContext, shared: SharedInfo) -> DataIntegrity | None:
    """Why this hub cannot serve `shared`'s key: its index key is not the one the composition
    shares (the declaration's fingerprint), so its keys would match nothing elsewhere."""
    if key_state(context.reader.keys.keyring, shared) is KeyState.MATCHES:
        return None
    return DataIntegrity(
        f"{shared.type_name} is not served: this hub's blind-index key for {shared.index_domain} is not the "
        "one its manifest declares for the composition (index_fingerprint); import the shared key with "
        "`hub keys import-index`",
        {"type": shared.type_name},
    )


def _link_resolver(shared: SharedInfo, cls: type, field: str, entity_id: str) -> Any:
    async def resolve(root: dict[Any, Any], info: strawberry.Info) -> Any:
        context: RequestContext = info.context
        refused = key_refusal(context, shared)
        if refused is not None:
            raise refused
        verdict = context.plan.field(entity_id, field)
        if verdict.decision is not Decision.PLAIN and not verdict.lookup:
            # The key names the row's person across hubs: only for callers who may search by it.
            context.withhold(_path(info), f"{shared.link} needs {field} released plain to you", 1)
            return None
        value = root.get((JOIN, field))
        if value is None:
            return None
        key = value.hex() if isinstance(value, bytes) else str(value)
        return cls(**{shared.key: key})

    return resolve


def _member_resolver(shared: SharedInfo, member: SharedMember) -> Any:
    async def resolve(root: Any, info: strawberry.Info) -> Any:
        context: RequestContext = info.context
        refused = key_refusal(context, shared)
        if refused is not None:
            raise refused
        raw = info._raw_info
        entity = context.planner.catalog.entity(member.entity)
        names, joins = needs(entity, child_fields(raw.field_nodes, raw.fragments, raw.variable_values))
        path = _path(info)
        # One loader per path and selection: every representation's field at this path batches.
        loader_key = ("shared", shared.type_name, member.name, tuple(k for k in path if k != "*"), *names, "|", *joins)
        loader = context.loader(loader_key, lambda: _loader(context, member, names, joins, path))
        key = getattr(root, shared.key)
        rows = await loader.load(bytes.fromhex(key) if shared.index_domain else key)
        deliver(context, values_per_row(names, joins), len(rows))
        if not member.many:
            return rows[0] if rows else None
        if type(rows) is CutRows:
            context.truncated.add(tuple(info.path.as_list()))
        return list(rows)

    return resolve


def _loader(
    context: RequestContext,
    member: SharedMember,
    names: Sequence[str],
    joins: Sequence[str],
    path: tuple[str | int, ...],
) -> DataLoader[Hashable, list[dict[Any, Any]]]:
    entity = context.planner.catalog.entity(member.entity)

    async def load(values: list[Hashable]) -> list[list[dict[Any, Any]]]:
        found = await context.reader.shared(context.current, entity, member.field, values, names, joins, member.many)
        report(context, (*path, "*") if member.many else path, found.released)
        grouped, cut = found.grouped, found.cut
        return [CutRows(grouped[value]) if value in cut else grouped.get(value, []) for value in values]

    return DataLoader(load_fn=load)


def entities(catalog: Catalog, classes: dict[str, type], representations: Any) -> list[Any]:
    """The objects `_entities` answers, one per representation: checked (type, key, form,
    count) before anything is read; a representation that is not valid answers an error at its
    place. The rows behind them are read by their fields, batched."""
    if not isinstance(representations, list):
        raise BadUserInput("representations is a list")
    if len(representations) > MAX_REPRESENTATIONS:
        raise LimitExceeded(f"at most {MAX_REPRESENTATIONS} representations per call", {"limit": MAX_REPRESENTATIONS})
    out: list[Any] = []
    for representation in representations:
        out.append(_entity(catalog, classes, representation))
    return out


def _entity(catalog: Catalog, classes: dict[str, type], representation: Any) -> Any:
    if not isinstance(representation, dict):
        return BadUserInput("a representation is an object with __typename and the key")
    type_name = representation.get("__typename")
    shared = catalog.shared.get(type_name) if isinstance(type_name, str) else None
    if shared is None:
        return BadUserInput("a representation names a type this hub does not share")
    if set(representation) != {"__typename", shared.key}:
        return BadUserInput(f"a {shared.type_name} representation holds __typename and {shared.key} only")
    key = representation[shared.key]
    if not isinstance(key, str):
        return BadUserInput(f"{shared.key} is a string")
    if shared.index_domain is not None and not INDEX_KEY.match(key):
        return BadUserInput(f"{shared.key} is a blind index: 64 lower-case hex digits")
    if shared.index_domain is None and not 0 < len(key) <= MAX_PLAIN_KEY:
        return BadUserInput(f"{shared.key} is 1 to {MAX_PLAIN_KEY} characters")
    return classes[shared.type_name](**{shared.key: key})


def asks_federation(schema: GraphQLSchema, document: DocumentNode, text: str) -> bool:
    """Whether `document` names `_entities` or `_service` anywhere (any operation, fragment or
    alias): what only a configured gateway may ask. The text is looked at first, so other
    requests cost a substring search."""
    if "_entities" not in text and "_service" not in text:
        return False
    return not FEDERATION_FIELDS.isdisjoint(reachable_fields(schema, document).get("Query", ()))


def subgraph_sdl(printed: str, kept_roots: set[str]) -> str:
    """The SDL this hub contributes to a composition, from its whole schema as printed: the
    Query fields in `kept_roots` (entity lists, lookups, aggregates) and every type they reach,
    with the Federation link; the hub's own administration and trail stay out of the graph
    (each hub is asked for them directly)."""
    document = parse(printed)
    definitions = {d.name.value: d for d in document.definitions if isinstance(d, TypeDefinitionNode)}
    query = definitions["Query"]
    assert isinstance(query, ObjectTypeDefinitionNode)
    roots = tuple(f for f in query.fields or () if f.name.value in kept_roots)
    wanted: set[str] = {"Query"}
    pending = [_named(f) for f in roots] + [a for f in roots for a in _argument_types(f)]
    while pending:
        name = pending.pop()
        if name in wanted or name not in definitions or name in FEDERATION_TYPES:
            continue
        wanted.add(name)
        node = definitions[name]
        for field in getattr(node, "fields", None) or ():
            pending.append(_named(field))
            pending.extend(_argument_types(field))
        pending.extend(t.name.value for t in getattr(node, "types", None) or ())
    parts = [LINK]
    for definition in document.definitions:
        if not isinstance(definition, TypeDefinitionNode) or definition.name.value not in wanted:
            continue
        text = print_ast(definition) if definition is not query else _print_query(query, roots)
        if definition.name.value in SHAREABLE:
            text = text.replace(f"type {definition.name.value} {{", f"type {definition.name.value} @shareable {{", 1)
        parts.append(text)
    return "\n\n".join(parts) + "\n"


def _print_query(query: ObjectTypeDefinitionNode, roots: tuple[FieldDefinitionNode, ...]) -> str:
    doc = DocumentNode(definitions=(ObjectTypeDefinitionNode(name=query.name, fields=roots, directives=()),))
    return print_ast(doc)


def _named(field: Any) -> str:
    node = field.type
    while not isinstance(node, NamedTypeNode):
        node = node.type
    return str(node.name.value)


def _argument_types(field: Any) -> list[str]:
    return [_named(a) for a in getattr(field, "arguments", None) or ()]
