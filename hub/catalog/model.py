"""The catalog: every department's shared entities, resolved and cross-checked.

Built once at start-up from the manifests; read-only afterwards. The schema builder, the
access plan and the query planner all read it; none of them reads manifests.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connectors.base import ColumnSpec, Kind, TableSpec
from hub.catalog.manifest import ConnectionDecl, FieldType, LineageRole, Mask, RefValues, Storage, Tier

if TYPE_CHECKING:
    from hub.catalog.demand import Demand

KIND_OF: dict[FieldType, Kind] = {
    FieldType.ID: Kind.STRING,
    FieldType.STRING: Kind.STRING,
    FieldType.INT: Kind.INT,
    FieldType.FLOAT: Kind.FLOAT,
    FieldType.DECIMAL: Kind.DECIMAL,
    FieldType.BOOLEAN: Kind.BOOL,
    FieldType.DATE: Kind.DATE,
    FieldType.DATETIME: Kind.DATETIME,
}


@dataclass(frozen=True)
class FieldInfo:
    name: str
    column: str
    type: FieldType
    description: str
    tier: Tier
    mask: Mask | None
    encrypted: bool
    blind_index: str | None
    scale: int
    person: bool
    # Set for an encrypted, blind-indexed field: the column holding its index.
    index_column: str | None = None
    stored_as: Storage = Storage.BINARY
    # For the mask-strength check (hub.policy.mask_strength): the identifier kind this field
    # holds, and the person attribute it tells.
    identifier: str | None = None
    person_attribute: str | None = None

    @property
    def searchable_column(self) -> str:
        """The column equality filters and joins on this field compare: its blind index when
        the field is encrypted, else the field's own column."""
        return self.index_column or self.column


@dataclass(frozen=True)
class RelationInfo:
    name: str
    source: str  # entity id of the owner
    target: str  # entity id of the target
    field: str  # field of the owner whose value is looked up
    target_field: str
    many: bool
    description: str


@dataclass(frozen=True)
class EdgeInfo:
    """A declared lineage edge: `source`'s `field` names records of `target` by `target_field`
    (or, with GLOBAL_REF values, names any record of `targets` by a global reference)."""

    kind: str
    source: str  # entity id of the record holding the reference
    field: str
    targets: tuple[str, ...]  # entity ids it may point at; one unless values are global refs
    target_field: str | None  # None for global references (they name the key)
    values: RefValues
    description: str


@dataclass(frozen=True)
class EntityInfo:
    """One shared entity. `id` is `department.Entity`, stable across releases."""

    id: str
    department: str
    name: str
    type_name: str
    list_field: str
    key_field: str
    key: str  # the key field's name
    description: str
    lineage_role: LineageRole | None
    fields: dict[str, FieldInfo]
    relations: dict[str, RelationInfo]
    table: TableSpec
    # Fields that lead to an entity shared across hubs (hub/catalog/shared.py): link field
    # name -> (shared type name, the field of this entity holding its key).
    links: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Typed lineage edges from this entity's records, in declaration order (filled by the
    # loader once every entity is known).
    lineage: list[EdgeInfo] = field(default_factory=list)

    def column_of(self, field_name: str) -> str:
        return self.fields[field_name].column

    @functools.cached_property
    def person_columns(self) -> tuple[str, ...]:
        """The columns that identify the persons a row touches (blind indexes where the
        field is encrypted), which every read fetches for the access record."""
        return tuple(item.searchable_column for item in self.fields.values() if item.person)


@dataclass(frozen=True)
class DepartmentInfo:
    name: str
    title: str
    prefix: str
    connection: ConnectionDecl
    source: str  # the manifest file it came from, for messages
    entities: tuple[str, ...]


@dataclass(frozen=True)
class SharedMember:
    """Rows of `entity` whose `field` holds a shared entity's key, listed as `name`."""

    entity: str  # entity id
    field: str
    name: str
    many: bool


@dataclass(frozen=True)
class SharedInfo:
    """An entity shared across hubs under a Federation `@key` (hub/catalog/shared.py)."""

    type_name: str
    key: str
    # The blind-index domain the key is an index of, and the fingerprint of its key the
    # composition expects; None for a plain key (a budget line's code).
    index_domain: str | None
    index_fingerprint: str | None
    # By the shared type's field name.
    members: dict[str, SharedMember]
    # The field each member entity gets that leads to the shared entity (`resident`).
    link: str


@dataclass
class Catalog:
    departments: dict[str, DepartmentInfo] = field(default_factory=dict)
    entities: dict[str, EntityInfo] = field(default_factory=dict)
    # Entities shared across hubs, by their type name.
    shared: dict[str, SharedInfo] = field(default_factory=dict)
    # Which delivered services answer which requests (hub/catalog/demand.py), where declared.
    demand: Demand | None = None

    def entity(self, entity_id: str) -> EntityInfo:
        return self.entities[entity_id]

    def __iter__(self) -> Iterator[EntityInfo]:
        return iter(self.entities.values())


def table_spec(table: str, key_column: str, fields: list[FieldInfo]) -> TableSpec:
    columns: dict[str, ColumnSpec] = {}
    for f in fields:
        if f.encrypted:
            # Stored values are read as they are; the hub decrypts them on release.
            stored = Kind.BYTES if f.stored_as is Storage.BINARY else Kind.STRING
            columns[f.column] = ColumnSpec(f.column, stored)
            if f.index_column is not None:
                columns[f.index_column] = ColumnSpec(f.index_column, stored)
        else:
            # A GraphQL Int is 32 bits: a wider stored value reads as unreadable, not as an error.
            bits = 32 if f.type is FieldType.INT else 64
            columns[f.column] = ColumnSpec(f.column, KIND_OF[f.type], f.scale, bits)
    return TableSpec(table, key_column, columns)
