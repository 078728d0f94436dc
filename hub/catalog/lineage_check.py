"""Checking a manifest's lineage edge declarations against the catalog at start-up.

The loader prefixes each message with the file, the entity, the edge and the field, like
every manifest error.
"""

from __future__ import annotations

from hub.catalog.lineage import KINDS
from hub.catalog.manifest import FieldType, LineageDecl, RefValues
from hub.catalog.model import Catalog, EdgeInfo, EntityInfo

_TEXT = {FieldType.ID, FieldType.STRING}


class EdgeError(ValueError):
    """A declared edge does not fit; the loader puts the file, entity and edge before it."""


def check_edge(catalog: Catalog, info: EntityInfo, decl: LineageDecl) -> EdgeInfo:
    kind = KINDS.get(decl.kind)
    if kind is None:
        raise EdgeError(f"unknown kind {decl.kind}; one of {', '.join(sorted(KINDS))}")
    if decl.field not in info.fields:
        raise EdgeError(f"{decl.field} is not a field of {info.name}")
    if info.lineage_role not in kind.sources:
        role = info.lineage_role.value if info.lineage_role else "none"
        allowed = ", ".join(sorted(r.value for r in kind.sources))
        raise EdgeError(f"{info.name} has lineage role {role}; {decl.kind} starts from {allowed}")
    source_field = info.fields[decl.field]
    if decl.values is RefValues.GLOBAL_REF:
        if source_field.type not in _TEXT or source_field.encrypted:
            raise EdgeError("global references are held in a plain String or ID field")
        targets = tuple(e.id for e in catalog if e.lineage_role in kind.targets and _named(decl.to, info, e))
        if not targets:
            raise EdgeError(f"no entity has a lineage role {decl.kind} may point at")
        return EdgeInfo(decl.kind, info.id, decl.field, targets, None, decl.values, decl.description)
    assert decl.to is not None  # the manifest model requires it for key values
    target_id = decl.to if "." in decl.to else f"{info.department}.{decl.to}"
    target = catalog.entities.get(target_id)
    if target is None:
        raise EdgeError(f"target {decl.to} is not a declared entity")
    if target.lineage_role not in kind.targets:
        role = target.lineage_role.value if target.lineage_role else "none"
        allowed = ", ".join(sorted(r.value for r in kind.targets))
        raise EdgeError(f"target {target_id} has lineage role {role}; {decl.kind} points at {allowed}")
    to_field = decl.to_field or target.key
    if to_field not in target.fields:
        raise EdgeError(f"target field {to_field} is not a field of {target_id}")
    target_field = target.fields[to_field]
    if source_field.type != target_field.type and {source_field.type, target_field.type} != _TEXT:
        raise EdgeError(f"field {decl.field} and target field {to_field} have different types")
    # A trace joins through blind indexes of one domain, never by decrypting: both sides of an
    # encrypted edge must be indexed alike, and a plain side cannot meet an encrypted one.
    if source_field.encrypted != target_field.encrypted:
        raise EdgeError(f"field {decl.field} and target field {to_field} must both be encrypted or both plain")
    if source_field.encrypted and (
        source_field.index_column is None
        or target_field.index_column is None
        or source_field.blind_index != target_field.blind_index
    ):
        raise EdgeError(f"encrypted fields {decl.field} and {to_field} need blind indexes of one domain")
    return EdgeInfo(decl.kind, info.id, decl.field, (target_id,), to_field, decl.values, decl.description)


def _named(to: str | None, info: EntityInfo, candidate: EntityInfo) -> bool:
    if to is None:
        return True
    return candidate.id == (to if "." in to else f"{info.department}.{to}")
