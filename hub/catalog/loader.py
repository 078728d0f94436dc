"""Loading manifests into a catalog, with errors that name the file, the entity and the field.

A bad manifest stops the hub at start-up with a `ManifestError` whose message a person can act
on; nothing here lets a traceback or a pydantic dump reach the operator.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hub.catalog.demand import DemandError, check_demand
from hub.catalog.lineage_check import EdgeError, check_edge
from hub.catalog.manifest import (
    EntityDecl,
    FieldType,
    Manifest,
    SharedDecl,
    lower_first,
    pascal,
    pluralize,
)
from hub.catalog.model import (
    Catalog,
    DepartmentInfo,
    EntityInfo,
    FieldInfo,
    RelationInfo,
    table_spec,
)
from hub.catalog.shared import SharedError, add_shared


class ManifestError(Exception):
    """A manifest is unreadable or wrong; the message names where."""


def load_catalog(directory: Path) -> Catalog:
    """Read every `*.yaml` manifest in `directory` into one checked catalog."""
    if not directory.is_dir():
        raise ManifestError(f"manifest folder {directory} does not exist")
    files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    if not files:
        raise ManifestError(f"manifest folder {directory} holds no *.yaml manifest")
    return build_catalog((path.name, _read(path)) for path in files)


def _read(path: Path) -> Manifest:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"{path.name}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ManifestError(f"{path.name}: not valid YAML{where}") from None
    return parse_manifest(path.name, raw)


def parse_manifest(source: str, raw: Any) -> Manifest:
    if not isinstance(raw, dict):
        raise ManifestError(f"{source}: a manifest is a mapping with department, connection, entities")
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise ManifestError(_describe(source, raw, exc)) from None


def _describe(source: str, raw: dict[str, Any], exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        lines.append(f"{source}: {_where(raw, error['loc'])}: {error['msg']}")
    return "\n".join(lines)


def _where(raw: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic location into `entity Person, field idNumber, mask` using the names in
    the raw document where they exist, falling back to positions."""
    parts: list[str] = []
    node: Any = raw
    i = 0
    while i < len(loc):
        step = loc[i]
        child = _child(node, step)
        if step in ("entities", "fields", "relations", "lineage") and i + 1 < len(loc):
            index = loc[i + 1]
            item = _child(child, index)
            name = item.get("name") if isinstance(item, dict) else None
            if step == "lineage" and isinstance(item, dict) and isinstance(item.get("kind"), str):
                name = f"#{int(index) + 1} ({item['kind']})"
            label = {"entities": "entity", "fields": "field", "relations": "relation", "lineage": "lineage edge"}[
                str(step)
            ]
            parts.append(f"{label} {name}" if isinstance(name, str) else f"{label} #{int(index) + 1}")
            node = item
            i += 2
            continue
        parts.append(str(step))
        node = child
        i += 1
    return ", ".join(parts) if parts else "document"


def _child(node: Any, step: int | str) -> Any:
    if isinstance(node, dict):
        return node.get(step)
    if isinstance(node, list) and isinstance(step, int) and step < len(node):
        return node[step]
    return None


def build_catalog(manifests: Iterable[tuple[str, Manifest]]) -> Catalog:
    catalog = Catalog()
    pending: list[tuple[str, EntityDecl, EntityInfo]] = []
    graphql_names: dict[str, str] = {}
    shared: list[tuple[str, str, SharedDecl]] = []
    manifests_with_demand: list[tuple[str, Manifest]] = []
    for source, manifest in manifests:
        if manifest.demand is not None:
            manifests_with_demand.append((source, manifest))
        if manifest.department in catalog.departments:
            other = catalog.departments[manifest.department].source
            raise ManifestError(f"{source}: department {manifest.department} is also declared in {other}")
        prefix = manifest.prefix or pascal(manifest.department)
        ids = []
        for decl in manifest.entities:
            where = f"{source}: entity {decl.name}"
            info = _entity(where, manifest.department, prefix, decl)
            if info.id in catalog.entities:
                raise ManifestError(f"{where}: declared twice")
            for name in (info.type_name, info.list_field, info.key_field):
                if name in graphql_names:
                    raise ManifestError(f"{where}: GraphQL name {name} is also used by {graphql_names[name]}")
                graphql_names[name] = where
            catalog.entities[info.id] = info
            pending.append((source, decl, info))
            ids.append(info.id)
        shared.extend((source, manifest.department, decl) for decl in manifest.shared)
        catalog.departments[manifest.department] = DepartmentInfo(
            manifest.department, manifest.title, prefix, manifest.connection, source, tuple(ids)
        )
    for source, decl, info in pending:
        for rel in decl.relations:
            where = f"{source}: entity {decl.name}, relation {rel.name}"
            if rel.name in info.fields or rel.name in info.relations or rel.name == "ref":
                raise ManifestError(f"{where}: the name is already a field of {decl.name}")
            target_id = rel.target if "." in rel.target else f"{info.department}.{rel.target}"
            target = catalog.entities.get(target_id)
            if target is None:
                raise ManifestError(f"{where}: target {rel.target} is not a declared entity")
            if rel.field not in info.fields:
                raise ManifestError(f"{where}: field {rel.field} is not a field of {decl.name}")
            target_field = rel.target_field or target.key
            if target_field not in target.fields:
                raise ManifestError(f"{where}: target field {target_field} is not a field of {target_id}")
            if info.fields[rel.field].type != target.fields[target_field].type and {
                info.fields[rel.field].type,
                target.fields[target_field].type,
            } != {FieldType.ID, FieldType.STRING}:
                raise ManifestError(f"{where}: field {rel.field} and target field {target_field} have different types")
            _check_encrypted_join(where, info.fields[rel.field], target.fields[target_field])
            info.relations[rel.name] = RelationInfo(
                rel.name, info.id, target_id, rel.field, target_field, rel.many, rel.description
            )
    try:
        add_shared(catalog, shared, set(graphql_names))
    except SharedError as exc:
        raise ManifestError(str(exc)) from None
    for source, decl, info in pending:
        for index, edge in enumerate(decl.lineage, 1):
            where = f"{source}: entity {decl.name}, lineage edge #{index} ({edge.kind}), field {edge.field}"
            try:
                info.lineage.append(check_edge(catalog, info, edge))
            except EdgeError as exc:
                raise ManifestError(f"{where}: {exc}") from None
    for source, manifest in manifests_with_demand:
        if catalog.demand is not None:
            raise ManifestError(f"{source}: demand is declared by two manifests; one department takes the requests")
        try:
            catalog.demand = check_demand(catalog, source, manifest.department, manifest.demand)  # type: ignore[arg-type]
        except DemandError as exc:
            raise ManifestError(str(exc)) from None
    return catalog


