"""A manifest draft from a reflected database: entities, keys, every column with its GraphQL
type, foreign keys as relations both ways, and guessed tiers and masks, with a YAML comment
wherever a person must decide.

The draft is a starting point the operator edits, never a manifest served unread: every guess
that releases less than it could (L3, masked) is safe by default, and every guess that may be
wrong says so beside the field.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import yaml

from hub.catalog.manifest import COLUMN, NAME, lower_first, pascal, pluralize
from hub.onboarding.guesses import Looks, looks
from hub.onboarding.reflect import Column, Table

ID_MASK = {"kind": "partial", "keep_first": 3}
MOBILE_MASK = {"kind": "partial", "keep_first": 3, "keep_last": 4}
NAME_MASK = {"kind": "partial", "keep_first": 1}
_RESERVED = frozenset({"and", "or", "not"})
_ID_NAME = re.compile(r"id_?(number|no|card)|identity|sfz|身份证", re.IGNORECASE)
_MOBILE_NAME = re.compile(r"mobile|phone|tel|手机|电话", re.IGNORECASE)
_PERSON_NAME = re.compile(r"(^|_)name$|姓名", re.IGNORECASE)
_INDEX_SUFFIXES = ("_bidx", "_index", "_hash")


@dataclass
class Item:
    """One field or relation: what the manifest gets, and the comments above it."""

    decl: dict[str, Any]
    comments: list[str] = field(default_factory=list)


@dataclass
class Entity:
    name: str
    table: Table
    key: str
    fields: list[Item]
    relations: list[Item] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    field_of: dict[str, str] = field(default_factory=dict)  # column -> field name


@dataclass
class Draft:
    department: str
    url_env: str
    entities: list[Entity]
    # Tables left out, and why: also written as comments, and printed by the command.
    notes: list[str]

    def render(self) -> str:
        return _render(self)


def draft(department: str, url_env: str, tables: Sequence[Table]) -> Draft:
    notes: list[str] = []
    prefix = _common_prefix([table.name for table in tables])
    entities: dict[str, Entity] = {}
    taken: set[str] = set()
    for table in tables:
        entity = _entity(table, prefix, taken, notes)
        if entity is not None:
            entities[table.name] = entity
            taken.add(entity.name)
    for entity in entities.values():
        _relations(entity, entities, notes)
    return Draft(department, url_env, list(entities.values()), notes)


def _common_prefix(names: Sequence[str]) -> str:
    """A table prefix every table shares (`hs_` in hs_tenant, hs_lease), left out of entity
    names since the department's name already prefixes every GraphQL type."""
    heads = {name.split("_", 1)[0] for name in names if "_" in name}
    if len(names) > 1 and len(heads) == 1 and all("_" in name for name in names):
        return heads.pop() + "_"
    return ""


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name


def _camel(column: str) -> str | None:
    parts = [part for part in column.split("_") if part]
    if not parts:
        return None
    name = parts[0][:1].lower() + parts[0][1:] + "".join(part[:1].upper() + part[1:] for part in parts[1:])
    if name[:1].isdigit():
        name = "c" + name
    if keyword.iskeyword(name) or name in _RESERVED:
        name += "Value"
    return name if re.match(NAME, name) else None


def _entity(table: Table, prefix: str, taken: set[str], notes: list[str]) -> Entity | None:
    name = pascal(_singular(table.name.removeprefix(prefix)))
    if not re.match(COLUMN, table.name) or not re.match(NAME, name) or name in taken:
        notes.append(f"table {table.name}: its name makes no entity name; add it by hand")
        return None
    key_column, key_comment = _key_column(table)
    if key_column is None:
        notes.append(f"table {table.name}: it has no primary key or single unique column")
        return None
    entity = Entity(name, table, "", [])
    if key_comment:
        entity.comments.append(key_comment)
    index_of = _index_columns(table)
    indexes = set(index_of.values())
    for column in table.columns:
        if column.name in indexes:
            continue
        item = _field(table, column, index_of.get(column.name), set(entity.field_of.values()))
        if item is None:
            notes.append(f"table {table.name}, column {column.name}: its name or type has no field here")
            entity.comments.append(f"column {column.name} left out: its name or type has no field; add it by hand")
            continue
        entity.fields.append(item)
        entity.field_of[column.name] = item.decl["name"]
        if index_of.get(column.name) is not None:
            entity.field_of[index_of[column.name]] = item.decl["name"]
    if key_column not in entity.field_of:
        notes.append(f"table {table.name}: its key column {key_column} has no field here")
        return None
    entity.key = entity.field_of[key_column]
    key = next(item for item in entity.fields if item.decl["name"] == entity.key)
    if key.decl["type"] == "String":
        key.decl["type"] = "ID"
    return entity


