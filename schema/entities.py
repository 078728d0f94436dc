"""Generated GraphQL types of catalog entities: object types, connections, filters, orders.

Types are made in two passes: first every entity's class with its scalar fields, then the
relation fields, which may point at any other class (relations cross departments and form
cycles); strawberry resolves the annotations when the schema is assembled.
"""

import enum
import types
from dataclasses import dataclass
from typing import Any, Optional

import strawberry
from strawberry.types.field import StrawberryField

from hub.catalog import Catalog, EntityInfo, FieldInfo
from hub.catalog.manifest import FieldType, snake
from schema.demand import RELATION_FILTER
from schema.scalars import FILTER_INPUT, PYTHON_TYPE, EncryptedFilter, PageInfo


@dataclass
class EntityTypes:
    entity: EntityInfo
    object_type: type
    connection: type
    filter: type
    order: type[enum.Enum]


# Masks that change a value's form: the masked value of a date or a number is text.
FORM_CHANGING = ("partial", "hash", "year_only")


def _field_type(item: FieldInfo, is_key: bool) -> Any:
    base = PYTHON_TYPE[item.type]
    if item.mask is not None and item.mask.kind in FORM_CHANGING and item.type not in (FieldType.ID, FieldType.STRING):
        base = str
    # Every field but the key is nullable: a withheld or undecryptable value becomes null
    # without wiping its parent object.
    return base if is_key else Optional[base]  # noqa: UP045 (typing form needed at runtime)


def _new_class(name: str, annotations: dict[str, Any], namespace: dict[str, Any]) -> type:
    body = {"__annotations__": annotations, **namespace}
    return types.new_class(name, (), {}, lambda ns: ns.update(body))


def object_class(entity: EntityInfo) -> type:
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {}
    for item in entity.fields.values():
        annotations[item.name] = _field_type(item, item.name == entity.key)
        namespace[item.name] = strawberry.field(name=item.name, description=_describe(item))
    return _new_class(entity.type_name, annotations, namespace)


def _describe(item: FieldInfo) -> str:
    tags = [f"tier {item.tier.value}"]
    if item.mask is not None:
        tags.append(f"mask {item.mask.kind}")
    if item.encrypted:
        tags.append("encrypted at rest")
    text = item.description.strip()
    return f"{text} ({', '.join(tags)})" if text else f"({', '.join(tags)})"


def filter_class(entity: EntityInfo) -> type:
    name = f"{entity.type_name}Filter"
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {}
    for item in entity.fields.values():
        kind = EncryptedFilter if item.encrypted else FILTER_INPUT[item.type]
        annotations[item.name] = Optional[kind]  # noqa: UP045
        namespace[item.name] = strawberry.field(default=None, name=item.name)
    cls = _new_class(name, annotations, namespace)
    # Combinators refer to the class itself, so they are added once it exists.
    cls.__annotations__["and_"] = Optional[list[cls]]  # type: ignore[valid-type]  # noqa: UP045
    cls.and_ = strawberry.field(default=None, name="and", description="All of these hold.")  # type: ignore[attr-defined]
    cls.__annotations__["or_"] = Optional[list[cls]]  # type: ignore[valid-type]  # noqa: UP045
    cls.or_ = strawberry.field(default=None, name="or", description="At least one of these holds.")  # type: ignore[attr-defined]
    cls.__annotations__["not_"] = Optional[cls]  # noqa: UP045
    cls.not_ = strawberry.field(default=None, name="not", description="This does not hold.")  # type: ignore[attr-defined]
    # Decorated by `entity_types` once relation conditions, which name other entities'
    # filters (in cycles), are added.
    return cls


def relation_filter_class(target: EntityInfo, target_filter: type) -> type:
    """Conditions on the related rows of a relation to `target`, run as key-set semi-joins."""
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {}
    for quantifier, about in (
        ("some", "At least one related row you may see matches."),
        ("none", "No related row you may see matches (`{}`: there is none)."),
        ("every", "Every related row you may see matches (true when there is none)."),
    ):
        annotations[quantifier] = Optional[target_filter]  # noqa: UP045
        namespace[quantifier] = strawberry.field(default=None, name=quantifier, description=about)
    cls = _new_class(f"{target.type_name}{RELATION_FILTER}", annotations, namespace)
    return strawberry.input(cls, description=f"Conditions on related {target.type_name} rows.")


def order_enum(entity: EntityInfo) -> type[enum.Enum]:
    members: dict[str, tuple[str, bool]] = {}
    for item in entity.fields.values():
        # Ciphertext has no useful order, and ordering by it would leak nothing but confusion.
        if item.type is FieldType.BOOLEAN or item.encrypted:
            continue
        upper = snake(item.name).upper()
        members[f"{upper}_ASC"] = (item.name, False)
        members[f"{upper}_DESC"] = (item.name, True)
    order = enum.Enum(f"{entity.type_name}OrderBy", members)  # type: ignore[misc]
    return strawberry.enum(order, description="Sort orders; every order ends with the key.")


def connection_class(entity: EntityInfo, object_type: type) -> type:
    annotations: dict[str, Any] = {"nodes": list[object_type], "totalCount": int, "pageInfo": PageInfo}  # type: ignore[valid-type]
    namespace: dict[str, Any] = {
        "nodes": strawberry.field(name="nodes", description="The rows of this page."),
        "totalCount": strawberry.field(
            name="totalCount", description="Rows matching the filter, over all pages (one more statement)."
        ),
        "pageInfo": strawberry.field(name="pageInfo"),
    }
    cls = _new_class(f"{entity.type_name}Connection", annotations, namespace)
    return strawberry.type(cls, description=f"A page of {entity.type_name}.")


def add_field(cls: type, name: str, annotation: Any, field: StrawberryField) -> None:
    cls.__annotations__[name] = annotation
    setattr(cls, name, field)


def entity_types(catalog: Catalog) -> dict[str, EntityTypes]:
    """Undecorated object classes for every entity; the caller adds relations then finishes."""
    out: dict[str, EntityTypes] = {}
    for entity in catalog:
        obj = object_class(entity)
        out[entity.id] = EntityTypes(entity, obj, type, filter_class(entity), order_enum(entity))
    related: dict[str, type] = {}
    for types_ in out.values():
        for relation in types_.entity.relations.values():
            target = out[relation.target]
            if relation.target not in related:
                related[relation.target] = relation_filter_class(target.entity, target.filter)
            add_field(
                types_.filter,
                relation.name,
                Optional[related[relation.target]],  # noqa: UP045
                strawberry.field(default=None, name=relation.name, description=relation.description or None),
            )
    for types_ in out.values():
        entity = types_.entity
        types_.filter = strawberry.input(
            types_.filter, description=f"Conditions on {entity.type_name}; all given must hold."
        )
    return out