def _entity(where: str, department: str, prefix: str, decl: EntityDecl) -> EntityInfo:
    fields: dict[str, FieldInfo] = {}
    columns: set[str] = set()
    for f in decl.fields:
        column = f.column or f.name
        if f.name in fields:
            raise ManifestError(f"{where}, field {f.name}: declared twice")
        if f.name == "ref":
            raise ManifestError(f"{where}, field {f.name}: `ref` is every entity's global reference; rename the field")
        if column in columns:
            raise ManifestError(f"{where}, field {f.name}: column {column} is used by another field")
        columns.add(column)
        index_column = None
        if f.encrypted and f.blind_index:
            index_column = f.index_column or f"{column}_bidx"
            if index_column in columns:
                raise ManifestError(f"{where}, field {f.name}: index column {index_column} is used by another field")
            columns.add(index_column)
        fields[f.name] = FieldInfo(
            f.name,
            column,
            f.type,
            f.description,
            f.tier,
            f.mask,
            f.encrypted,
            f.blind_index,
            f.scale,
            f.person,
            index_column,
            f.stored_as,
            f.identifier_kind(),
            f.person_attribute,
        )
    if decl.key not in fields:
        raise ManifestError(f"{where}: key {decl.key} is not one of its fields")
    key_type = fields[decl.key].type
    if key_type not in (FieldType.ID, FieldType.STRING, FieldType.INT):
        raise ManifestError(f"{where}, field {decl.key}: a key must be ID, String or Int")
    key_info = fields[decl.key]
    if key_info.encrypted and key_info.index_column is None:
        # Rows are found, ordered and bound to their ciphertexts by the key: an encrypted key
        # needs a blind index to stand in for it.
        raise ManifestError(f"{where}, field {decl.key}: an encrypted key needs a blind_index")
    type_name = decl.type_name or prefix + decl.name
    plural = decl.plural or pluralize(decl.name)
    return EntityInfo(
        id=f"{department}.{decl.name}",
        department=department,
        name=decl.name,
        type_name=type_name,
        list_field=decl.list_field or lower_first(prefix) + plural,
        key_field=decl.key_field or lower_first(type_name),
        key=decl.key,
        description=decl.description,
        lineage_role=decl.lineage_role,
        fields=fields,
        relations={},
        table=table_spec(decl.table, key_info.searchable_column, list(fields.values())),
    )


def _check_encrypted_join(where: str, source: FieldInfo, target: FieldInfo) -> None:
    """Joins between encrypted fields go through blind indexes of one domain: the target must
    be indexed, and an encrypted source too, in the same domain. A plain source joining an
    encrypted target is indexed by the hub as it joins; an encrypted source joining a plain
    target is decrypted in memory (never released) to query the plain side by value."""
    if target.encrypted and target.index_column is None:
        raise ManifestError(f"{where}: target field {target.name} is encrypted without a blind_index")
    if source.encrypted and target.encrypted and source.index_column is None:
        raise ManifestError(
            f"{where}: field {source.name} is encrypted; joining encrypted {target.name} needs both "
            "with blind indexes of one domain"
        )
    if source.blind_index and target.blind_index and source.blind_index != target.blind_index:
        raise ManifestError(
            f"{where}: fields {source.name} ({source.blind_index}) and {target.name} ({target.blind_index}) "
            "are indexed in different domains"
        )