def _key_column(table: Table) -> tuple[str | None, str]:
    if len(table.primary_key) == 1:
        return table.primary_key[0], ""
    unique = [name for name in table.unique if not table.column(name).nullable] or list(table.unique)
    why = "a composite primary key" if table.primary_key else "no primary key"
    if unique:
        return unique[0], f"decide: {table.name} has {why}; keyed by the unique column {unique[0]}"
    return None, ""


def _index_columns(table: Table) -> dict[str, str]:
    """Encrypted column -> the blind-index column stored beside it."""
    found: dict[str, str] = {}
    names = {column.name: column for column in table.columns}
    for column in table.columns:
        if looks(column.samples) not in (Looks.STORED_BINARY, Looks.STORED_TEXT):
            continue
        for suffix in _INDEX_SUFFIXES:
            index = names.get(column.name + suffix)
            if index is not None and looks(index.samples) in (Looks.INDEX_BINARY, Looks.INDEX_TEXT):
                found[column.name] = index.name
                break
    return found


def _field(table: Table, column: Column, index: str | None, used: set[str]) -> Item | None:
    name = _camel(column.name)
    if name is None or not re.match(COLUMN, column.name):
        return None
    while name in used:
        name += "2"
    decl: dict[str, Any] = {"name": name}
    if column.name != name:
        decl["column"] = column.name
    item = Item(decl)
    kind = looks(column.samples)
    if kind in (Looks.STORED_BINARY, Looks.STORED_TEXT):
        _encrypted(item, column, kind, index)
        return item
    graphql = _graphql_type(column.type, item)
    if graphql is None:
        return None
    decl["type"] = graphql
    decl["tier"] = "L2"
    if graphql == "String":
        _personal(item, column, kind)
    return item


def _graphql_type(kind: sa.types.TypeEngine[Any], item: Item) -> str | None:
    if isinstance(kind, sa.Boolean):
        return "Boolean"
    if isinstance(kind, sa.Integer):
        if getattr(kind, "display_width", None) == 1 and type(kind).__name__ == "TINYINT":
            return "Boolean"  # MySQL and MariaDB spell BOOLEAN as TINYINT(1)
        if isinstance(kind, sa.BigInteger):
            item.comments.append("decide: a 64-bit column; an Int is 32 bits, larger values read as unreadable")
        return "Int"
    if isinstance(kind, sa.Float):
        return "Float"
    if isinstance(kind, sa.Numeric):
        item.decl["scale"] = kind.scale if kind.scale is not None else 2
        if kind.scale is None:
            item.comments.append("decide: the column declares no scale; the draft assumes 2 digits")
        return "Decimal"
    if isinstance(kind, sa.DateTime):
        return "DateTime"
    if isinstance(kind, sa.Date):
        return "Date"
    if isinstance(kind, sa.String) and not isinstance(kind, sa.Enum | sa.Uuid):
        return "String"
    return None


def _personal(item: Item, column: Column, kind: Looks | None) -> None:
    decl = item.decl
    where = column.name
    if kind is Looks.RESIDENT_ID:
        # Of the resident_id domain: it joins the population registry as it is, and an `eq`
        # on it is a lookup, counted against the quota like one on an encrypted number.
        decl.update(
            type="ID", tier="L3", mask=ID_MASK, identifier="resident_id", person=True, blind_index="resident_id"
        )
        item.comments.append(
            f"decide: {where} holds resident ID numbers (valid check digits) in plain text; it joins the "
            "population registry as it is; to keep it encrypted at rest, `hub encrypt-column`, then "
            "encrypted: true"
        )
    elif kind is Looks.MOBILE:
        decl.update(tier="L3", mask=MOBILE_MASK, identifier="mobile")
        item.comments.append(f"decide: {where} holds mobile numbers in plain text; consider `hub encrypt-column`")
    elif kind is Looks.NAME:
        decl.update(tier="L3", mask=NAME_MASK)
        item.comments.append(f"decide: {where} holds personal names; L3, masked to the surname")
    elif _ID_NAME.search(where) or _MOBILE_NAME.search(where) or _PERSON_NAME.search(where):
        item.comments.append(f"decide: the name {where} suggests personal data, but its sampled values do not look so")


def _encrypted(item: Item, column: Column, kind: Looks, index: str | None) -> None:
    decl = item.decl
    is_id = bool(_ID_NAME.search(column.name))
    decl.update(type="ID" if is_id else "String", tier="L3", encrypted=True)
    if kind is Looks.STORED_TEXT:
        decl["stored_as"] = "text"
    if is_id:
        decl.update(mask=ID_MASK, person=True)
    elif _MOBILE_NAME.search(column.name):
        decl["mask"] = MOBILE_MASK
    else:
        decl["mask"] = NAME_MASK
    item.comments.append(
        f"decide: {column.name} already holds the hub's encrypted values: its department, entity and field "
        "names must be those it was encrypted under, and the hub needs its data keys (`hub keys restore`)"
    )
    if index is not None:
        domain = "resident_id" if is_id else "mobile" if _MOBILE_NAME.search(column.name) else None
        if domain is None:
            item.comments.append(f"decide: {index} is its blind index; name its domain (blind_index: ...)")
            return
        decl["blind_index"] = domain
        if index != column.name + "_bidx":
            decl["index_column"] = index
        item.comments.append(f"decide: blind index {index} guessed to be in the {domain} domain")


def _relations(entity: Entity, entities: dict[str, Entity], notes: list[str]) -> None:
    for foreign in entity.table.foreign_keys:
        target = entities.get(foreign.target_table)
        source_field = entity.field_of.get(foreign.column)
        target_field = target.field_of.get(foreign.target_column) if target is not None else None
        if target is None or source_field is None or target_field is None:
            entity.comments.append(
                f"foreign key {foreign.column} -> {foreign.target_table}.{foreign.target_column} left out: "
                "its target is not in this draft (a relation to another department is written by hand)"
            )
            continue
        source = next(item for item in entity.fields if item.decl["name"] == source_field)
        if source.decl["type"] == "String" and not source.decl.get("encrypted"):
            source.decl["type"] = "ID"  # a reference to a record, as the key it names
        name = _free(entity, lower_first(pascal(re.sub(r"_?id$", "", foreign.column, flags=re.I)) or target.name))
        forward: dict[str, Any] = {"name": name, "target": target.name, "field": source_field}
        if target_field != target.key:
            forward["target_field"] = target_field
        entity.relations.append(Item(forward))
        back = _free(target, lower_first(pluralize(entity.name)))
        target.relations.append(
            Item(
                {"name": back, "target": entity.name, "field": target_field, "target_field": source_field, "many": True}
            )
        )


def _free(entity: Entity, name: str) -> str:
    used = {item.decl["name"] for item in entity.fields + entity.relations}
    candidate = name if re.match(NAME, name) else "related"
    while candidate in used:
        candidate += "2"
    return candidate


# The order a person reads a field in: what it is, then how it is released.
_ORDER = ("name", "column", "type", "scale", "tier", "mask", "encrypted", "stored_as", "blind_index", "index_column")


def _flow(value: dict[str, Any]) -> str:
    value = dict(sorted(value.items(), key=lambda pair: _ORDER.index(pair[0]) if pair[0] in _ORDER else len(_ORDER)))
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, allow_unicode=True, width=1_000_000)
    return str(text).strip()


def _scalar(value: str) -> str:
    # Quoted where YAML would read it as something else (a table named `on` or `null`).
    return str(yaml.safe_dump(value, allow_unicode=True)).split("\n", 1)[0]


def _render(draft: Draft) -> str:
    out = [
        f"# Manifest draft for department {draft.department}, written by `hub manifest draft`.",
        "# Review every `decide:` comment, the tiers (L2 unless personal data was recognised) and the",
        "# descriptions, then check it against the database with `hub manifest check`.",
        f"department: {draft.department}",
        f"title: {pascal(draft.department)}  # decide: a title people read",
        "connection:",
        f"  url_env: {draft.url_env}",
        "  timezone: Asia/Shanghai  # decide: the time zone of date-times stored without one",
    ]
    out += [f"# left out: {note}" for note in draft.notes]
    out.append("entities:")
    for entity in draft.entities:
        out += [f"  # {line}" for line in entity.comments]
        out += [f"  - name: {entity.name}", f"    table: {_scalar(entity.table.name)}", f"    key: {entity.key}"]
        out.append("    fields:")
        for item in entity.fields:
            out += [f"      # {line}" for line in item.comments]
            out.append(f"      - {_flow(item.decl)}")
        if entity.relations:
            out.append("    relations:")
            out += [f"      - {_flow(item.decl)}" for item in entity.relations]
    return "\n".join(out) + "\n"
